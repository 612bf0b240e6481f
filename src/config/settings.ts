// Driver settings: everything a front end (CLI flags, action inputs, by the flags' names) and
// driver.conf can say about how to run a driver, and how the options resolve into them (options
// over driver.conf; the drivers apply their own defaults). Drivers read only what they need.
import os from 'node:os';
import path from 'node:path';
import { confChoice, confDuration, confInt, confString, type DriverConf } from './driver-conf.js';
import { UsageError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { MAX_TIMER_MS } from '../util/long-timer.js';

export type Tristate = 'auto' | 'on' | 'off';
/** Software emulation's threading: every vCPU in one host thread, or one thread per vCPU. */
export type TcgThreads = 'single' | 'multi';

export interface DriverSettings {
  /** driver.conf as read (empty blocks when there is none). */
  conf: DriverConf;
  /** Folder for this build's temporary files (console log, keys, pidfile); made and removed by the caller. */
  tempDir: string;
  /** The CLI's image cache folder (images, built images, warm states, the catalogue login key). */
  cacheDir?: string;
  image: ImageSettings;
  qemu: QemuSettings;
  ssh: SshSettings;
  docker: DockerSettings;
}

/** Which image to boot and where to get it (src/images). */
export interface ImageSettings {
  /** Overrides the manifest's image name. */
  name?: string;
  file?: string;
  format?: 'qcow2' | 'raw';
  url?: string;
  sha256?: string;
  server?: string;
  build?: 'auto' | 'always' | 'never';
  /** A cached image older than this is revalidated with its source. */
  maxAgeMs: number;
  /** -image-source: which network source to ask (auto: the Djinn server, then the catalogue or our builder). */
  source?: 'auto' | 'server' | 'catalogue' | 'build';
  /** -image-mirror DISTRO=URL values (catalogue base URLs). */
  mirrors?: string[];
  /** -image-checksum off boots a catalogue image its checksum file does not vouch for. */
  checksum?: 'required' | 'off';
  /** The file is a catalogue image (the action's image cache hands those over as files): boot it with the cloud-init seed. */
  cloudInit?: boolean;
}

/** How to run the machine; unset numbers take the driver's defaults, which depend on the host and the accelerator. */
export interface QemuSettings {
  disks?: string;
  cpus?: number;
  memoryMiB?: number;
  kvm?: Tristate;
  /** -tcg-threads: unset means single (see accelArgs). */
  tcgThreads?: TcgThreads;
  bootTimeoutMs?: number;
  /** No console output and no SSH banner for this long while booting = stalled (docs/qemu.md). */
  bootStallMs?: number;
  /** Boots again this many times after a stall. */
  bootRetries: number;
  warm: 'on' | 'off' | 'refresh';
  /** Start QEMU so that it can outlive this process (the action's `keep`: see Driver.keep). */
  detached?: boolean;
}

export interface SshSettings {
  user: string;
  keyFile?: string;
  password?: string;
  connectTimeoutMs: number;
}

export interface DockerSettings {
  host?: string;
  version?: string;
}

export const DEFAULT_BOOT_RETRIES = 1;
export const DEFAULT_IMAGE_MAX_AGE_MS = 24 * 3600_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 60_000;

/** Settings with every default and nothing else: what a driver gets when no flag or driver.conf says more. */
export function defaultSettings(tempDir: string, cacheDir?: string): DriverSettings {
  return {
    conf: emptyConf(),
    tempDir,
    cacheDir,
    image: { maxAgeMs: DEFAULT_IMAGE_MAX_AGE_MS },
    qemu: { bootRetries: DEFAULT_BOOT_RETRIES, warm: 'on' },
    ssh: { user: 'root', connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS },
    docker: {},
  };
}

export function emptyConf(file = ''): DriverConf {
  return { file, blocks: {}, warnings: [] };
}

export type FlagValues = Record<string, string | boolean | undefined>;

/** Every value of a repeatable flag, in order, keyed by flag name. */
const repeated = new WeakMap<FlagValues, Record<string, string[]>>();

/** Keeps one more value of a repeatable option (see `all`). */
export function recordRepeated(flags: FlagValues, name: string, value: string): void {
  const values = repeated.get(flags) ?? {};
  (values[name] ??= []).push(value);
  repeated.set(flags, values);
}

/** All values of a repeatable flag (the last one only for others). */
export function all(flags: FlagValues, name: string): string[] {
  const list = repeated.get(flags)?.[name];
  if (list) return list;
  const v = flags[name];
  return typeof v === 'string' ? [v] : [];
}

export function str(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

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

/** -cache-dir, else $XDG_CACHE_HOME/djinn/images (for builds and for `djinn image`). */
export function cacheDirFlag(flags: FlagValues): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return str(flags, 'cache-dir') ?? path.join(base, 'djinn', 'images');
}

/**
 * Where a build's temporary folders go (overlays, saved states, seeds): RUNNER_TEMP when set, else
 * the cache folder. Never /tmp: Ubuntu 26.04 runners mount it as a RAM tmpfs with a per-user quota.
 */
export function buildTempRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNNER_TEMP) return env.RUNNER_TEMP;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'djinn', 'tmp');
}

