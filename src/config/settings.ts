// Driver settings from the front end's options (CLI flags or action inputs) over driver.conf.
import os from 'node:os';
import path from 'node:path';
import { confChoice, confDuration, confInt, confString, type DriverConf } from './driver-conf.js';
import type { DriverSettings, Tristate } from './driver-settings.js';
import { UsageError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { MAX_TIMER_MS } from '../util/long-timer.js';
import { all, str, type FlagValues } from './values.js';

function oneOf<T extends string>(flags: FlagValues, name: string, allowed: readonly T[]): T | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v))
    throw new UsageError(`expected one of ${allowed.join(', ')}, found "${v}".`, {}, `-${name}`);
  return v as T;
}

function intFlag(flags: FlagValues, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new UsageError(`expected a positive whole number, found "${v}".`, {}, `-${name}`);
  if (Number(v) > 2 ** 31 - 1) throw new UsageError(`${v} is too large a number.`, {}, `-${name}`);
  return Number(v);
}

function countFlag(flags: FlagValues, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`expected a whole number (0 or more), found "${v}".`, {}, `-${name}`);
  return Number(v);
}

function durFlag(flags: FlagValues, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  if (d === undefined) throw new UsageError(`invalid duration "${v}": write e.g. 90s, 30m or 1h30m.`, {}, `-${name}`);
  if (d > MAX_TIMER_MS && name !== 'image-max-age')
    throw new UsageError(`${v} is too long; the longest is ${formatDuration(MAX_TIMER_MS)}.`, {}, `-${name}`);
  return d;
}

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'djinn', 'images');
}

export function settingsFromFlags(flags: FlagValues, conf: DriverConf, tempDir: string): DriverSettings {
  return {
    conf,
    tempDir,
    disks: str(flags, 'disks') ?? confString(conf, 'qemu', 'disks'),
    cpus: intFlag(flags, 'cpus') ?? confInt(conf, 'qemu', 'cpus'),
    memoryMiB: intFlag(flags, 'memory') ?? confInt(conf, 'qemu', 'memory'),
    kvm: oneOf<Tristate>(flags, 'kvm', ['auto', 'on', 'off']) ?? confChoice<Tristate>(conf, 'qemu', 'kvm', ['auto', 'on', 'off']),
    bootTimeoutMs: durFlag(flags, 'boot-timeout') ?? confDuration(conf, 'qemu', 'boot_timeout'),
    bootStallMs: durFlag(flags, 'boot-stall'),
    bootRetries: countFlag(flags, 'boot-retries'),
    image: str(flags, 'image'),
    imageFile: str(flags, 'image-file'),
    imageFormat: oneOf(flags, 'image-format', ['qcow2', 'raw'] as const),
    imageUrl: str(flags, 'image-url'),
    imageSha256: str(flags, 'image-sha256'),
    imageServer: str(flags, 'image-server'),
    imageBuild: oneOf(flags, 'image-build', ['auto', 'always', 'never'] as const),
    imageMaxAgeMs: durFlag(flags, 'image-max-age'),
    imageSource: oneOf(flags, 'image-source', ['auto', 'server', 'catalogue', 'build'] as const),
    // The action passes its multi-line input as one value: one DISTRO=URL per line.
    imageMirrors: all(flags, 'image-mirror').flatMap((v) => v.split(/\s+/).filter(Boolean)),
    imageChecksum: oneOf(flags, 'image-checksum', ['required', 'off'] as const),
    cacheDir: str(flags, 'cache-dir') ?? defaultCacheDir(),
    warm: oneOf(flags, 'warm', ['on', 'off', 'refresh'] as const),
    sshUser: str(flags, 'ssh-user') ?? confString(conf, 'ssh', 'user'),
    sshKeyFile: str(flags, 'ssh-key') ?? confString(conf, 'ssh', 'key'),
    sshPassword: confString(conf, 'ssh', 'password'),
    connectTimeoutMs: durFlag(flags, 'connect-timeout') ?? confDuration(conf, 'ssh', 'timeout'),
    dockerHost: confString(conf, 'docker', 'host'),
    dockerVersion: confString(conf, 'docker', 'version'),
  };
}
