// Bundles the CLI and the action with ncc into dist/. Run from a tree
// installed with --ignore-scripts so no native .node file lands in dist/.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const entries = [
  ['src/cli.ts', 'cli.js'],
  ['src/index.ts', 'index.js'],
  ['src/post.ts', 'post.js'],
];
const ncc = path.resolve('node_modules/@vercel/ncc/dist/ncc/cli.js');
const out = mkdtempSync(path.join(os.tmpdir(), 'djinn-dist-'));
try {
  for (const [src, name] of entries) {
    if (!existsSync(src)) continue;
    const dir = path.join(out, name.replace(/\.js$/, ''));
    execFileSync(process.execPath, [ncc, 'build', src, '-o', dir, '--quiet', '--target', 'es2022'], { stdio: 'inherit' });
    for (const f of readdirSync(dir)) {
      if (f.endsWith('.node')) throw new Error(`native module ${f} was bundled; install with --ignore-scripts`);
    }
  }
  rmSync('dist', { recursive: true, force: true });
  for (const [src, name] of entries) {
    if (!existsSync(src)) continue;
    const dir = path.join(out, name.replace(/\.js$/, ''));
    cpSync(path.join(dir, 'index.js'), path.join('dist', name));
    for (const f of readdirSync(dir)) {
      if (f !== 'index.js' && f !== 'package.json' && !f.endsWith('.exe')) cpSync(path.join(dir, f), path.join('dist', f), { recursive: true });
    }
  }
  writeFileSync('dist/package.json', '{"type":"module"}\n');
} finally {
  rmSync(out, { recursive: true, force: true });
}