export function settingsFromFlags(flags: FlagValues, conf: DriverConf, tempDir: string): DriverSettings {
  return {
    conf,
    tempDir,
    cacheDir: cacheDirFlag(flags),
    image: {
      name: str(flags, 'image'),
      file: str(flags, 'image-file'),
      format: oneOf(flags, 'image-format', ['qcow2', 'raw'] as const),
      url: str(flags, 'image-url'),
      sha256: str(flags, 'image-sha256'),
      server: str(flags, 'image-server'),
      build: oneOf(flags, 'image-build', ['auto', 'always', 'never'] as const),
      maxAgeMs: durFlag(flags, 'image-max-age') ?? DEFAULT_IMAGE_MAX_AGE_MS,
      source: oneOf(flags, 'image-source', ['auto', 'server', 'catalogue', 'build'] as const),
      // The action passes its multi-line input as one value: one DISTRO=URL per line.
      mirrors: all(flags, 'image-mirror').flatMap((v) => v.split(/\s+/).filter(Boolean)),
      checksum: oneOf(flags, 'image-checksum', ['required', 'off'] as const),
    },
    qemu: {
      disks: str(flags, 'disks') ?? confString(conf, 'qemu', 'disks'),
      cpus: intFlag(flags, 'cpus') ?? confInt(conf, 'qemu', 'cpus'),
      memoryMiB: intFlag(flags, 'memory') ?? confInt(conf, 'qemu', 'memory'),
      kvm: oneOf<Tristate>(flags, 'kvm', ['auto', 'on', 'off']) ?? confChoice<Tristate>(conf, 'qemu', 'kvm', ['auto', 'on', 'off']),
      tcgThreads: oneOf<TcgThreads>(flags, 'tcg-threads', ['single', 'multi']),
      bootTimeoutMs: durFlag(flags, 'boot-timeout') ?? confDuration(conf, 'qemu', 'boot_timeout'),
      bootStallMs: durFlag(flags, 'boot-stall'),
      bootRetries: countFlag(flags, 'boot-retries') ?? DEFAULT_BOOT_RETRIES,
      warm: oneOf(flags, 'warm', ['on', 'off', 'refresh'] as const) ?? 'on',
    },
    ssh: {
      user: (str(flags, 'ssh-user') ?? confString(conf, 'ssh', 'user')) || 'root',
      keyFile: str(flags, 'ssh-key') ?? confString(conf, 'ssh', 'key'),
      password: confString(conf, 'ssh', 'password'),
      connectTimeoutMs: durFlag(flags, 'connect-timeout') ?? confDuration(conf, 'ssh', 'timeout') ?? DEFAULT_CONNECT_TIMEOUT_MS,
    },
    docker: { host: confString(conf, 'docker', 'host'), version: confString(conf, 'docker', 'version') },
  };
}
