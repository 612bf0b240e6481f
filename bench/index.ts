// `npm run bench -- <name> [args...]`: runs bench/<name>.ts, which exports
// `run(args: string[]): Promise<void>` and prints its own table. Benchmarks
// report ratios against a baseline measured in the same run, never absolute
// targets (this machine's speed varies too much).
import { readdirSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SSH2_BINDING_REQUEST } from '../src/cjs-shim.js';

interface BenchModule {
  run(args: string[]): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

function available(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts' && !f.startsWith('_'))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
}

/**
 * Run from src/, ssh2 is a real CommonJS package that looks for its native binding in its own folder only;
 * DJINN_SSH2_BINDING points it elsewhere, as src/cjs-shim.ts does for the bundle, so both can be measured with it.
 */
function redirectSsh2Binding(file: string | undefined): void {
  if (!file) return;
  const m = Module as unknown as { _resolveFilename(request: string, ...rest: unknown[]): string };
  const resolve = m._resolveFilename;
  m._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === SSH2_BINDING_REQUEST ? path.resolve(file) : resolve.call(this, request, ...rest);
  };
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const names = available();
  if (!name || !names.includes(name)) {
    process.stderr.write(
      `${name ? `bench: no benchmark named "${name}". ` : ''}usage: npm run bench -- <name> [args]\nbenchmarks: ${names.join(', ') || '(none)'}\n`,
    );
    return 2;
  }
  redirectSsh2Binding(process.env.DJINN_SSH2_BINDING);
  const mod = (await import(`./${name}.js`)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    process.stderr.write(`bench: bench/${name}.ts does not export run(args).\n`);
    return 2;
  }
  await mod.run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
