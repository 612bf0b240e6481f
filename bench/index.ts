// `npm run bench -- <name> [args...]`: runs bench/<name>.ts, which exports
// `run(args: string[]): Promise<void>` and prints its own table. Benchmarks
// report ratios against a baseline measured in the same run, never absolute
// targets (this machine's speed varies too much).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const names = available();
  if (!name || !names.includes(name)) {
    process.stderr.write(
      `${name ? `bench: no benchmark named "${name}". ` : ''}usage: npm run bench -- <name> [args]\nbenchmarks: ${names.join(', ') || '(none)'}\n`,
    );
    return 2;
  }
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
