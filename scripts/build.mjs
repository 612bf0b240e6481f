// Bundles the CLI and the action with ncc into dist/. Run from a tree
// installed with --ignore-scripts so no native .node file lands in dist/.
//
// Each entry gets its own folder (dist/cli/, dist/action/, dist/post/, dist/djinn-vm/) because
// ncc splits lazily imported code (the docker driver's dockerode) into chunks
// named by number, and two entries' chunks of the same name differ. The files
// that action.yml and package.json name (dist/index.js, dist/post.js,
// dist/cli.js; dist/djinn-vm.js for the action's djinn-vm command) are one-line stubs importing their folder's bundle.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const entries = [
  { src: 'src/cli.ts', stub: 'cli.js', dir: 'cli', shebang: true },
  { src: 'src/index.ts', stub: 'index.js', dir: 'action' },
  { src: 'src/post.ts', stub: 'post.js', dir: 'post' },
  // The command of the steps after a `keep: true` step (run by the wrapper the main step writes).
  { src: 'src/djinn-vm.ts', stub: 'djinn-vm.js', dir: 'djinn-vm' },
];
const ncc = path.resolve('node_modules/@vercel/ncc/dist/ncc/cli.js');
const out = mkdtempSync(path.join(os.tmpdir(), 'djinn-dist-'));
try {
  for (const e of entries) {
    const dir = path.join(out, e.dir);
    execFileSync(process.execPath, [ncc, 'build', e.src, '-o', dir, '--quiet', '--target', 'es2022'], { stdio: 'inherit' });
    for (const f of readdirSync(dir)) {
      if (f.endsWith('.node')) throw new Error(`native module ${f} was bundled; install with --ignore-scripts`);
    }
  }
  rmSync('dist', { recursive: true, force: true });
  mkdirSync('dist');
  for (const e of entries) {
    const dir = path.join(out, e.dir);
    for (const f of readdirSync(dir)) {
      // pagent.exe is ssh2's Windows agent helper; package.json is replaced by ours.
      if (f !== 'package.json' && !f.endsWith('.exe')) cpSync(path.join(dir, f), path.join('dist', e.dir, f), { recursive: true });
    }
    writeFileSync(path.join('dist', e.stub), `${e.shebang ? '#!/usr/bin/env node\n' : ''}import './${e.dir}/index.js';\n`, {
      mode: e.shebang ? 0o755 : 0o644,
    });
  }
  writeFileSync('dist/package.json', '{"type":"module"}\n');
} finally {
  rmSync(out, { recursive: true, force: true });
}
