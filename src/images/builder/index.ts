// Our image builder: a Djinn-compatible qcow2 from Debian's packages alone
// (mmdebstrap), assembled from files with no loop devices and no mounts.
// See docs/images.md for what the image contains and why.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEBIAN_KEYRING, ensureCapabilities, HostRequirementError } from '../../host/requirements.js';
import { makeDisk } from './disk.js';
import * as files from './guest-files.js';
import { kernelVersion, makeInitrd } from './initrd.js';
import { MIRROR, SECURITY_MIRROR, packagesFor, type Flavor } from './packages.js';
import { builderPrivilege, removeTree, runAsRoot, type Privilege } from './privilege.js';
import { BuildError } from './run.js';
import { codenameFor } from './suites.js';

export { BuildError } from './run.js';
export { buildableSuite } from './suites.js';
export { type Flavor } from './packages.js';

export interface BuildOptions {
  /** A Debian suite or codename: stable, oldstable, bookworm, trixie, ... */
  suite: string;
  flavor: Flavor;
  /** The qcow2 file to write (replaced atomically when done). */
  output: string;
  /** A public key file to put in /root/.ssh/authorized_keys. */
  authorizedKeyFile?: string;
  /** Virtual disk size (sparse: qcow2 stores only what is used). */
  sizeMiB?: number;
  /** Where the (large) temporary tree and raw disk go; default RUNNER_TEMP, else the output's folder (never /tmp: a RAM tmpfs on some runners). */
  workRoot?: string;
  signal?: AbortSignal;
}

export interface BuildResult {
  path: string;
  codename: string;
  flavor: Flavor;
  bytes: number;
  seconds: number;
}

const PRIV_NOTE: Record<Privilege, string> = { root: '', sudo: ' (through sudo)', userns: ' (unshare mode, in a user namespace)' };
const KERNEL_ARGS = 'console=ttyS0 quiet mitigations=off';
const HAS_UPDATES = new Set(['bullseye', 'bookworm', 'trixie']);

