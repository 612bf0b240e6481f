// What a saved machine state depends on. A state only loads into a QEMU whose
// version, machine type, CPU, accelerator, memory, CPU count and devices are
// exactly those of the save, on the same disk contents: all of it is the key.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { sha256File } from '../../../util/sha256.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Bump when the layout of a state folder or the way states are made changes. */
export const STATE_FORMAT = 1;

export interface StateKey {
  /** SHA-256 of the base image file. */
  imageSha256: string;
  /** First line of `qemu-system-x86_64 --version`. */
  qemuVersion: string;
  /** A pinned machine type such as `pc-i440fx-7.2`, never the moving `pc` alias. */
  machine: string;
  /** `-cpu` model (`qemu64` when none is given). */
  cpu: string;
  /** `tcg` or `kvm`: a state saved under one does not load under the other. */
  accel: string;
  memoryMiB: number;
  cpus: number;
  /**
   * Every other argument that shapes the guest's hardware, in command-line
   * order (NIC model, disk interface, serial port, rng device, ...). Host-side
   * details that may differ per run (ports, file paths) must be left out.
   */
  devices: string[];
  /** Set for a stage state (the machine after a build's stage): the build's part of the key, hex. */
  stage?: string;
}

/** Stable text form of a key (fixed field order), hashed into its digest. */
export function canonicalKey(key: StateKey): string {
  return JSON.stringify({
    format: STATE_FORMAT,
    imageSha256: key.imageSha256,
    qemuVersion: key.qemuVersion,
    machine: key.machine,
    cpu: key.cpu,
    accel: key.accel,
    memoryMiB: key.memoryMiB,
    cpus: key.cpus,
    devices: key.devices,
    // Absent for warm-start states, so that their digests stay what they were.
    ...(key.stage !== undefined ? { stage: key.stage } : {}),
  });
}

/** Hex SHA-256 of the canonical key: names the state's folder and its cache entry. */
export function keyDigest(key: StateKey): string {
  return createHash('sha256').update(canonicalKey(key)).digest('hex');
}

/** Machine types QEMU accepts as aliases of the newest versioned type. */
const MOVING_MACHINES = new Set(['pc', 'q35', 'microvm']);

/** Throws if the key would not identify one exact machine. */
export function checkKey(key: StateKey): void {
  if (!/^[0-9a-f]{64}$/.test(key.imageSha256)) throw new Error('state key: imageSha256 must be a hex SHA-256');
  if (MOVING_MACHINES.has(key.machine) || !key.machine)
    throw new Error(`state key: pin the machine type (e.g. pc-i440fx-7.2), not "${key.machine}"`);
  if (!key.qemuVersion) throw new Error('state key: QEMU version missing');
  if (!(key.memoryMiB > 0) || !(key.cpus > 0)) throw new Error('state key: memory and CPU count must be positive');
}

const versionCache = new Map<string, Promise<string>>();

/** First line of `<binary> --version`, e.g. `QEMU emulator version 7.2.22 (Debian ...)`. */
export function qemuVersion(binary = 'qemu-system-x86_64'): Promise<string> {
  let p = versionCache.get(binary);
  if (!p) {
    p = execFileP(binary, ['--version']).then((r) => r.stdout.split('\n')[0]!.trim());
    p.catch(() => versionCache.delete(binary));
    versionCache.set(binary, p);
  }
  return p;
}

/** The versioned machine type `pc` stands for in this QEMU, e.g. `pc-i440fx-7.2`. */
const machineCache = new Map<string, Promise<string>>();

export function pinnedMachine(alias = 'pc', binary = 'qemu-system-x86_64'): Promise<string> {
  const id = `${binary}\0${alias}`;
  let p = machineCache.get(id);
  if (!p) {
    p = execFileP(binary, ['-machine', 'help']).then(({ stdout }) => {
      const m = new RegExp(`^${alias}\\s+.*\\(alias of ([^)]+)\\)`, 'm').exec(stdout);
      return m ? m[1]! : alias;
    });
    p.catch(() => machineCache.delete(id));
    machineCache.set(id, p);
  }
  return p;
}

async function memoId(imagePath: string): Promise<string> {
  const abs = path.resolve(imagePath);
  const st = await fs.stat(abs);
  return `${abs}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
}

async function readMemo(stateRoot: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await fs.readFile(path.join(stateRoot, 'image-digests.json'), 'utf8')) as Record<string, string>;
  } catch {
    return {}; // none yet, or unreadable: start over
  }
}

/** The image's SHA-256 if it was computed before for this very file (path, size, mtime, inode); never hashes. */
export async function knownImageDigest(imagePath: string, stateRoot: string): Promise<string | undefined> {
  const known = (await readMemo(stateRoot))[await memoId(imagePath)];
  return known && /^[0-9a-f]{64}$/.test(known) ? known : undefined;
}

/**
 * SHA-256 of an image, remembered in `<stateRoot>/image-digests.json` by
 * path, size, modification time and inode, so that an image is hashed once.
 */
export async function imageDigest(imagePath: string, stateRoot: string, signal?: AbortSignal): Promise<string> {
  const id = await memoId(imagePath);
  const known = await knownImageDigest(imagePath, stateRoot);
  if (known) return known;
  const digest = await sha256File(path.resolve(imagePath), signal);
  await fs.mkdir(stateRoot, { recursive: true });
  const memo = await readMemo(stateRoot);
  memo[id] = digest;
  const memoFile = path.join(stateRoot, 'image-digests.json');
  const tmp = `${memoFile}.${process.pid}.${Date.now()}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(memo));
  await fs.rename(tmp, memoFile);
  return digest;
}
