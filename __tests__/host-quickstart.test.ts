// A fresh machine: a fresh Debian root (helpers/fresh-root.ts) with only
// Node, git and sudo, a fresh copy of the repository (the tracked files, as a
// clone has them: dist/ is committed), and `bash scripts/quickstart.sh`, once
// as root and once as a user with passwordless sudo, each in its own root.
// Each installs what it needs, builds the image and collects out/bin/hello.
// Heavy: hold /work/vm.lock.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { makeFreshRoot, timed, type FreshRoot } from './helpers/fresh-root.js';

const PARENT = path.join(process.env.DJINN_CI_CACHE || '/var/cache/djinn-ci', 'fresh-roots');

function copyRepository(root: FreshRoot, to: string, owner: string): void {
  mkdirSync(path.join(root.dir, to), { recursive: true });
  execSync(`git ls-files -z | tar --null -T - -cf - | tar -C ${JSON.stringify(path.join(root.dir, to))} -xf -`, {
    cwd: ROOT,
    shell: '/bin/bash',
  });
  execFileSync('chroot', [root.dir, 'chown', '-R', `${owner}:${owner}`, to]);
}

describe('scripts/quickstart.sh on a fresh machine', () => {
  let root: FreshRoot | undefined;
  afterEach(async () => {
    await root?.remove();
    root = undefined;
  }, 120_000);

  for (const user of ['root', 'runner']) {
    it(
      `as ${user === 'root' ? 'root' : 'a user with passwordless sudo'}: installs what it needs and collects out/bin/hello`,
      async () => {
        root = await timed(`quickstart as ${user}: fresh root`, () => makeFreshRoot(PARENT));
        const repo = user === 'root' ? '/root/djinn-vm' : '/home/runner/djinn-vm';
        copyRepository(root, repo, user);
        expect(existsSync(path.join(root.dir, repo, 'node_modules'))).toBe(false);
        const r = root;
        const res = await timed(`quickstart as ${user}`, () =>
          r.run(
            user,
            ['bash', 'scripts/quickstart.sh', '-kvm', 'off', '-image-server', 'http://127.0.0.1:9'],
            {},
            { cwd: repo, limitMs: 25 * 60_000 },
          ),
        );
        console.log((res.output.match(/^djinn: installed .*$/gm) ?? []).join('\n'));
        expect(res.code, res.output).toBe(0);
        expect(
          readFileSync(path.join(root.dir, repo, 'out/bin/hello'))
            .subarray(0, 4)
            .toString('latin1'),
        ).toBe('\x7fELF');
        // No npm install: the committed bundle ran.
        expect(existsSync(path.join(root.dir, repo, 'node_modules'))).toBe(false);
        if (user !== 'root') {
          expect(res.output).toMatch(/sudo -n apt-get install/);
          const rootOwned = execFileSync('find', [path.join(root.dir, 'home/runner'), '-uid', '0'])
            .toString()
            .trim();
          expect(rootOwned).toBe('');
        }
        expect(root.qemuProcesses()).toEqual([]);
      },
      30 * 60_000,
    );
  }
});