export async function buildImage(options: BuildOptions, log: (line: string) => void): Promise<BuildResult> {
  const started = Date.now();
  try {
    await ensureCapabilities(['image-build']);
  } catch (err) {
    if (err instanceof HostRequirementError || (err instanceof Error && err.name === 'InstallError')) throw new BuildError(err.message);
    throw err;
  }
  const priv = await builderPrivilege();
  const codename = await codenameFor(options.suite, options.signal);
  const out = path.resolve(options.output);
  await mkdir(path.dirname(out), { recursive: true });
  if (options.flavor === 'cloud' && options.authorizedKeyFile)
    throw new BuildError('the cloud flavor takes no authorized key: cloud-init writes it from the seed at boot.');
  const authorizedKey = options.authorizedKeyFile ? await readKey(options.authorizedKeyFile) : '';
  const workRoot = options.workRoot ?? process.env.RUNNER_TEMP ?? path.dirname(out);
  await mkdir(workRoot, { recursive: true });
  const work = await mkdtemp(path.join(workRoot, '.djinn-image-build-'));
  const partial = `${out}.partial-${process.pid}`;
  const step = (msg: string) => log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}`);
  // The root-owned tree must go also when the build is interrupted.
  const interrupt = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    received ??= sig;
    interrupt.abort();
  };
  const signal = options.signal ? AbortSignal.any([options.signal, interrupt.signal]) : interrupt.signal;
  // Ours is then the only listener: after cleaning up, end the way the signal would have.
  const othersListen = { SIGINT: process.listenerCount('SIGINT') > 0, SIGTERM: process.listenerCount('SIGTERM') > 0 };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tree = path.join(work, 'rootfs');
  try {
    const overlay = path.join(work, 'overlay');
    await prepareOverlay(overlay, options.flavor, authorizedKey);
    step(`debian/${options.suite} (${codename}), flavor ${options.flavor}: installing packages with mmdebstrap${PRIV_NOTE[priv]}`);
    await bootstrap(priv, tree, overlay, codename, options.flavor, (l) => step(`  ${l}`), signal);
    const kver = await kernelVersion(tree);
    step(`making the initrd for kernel ${kver}`);
    const initrd = path.join(work, 'initrd.img');
    await makeInitrd(tree, kver, initrd);
    let append = `root=/dev/vda2 rw ${KERNEL_ARGS}`;
    if (options.flavor !== 'fast') append += ' net.ifnames=0';
    step('assembling the disk');
    await makeDisk(
      {
        out: partial,
        workDir: work,
        kernel: path.join(tree, 'boot', `vmlinuz-${kver}`),
        initrd,
        append,
        tree,
        sizeMiB: options.sizeMiB ?? 8192,
        // bullseye's 5.10 kernel predates these ext4 features of newer mke2fs.
        ext4Features: codename === 'bullseye' ? '^orphan_file,^metadata_csum_seed' : undefined,
        // Reading the root-owned tree (shadow, host keys) with its owners needs root.
        runMke2fs: (args) => runAsRoot(priv, 'mke2fs', args, { signal }),
      },
      (l) => step(l),
    );
    await rename(partial, out);
    const bytes = (await stat(out)).size;
    const seconds = (Date.now() - started) / 1000;
    step(`done: ${out} (${(bytes / 1048576).toFixed(0)} MiB)`);
    return { path: out, codename, flavor: options.flavor, bytes, seconds };
  } catch (err) {
    if (received) throw new BuildError(`image build interrupted by ${received}.`);
    throw err;
  } finally {
    await rm(partial, { force: true });
    await removeTree(priv, tree).catch((err: unknown) => log(`could not remove ${tree}: ${(err as Error).message}`));
    await rm(work, { recursive: true, force: true }).catch((err: unknown) => log(`could not remove ${work}: ${(err as Error).message}`));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (received && !othersListen[received as 'SIGINT' | 'SIGTERM']) process.kill(process.pid, received);
  }
}

async function readKey(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new BuildError(`cannot read the authorized key ${file}: ${(err as Error).message}`);
  }
  if (!/^(ssh-|ecdsa-|sk-)/m.test(text))
    throw new BuildError(`${file} does not look like an OpenSSH public key (one line starting with ssh-ed25519, ssh-rsa, ...).`);
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Shell-quotes one word for mmdebstrap's hooks (run by sh). */
function sq(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

async function bootstrap(
  priv: Privilege,
  tree: string,
  overlay: string,
  codename: string,
  flavor: Flavor,
  log: (l: string) => void,
  signal?: AbortSignal,
) {
  // Debian's own keyring and mirror, so that nothing depends on the host's apt sources (an Ubuntu host has neither).
  const signed = `[signed-by=${DEBIAN_KEYRING}]`;
  const sources = [`deb ${signed} ${MIRROR} ${codename} main`];
  if (HAS_UPDATES.has(codename))
    sources.push(`deb ${signed} ${MIRROR} ${codename}-updates main`, `deb ${signed} ${SECURITY_MIRROR} ${codename}-security main`);
  const replaced = (await overlayFiles(overlay)).map((f) => `"$1"/${sq(f)}`).join(' ');
  await runAsRoot(
    priv,
    'mmdebstrap',
    [
      '--variant=minbase',
      // As our user namespace's root, mmdebstrap's unshare mode only adds its mount and PID namespaces.
      `--mode=${priv === 'userns' ? 'unshare' : 'root'}`,
      `--keyring=${DEBIAN_KEYRING}`,
      `--include=${packagesFor(flavor).join(',')}`,
      // The kernel's postinst makes an initrd: keep it small (ours replaces it).
      '--essential-hook=mkdir -p "$1/etc/initramfs-tools/conf.d" && echo MODULES=list > "$1/etc/initramfs-tools/conf.d/djinn.conf"',
      '--customize-hook=rm -rf "$1"/boot/initrd.img-* "$1"/initrd.img* "$1"/var/cache/apt/*.bin ' +
        '"$1"/var/lib/apt/lists/* "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/info "$1"/usr/share/locale',
      // Our files, owned by root, over the tree (existing directories keep their owner and mode).
      `--customize-hook=rm -f ${replaced} && tar -C ${sq(overlay)} --owner=0 --group=0 --numeric-owner -cf - . | tar ` +
        `-C "$1" --no-overwrite-dir --numeric-owner -xpf -`,
      // root with an empty password (Djinn's images log in that way); the cloud flavor's root has none at all ("*").
      `--customize-hook=sed -i 's/^root:[^:]*:/${flavor === 'cloud' ? 'root:*:' : 'root::'}/' "$1/etc/shadow"`,
      // Host keys of this build only (never shared between builds or taken from the host).
      '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*_key "$1"/etc/ssh/ssh_host_*_key.pub && ssh-keygen -A -f "$1"',
      codename,
      tree,
      ...sources,
    ],
    {
      onLine: (l) => {
        if (/^(I|W|E):/.test(l)) log(l);
      },
      signal,
    },
  );
}

/** Every non-directory below the overlay, relative to it. */
async function overlayFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await overlayFiles(root, r)));
    else out.push(r);
  }
  return out;
}

async function write(tree: string, rel: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const p = path.join(tree, rel);
  await mkdir(path.dirname(p), { recursive: true });
  await rm(p, { force: true });
  await writeFile(p, content);
  await chmod(p, mode);
}

async function link(tree: string, rel: string, target: string): Promise<void> {
  const p = path.join(tree, rel);
  await mkdir(path.dirname(p), { recursive: true });
  await unlink(p).catch(() => {});
  await symlink(target, p);
}

/** Our files, in a folder of the calling user's; a hook of mmdebstrap's copies them into the tree as root. */
async function prepareOverlay(tree: string, flavor: Flavor, authorizedKey: string): Promise<void> {
  await mkdir(tree, { recursive: true });
  await write(tree, 'etc/hostname', 'djinn\n');
  await write(tree, 'etc/hosts', '127.0.0.1 localhost djinn\n::1 localhost ip6-localhost ip6-loopback\n');
  await write(tree, 'etc/resolv.conf', 'nameserver 10.0.2.3\n');
  await write(tree, 'etc/fstab', '/dev/vda2 / ext4 rw,noatime 0 1\n');
  await write(tree, 'etc/ssh/sshd_config.d/djinn.conf', flavor === 'cloud' ? files.CLOUD_SSHD_CONFIG : files.SSHD_CONFIG);
  if (flavor === 'cloud') await write(tree, 'etc/cloud/cloud.cfg.d/90-djinn.cfg', files.CLOUD_CFG);
  await mkdir(path.join(tree, 'root/.ssh'), { recursive: true, mode: 0o700 });
  await chmod(path.join(tree, 'root'), 0o700);
  await chmod(path.join(tree, 'root/.ssh'), 0o700);
  await write(tree, 'root/.ssh/authorized_keys', authorizedKey, 0o600);
  await write(tree, 'var/lib/djinn-seed', randomBytes(512), 0o600);
  await write(tree, 'usr/local/sbin/djinn-seed', files.SEED_SCRIPT, 0o755);
  await write(tree, 'etc/djinn/udhcpc.script', files.UDHCPC_SCRIPT, 0o755);
  await write(tree, 'etc/djinn/net-up', files.NET_UP, 0o755);
  if (flavor === 'fast') {
    await link(tree, 'usr/sbin/init', '/usr/bin/busybox');
    await write(tree, 'etc/inittab', files.FAST_INITTAB);
    await write(tree, 'etc/djinn/rc', files.FAST_RC, 0o755);
  } else {
    await write(tree, 'etc/systemd/system/djinn-net.service', files.NET_UNIT);
    for (const target of ['multi-user.target.wants', 'network-online.target.wants']) {
      await link(tree, `etc/systemd/system/${target}/djinn-net.service`, '/etc/systemd/system/djinn-net.service');
    }
    await write(tree, 'etc/systemd/system/ssh.service.d/djinn.conf', files.SSH_DROPIN);
    for (const unit of files.MASKED_UNITS) await link(tree, `etc/systemd/system/${unit}`, '/dev/null');
  }
}
