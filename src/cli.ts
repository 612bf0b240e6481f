#!/usr/bin/env node
import './cjs-shim.js';
import { main } from './cli/main.js';
import { message } from './core/errors.js';

// A closed stdout or stderr (`djinn | head -1`) must not stop the build: it keeps
// running and collecting, output is dropped, and the exit status is the build's.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`djinn: internal error: ${message(err)}\n`);
    process.exitCode = 3;
  },
);
