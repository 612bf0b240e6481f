// `djinn image build debian/<suite> [-flavor fast|systemd|cloud] [-o FILE | -disks DIR] [-authorized-key FILE]`
import path from 'node:path';
import { BuildError, buildImage, buildableSuite, type Flavor } from '../../images/builder/index.js';
import { diskPath } from '../../images/local.js';
import { UsageError } from '../../core/errors.js';
import { parseFlags, type FlagSpec } from '../flags.js';
import { str } from '../../config/settings.js';
import { aptInstall } from '../../host/install.js';
import { missingFor, missingMessage } from '../../host/requirements.js';

const SPECS: FlagSpec[] = [
  {
    group: 'image',
    name: 'flavor',
    kind: 'string',
    default: 'fast',
    help: "fast (busybox init, quick boot), systemd (a stock-like Debian) or cloud (like Debian's genericcloud: cloud-init, root by key from a seed)",
  },
  { group: 'image', name: 'o', kind: 'string', help: 'write the qcow2 image to this file' },
  { group: 'image', name: 'disks', kind: 'string', help: 'write it as DIR/qemu/x86_64/debian/<suite>, where the qemu driver looks' },
  { group: 'image', name: 'authorized-key', kind: 'string', help: "an OpenSSH public key file for root's authorized_keys" },
  {
    group: 'image',
    name: 'install-deps',
    kind: 'bool',
    help: 'install the missing builder packages with apt-get (through sudo -n when not root)',
  },
  { group: 'image', name: 'size', kind: 'string', default: '8192', help: 'virtual disk size in MiB (sparse)' },
];

const USAGE = 'usage: djinn image build debian/<suite> [-flavor fast|systemd|cloud] [-o FILE | -disks DIR] [-authorized-key FILE]';

export async function imageBuildCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlags(argv, SPECS);
  if (args.length !== 1) throw new UsageError(`${USAGE}; found ${args.length} image names.`);
  const name = args[0];
  const suite = buildableSuite(name);
  if (!suite)
    throw new UsageError(
      `cannot build "${name}": the builder makes debian/<suite> images (stable, oldstable, testing, bullseye, bookworm, trixie, forky).`,
    );
  const flavor = str(flags, 'flavor') ?? 'fast';
  if (!['fast', 'systemd', 'cloud'].includes(flavor))
    throw new UsageError(`expected fast, systemd or cloud, found "${flavor}".`, {}, '-flavor');
  const o = str(flags, 'o');
  const disks = str(flags, 'disks');
  if (o && disks) throw new UsageError('give either -o FILE or -disks DIR, not both.');
  const output = o
    ? path.resolve(o)
    : disks
      ? diskPath(path.resolve(disks), name)
      : path.resolve(`${name.replace('/', '-')}-${flavor}.qcow2`);
  const size = str(flags, 'size') ?? '8192';
  if (!/^\d+$/.test(size) || Number(size) < 1024)
    throw new UsageError(`expected a size in MiB of at least 1024, found "${size}".`, {}, '-size');
  const missing = missingFor(['image-build']);
  if (missing.programs.length) {
    if (!flags['install-deps']) throw new UsageError(`${missingMessage(missing)} (or run again with -install-deps).`, {}, '-install-deps');
    await aptInstall(missing.packages, (l) => process.stderr.write(`djinn: ${l}\n`)).catch((err: Error) => {
      throw new UsageError(err.message, {}, '-install-deps');
    });
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await buildImage(
      {
        suite,
        flavor: flavor as Flavor,
        output,
        authorizedKeyFile: str(flags, 'authorized-key'),
        sizeMiB: Number(size),
        signal: stop.signal,
      },
      (line) => process.stderr.write(`${line}\n`),
    );
    process.stdout.write(`${result.path}\n`);
    return 0;
  } catch (err) {
    if (err instanceof BuildError) {
      process.stderr.write(`djinn: image build failed: ${err.message}\n`);
      return stop.signal.aborted ? 130 : 1;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
