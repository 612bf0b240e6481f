// The CLI's host check before a build starts: what the manifest's driver (and,
// when the image will probably be built here, the builder) needs. Missing
// programs: print the apt-get line and exit 2, or install them (-install-deps).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DriverSettings } from '../config/settings.js';
import { aptInstall } from '../host/install.js';
import { aptLine, missingFor, missingMessage, onMissing, type Capability, type Missing } from '../host/requirements.js';
import { buildableSuite } from '../images/builder/index.js';
import { diskPath } from '../images/local.js';
import { builtImagesDir } from '../images/resolve.js';
import { UsageError } from '../core/errors.js';
import type { Manifest } from '../manifest/types.js';
import { formatDuration } from '../util/duration.js';

/** Whether this run would likely reach our builder (no image file, nothing in the disks folder or built before). */
export function mayBuild(manifest: Manifest, settings: DriverSettings): boolean {
  const name = settings.image.name ?? manifest.driver.options.image;
  if (manifest.driver.type !== 'qemu' || !name || settings.image.file || settings.image.url || settings.image.build === 'never')
    return false;
  if (!buildableSuite(name)) return false;
  if (settings.qemu.disks && existsSync(diskPath(path.resolve(settings.qemu.disks), name))) return false;
  const built = builtImagesDir(settings.cacheDir);
  return !(built && existsSync(diskPath(built, name)));
}

async function install(m: Missing, log: (l: string) => void): Promise<void> {
  const started = Date.now();
  log(`djinn: installing ${m.packages.join(' ')} (for ${m.programs.join(', ')})`);
  await aptInstall(m.packages, (l) => log(`djinn: ${l}`));
  log(`djinn: installed ${m.packages.join(' ')} in ${formatDuration(Date.now() - started)}`);
}

/**
 * Checks the host before the build. Throws a UsageError (exit 2) when the
 * driver's programs are missing and -install-deps was not given. Builder
 * programs alone only warn: the image may still be downloaded.
 */
export async function checkHost(
  manifest: Manifest,
  settings: DriverSettings,
  installDeps: boolean,
  log = (l: string) => process.stderr.write(`${l}\n`),
): Promise<void> {
  const driverCaps: Capability[] = manifest.driver.type === 'qemu' ? ['qemu'] : [];
  const build = mayBuild(manifest, settings);
  const caps: Capability[] = [...driverCaps, ...(build ? (['image-build'] as const) : [])];
  if (installDeps) onMissing((m) => install(m, log));
  if (!caps.length) return;
  const all = missingFor(caps);
  if (!all.programs.length) return;
  if (installDeps) {
    await install(all, log);
    return;
  }
  if (missingFor(driverCaps).programs.length)
    throw new UsageError(`${missingMessage(all)} (or run again with -install-deps).`, {}, '-install-deps');
  log(
    `warning: if ${manifest.driver.options.image} cannot be downloaded, building it needs ` +
      `${all.programs.join(', ')}: ${aptLine(all.packages)} (or run with -install-deps).`,
  );
}
