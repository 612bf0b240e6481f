// The `djinn-vm` command for the steps after a `keep: true` step (see
// src/vm-command/main.ts). The shim must load first.
import './cjs-shim.js';
import { run } from './vm-command/main.js';

process.exitCode = await run(process.argv.slice(2));
