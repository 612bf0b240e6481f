// Saved machine states on disk, under <cacheDir>/warm/ (layout: docs/warm-start.md,
// "Where states live"). A generation is published whole, so a concurrent build sees
// the old state or the new one; overlay and state are only ever used together.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { readQcow2Header } from '../../../images/fetch/qcow2.js';
import { sha256File } from '../../../util/sha256.js';
import { canonicalKey, keyDigest, STATE_FORMAT, type StateKey } from './key.js';

const execFileP = promisify(execFile);

export const OVERLAY_FILE = 'overlay.qcow2';
export const STATE_FILE = 'machine.state';
export const MANIFEST_FILE = 'manifest.json';
/** Superseded generations older than this are removed (a restore opens its files within seconds). */
const OLD_GENERATION_MS = 10 * 60_000;
/** States not restored or saved for this long are removed (an old image, another memory size, ...). */
export const UNUSED_STATE_MS = 14 * 24 * 3600_000;

export interface StateManifest {
  format: number;
  keyDigest: string;
  key: StateKey;
  generation: string;
  createdAt: string;
  base: { path: string; format: 'qcow2' | 'raw' };
  overlay: { file: string; sha256: string; bytes: number };
  state: { file: string; sha256: string; bytes: number };
  /** Seconds the cold boot took before the save (for reports). */
  bootSeconds?: number;
  /** A stage state: the stage it was saved after and the artifacts collected up to then (in `artifacts/`). */
  stage?: { name: string; artifacts: StateArtifact[] };
}

export interface StateArtifact {
  job: string;
  src: string;
  dst: string;
  /** File name inside the generation's `artifacts/` folder. */
  file: string;
  sha256: string;
  bytes: number;
}

export const ARTIFACTS_DIR = 'artifacts';

/** What a stage save adds to a state: its stage and the artifact files to keep (copied at publish). */
export interface StageExtra {
  name: string;
  artifacts: { job: string; src: string; dst: string; path: string }[];
}

export function warmStateRoot(cacheDir: string): string {
  return path.join(cacheDir, 'warm');
}

/** Stage states' folder under the cache folder (stage-state.ts). */
export const STAGE_STATES_FOLDER = 'stages';

export function stageStateRoot(cacheDir: string): string {
  return path.join(cacheDir, STAGE_STATES_FOLDER);
}

/** A state that passed every check but the state file's digest (see `verifyState`). */
export interface FoundState {
  manifest: StateManifest;
  dir: string;
  /** The overlay to boot with `snapshot=on` (a rebased private copy when the base image moved). */
  overlayPath: string;
  statePath: string;
  /**
   * Resolves once the state file's SHA-256 matches the manifest, rejects
   * otherwise. Started at lookup so it runs while QEMU loads the same file;
   * await it before `cont`.
   */
  verifyState: Promise<void>;
}

export type LookupResult = { found: FoundState; reason?: undefined } | { found?: undefined; reason: string };

export interface PendingSave {
  dir: string;
  overlayPath: string;
  statePath: string;
  /** Hashes both files, writes the manifest and makes the state visible. */
  publish(extra?: { bootSeconds?: number; stage?: StageExtra }): Promise<StateManifest>;
  /** Removes the unfinished folder. Never throws. */
  abandon(): Promise<void>;
}

export interface StoreOptions {
  /** The folder under the cache folder (default `warm`; stage states live in `stages`). */
  folder?: string;
  /** After a publish, least recently used key folders go until the rest fits (default: no cap). */
  capBytes?: number;
}

export class StateStore {
  readonly root: string;
  private readonly capBytes?: number;

  constructor(cacheDir: string, options: StoreOptions = {}) {
    this.root = options.folder ? path.join(cacheDir, options.folder) : warmStateRoot(cacheDir);
    this.capBytes = options.capBytes;
  }

  keyDir(key: StateKey): string {
    return path.join(this.root, keyDigest(key));
  }

  /**
   * Finds the current state for `key` and checks it: manifest, key, sizes,
   * the overlay's digest and backing file. `scratchDir` receives a rebased
   * copy of the overlay when the base image is now at another path.
   */
  async lookup(
    key: StateKey,
    base: { path: string; format: 'qcow2' | 'raw' },
    scratchDir: string,
    maxAgeMs = Infinity,
  ): Promise<LookupResult> {
    const keyDir = this.keyDir(key);
    let generation: string;
    try {
      const ptr = JSON.parse(await fs.readFile(path.join(keyDir, 'current'), 'utf8')) as { generation?: unknown };
      if (typeof ptr.generation !== 'string' || !/^[0-9a-z-]+$/.test(ptr.generation)) return { reason: 'state pointer is damaged' };
      generation = ptr.generation;
    } catch (err) {
      return {
        reason:
          (err as NodeJS.ErrnoException).code === 'ENOENT'
            ? 'no saved state for this image and machine'
            : `cannot read the state pointer: ${(err as Error).message}`,
      };
    }
    const dir = path.join(keyDir, generation);
    let manifest: StateManifest;
    try {
      manifest = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as StateManifest;
    } catch (err) {
      return { reason: `state manifest unreadable: ${(err as Error).message}` };
    }
    if (manifest.format !== STATE_FORMAT) return { reason: `state format ${manifest.format} is not ${STATE_FORMAT}` };
    if (manifest.keyDigest !== keyDigest(key) || canonicalKey(manifest.key) !== canonicalKey(key))
      return { reason: 'state was saved for another machine' };
    if (manifest.generation !== generation) return { reason: 'state manifest does not belong to its folder' };
    const ageMs = Date.now() - Date.parse(manifest.createdAt);
    if (!(ageMs < maxAgeMs)) return { reason: `state is ${Math.round(ageMs / 3600_000)}h old, older than the max age` };
    const overlayPath = path.join(dir, OVERLAY_FILE);
    const statePath = path.join(dir, STATE_FILE);
    try {
      const [ov, st] = await Promise.all([fs.stat(overlayPath), fs.stat(statePath)]);
      if (st.size !== manifest.state.bytes) return { reason: `state file is ${st.size} bytes, expected ${manifest.state.bytes}` };
      if (ov.size !== manifest.overlay.bytes) return { reason: `state overlay is ${ov.size} bytes, expected ${manifest.overlay.bytes}` };
    } catch (err) {
      return { reason: `state files missing: ${(err as Error).message}` };
    }
    // The small overlay is checked now; the large state file while QEMU reads it.
    if ((await sha256File(overlayPath)) !== manifest.overlay.sha256) return { reason: 'state overlay does not match its recorded digest' };
    for (const a of manifest.stage?.artifacts ?? []) {
      const file = path.join(dir, ARTIFACTS_DIR, a.file);
      const sha = await sha256File(file).catch(() => '');
      if (sha !== a.sha256) return { reason: `kept artifact ${a.dst} is missing or does not match its recorded digest` };
    }
    let bootOverlay = overlayPath;
    const backing = await readQcow2Backing(overlayPath);
    if (backing !== path.resolve(base.path)) {
      // Same image content (its digest is in the key), new place: e.g. a state restored
      // from the action's cache on another runner. Point a private copy at the new place.
      bootOverlay = path.join(scratchDir, `warm-${generation}.qcow2`);
      await fs.copyFile(overlayPath, bootOverlay);
      await fs.chmod(bootOverlay, 0o644);
      await execFileP('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', base.format, '-b', path.resolve(base.path), bootOverlay]);
    }
    const verifyState = this.verifyOnce(keyDir, generation, statePath, manifest.state.sha256);
    verifyState.catch(() => undefined); // handled by whoever awaits it; never an unhandled rejection
    // The pointer's mtime records the last use, for removing states nobody uses any more.
    const now = new Date();
    await fs.utimes(path.join(keyDir, 'current'), now, now).catch(() => undefined);
    return { found: { manifest, dir, overlayPath: bootOverlay, statePath, verifyState } };
  }

  /**
   * Hashes the state file unless it was already found intact with the very same
   * inode, size, mtime and ctime (any write changes those): saves ~0.2 s of CPU
   * on every restore, while QEMU is loading.
   */
  private async verifyOnce(keyDir: string, generation: string, statePath: string, sha256: string): Promise<void> {
    const stamp = path.join(keyDir, `verified-${generation}.json`);
    const st = await fs.stat(statePath);
    const id = JSON.stringify({ ino: st.ino, dev: st.dev, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, sha256 });
    if ((await fs.readFile(stamp, 'utf8').catch(() => '')) === id) return;
    if ((await sha256File(statePath)) !== sha256) throw new Error('state file does not match its recorded digest (damaged)');
    await writeAtomic(stamp, id).catch(() => undefined);
  }

  /** Makes a fresh folder with a writable overlay on `base`, for a cold boot that will be saved. */
  /**
   * `key` may still be in the making (the image digest of a new image is
   * computed while it boots): it is only needed at publish. `onAbandon` runs
   * when the save is given up (e.g. to stop that computation).
   */
  async beginSave(
    keyOrPromise: StateKey | Promise<StateKey>,
    base: { path: string; format: 'qcow2' | 'raw' },
    onAbandon?: () => void,
  ): Promise<PendingSave> {
    await fs.mkdir(this.root, { recursive: true });
    const generation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    // Unfinished saves wait at the top level: their key folder may not be known yet.
    const dir = path.join(this.root, `.tmp-${generation}`);
    await fs.mkdir(dir);
    const overlayPath = path.join(dir, OVERLAY_FILE);
    const statePath = path.join(dir, STATE_FILE);
    const abandon = async (): Promise<void> => {
      onAbandon?.();
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    };
    try {
      await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', path.resolve(base.path), overlayPath]);
    } catch (err) {
      await abandon();
      throw err;
    }
    const publish = async (extra: { bootSeconds?: number; stage?: StageExtra } = {}): Promise<StateManifest> => {
      const artifacts = extra.stage ? await keepArtifacts(dir, extra.stage.artifacts) : [];
      const [key, ovSha, stSha, ov, st] = await Promise.all([
        keyOrPromise,
        sha256File(overlayPath),
        sha256File(statePath),
        fs.stat(overlayPath),
        fs.stat(statePath),
      ]);
      const keyDir = this.keyDir(key);
      await fs.mkdir(keyDir, { recursive: true });
      if (st.size === 0) throw new Error('the saved state is empty');
      const manifest: StateManifest = {
        format: STATE_FORMAT,
        keyDigest: keyDigest(key),
        key,
        generation,
        createdAt: new Date().toISOString(),
        base: { path: path.resolve(base.path), format: base.format },
        overlay: { file: OVERLAY_FILE, sha256: ovSha, bytes: ov.size },
        state: { file: STATE_FILE, sha256: stSha, bytes: st.size },
        ...(extra.bootSeconds !== undefined ? { bootSeconds: extra.bootSeconds } : {}),
        ...(extra.stage ? { stage: { name: extra.stage.name, artifacts } } : {}),
      };
      await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
      // Read-only from here on: nothing may write the overlay a state belongs to.
      await Promise.all([fs.chmod(overlayPath, 0o444), fs.chmod(statePath, 0o444)]);
      await fs.utimes(dir, new Date(), new Date()).catch(() => undefined);
      const finalDir = path.join(keyDir, generation);
      await fs.rename(dir, finalDir);
      await writeAtomic(path.join(keyDir, 'current'), JSON.stringify({ generation }) + '\n');
      await this.collect(keyDir, generation);
      await this.collect(this.root, '');
      await this.removeUnused();
      if (this.capBytes !== undefined) await this.enforceCap(this.capBytes, keyDir);
      return manifest;
    };
    return { dir, overlayPath, statePath, publish, abandon };
  }

  /** Forgets the current state of `key` (for `-warm refresh` or after a failed load). Files go at the next collection. */
  async forget(key: StateKey, generation?: string): Promise<void> {
    const ptrFile = path.join(this.keyDir(key), 'current');
    if (generation) {
      try {
        const ptr = JSON.parse(await fs.readFile(ptrFile, 'utf8')) as { generation?: string };
        if (ptr.generation !== generation) return; // someone already published a newer one
      } catch {
        return;
      }
    }
    await fs.rm(ptrFile, { force: true });
  }

  /** Removes whole key folders whose state was last used (or, without one, last changed) long ago. */
  async removeUnused(maxAgeMs = UNUSED_STATE_MS): Promise<void> {
    const now = Date.now();
    for (const name of await fs.readdir(this.root).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const dir = path.join(this.root, name);
      const st = (await fs.stat(path.join(dir, 'current')).catch(() => undefined)) ?? (await fs.stat(dir).catch(() => undefined));
      if (st && now - st.mtimeMs > maxAgeMs) await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Every state, for listing: key folder, manifest, bytes on disk and last use. */
  async list(): Promise<{ keyDir: string; manifest: StateManifest; bytes: number; lastUsed: Date }[]> {
    const out: { keyDir: string; manifest: StateManifest; bytes: number; lastUsed: Date }[] = [];
    for (const name of await fs.readdir(this.root).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const keyDir = path.join(this.root, name);
      try {
        const ptrFile = path.join(keyDir, 'current');
        const ptr = JSON.parse(await fs.readFile(ptrFile, 'utf8')) as { generation: string };
        const manifest = JSON.parse(await fs.readFile(path.join(keyDir, ptr.generation, MANIFEST_FILE), 'utf8')) as StateManifest;
        out.push({ keyDir, manifest, bytes: await treeBytes(keyDir), lastUsed: (await fs.stat(ptrFile)).mtime });
      } catch {
        continue; // being written or damaged: not a state to list
      }
    }
    return out.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
  }

  /** Removes a whole key folder by its digest (or a unique prefix of it); returns the digests removed. */
  async remove(digestPrefix: string): Promise<string[]> {
    if (!/^[0-9a-f]+$/.test(digestPrefix)) return [];
    const names = (await fs.readdir(this.root).catch(() => [] as string[])).filter(
      (n) => /^[0-9a-f]{64}$/.test(n) && n.startsWith(digestPrefix),
    );
    if (names.length !== 1) return [];
    await fs.rm(path.join(this.root, names[0]!), { recursive: true, force: true });
    return names;
  }

  /** Least recently used key folders go until the store fits in `capBytes`; `keep` (just published) stays. */
  private async enforceCap(capBytes: number, keep: string): Promise<void> {
    const all = await this.list();
    let total = all.reduce((n, s) => n + s.bytes, 0);
    for (const s of [...all].reverse()) {
      if (total <= capBytes) return;
      if (s.keyDir === keep) continue;
      await fs.rm(s.keyDir, { recursive: true, force: true }).catch(() => undefined);
      total -= s.bytes;
    }
  }

  /** Removes superseded generations and abandoned temporary folders once they are old enough. */
  private async collect(keyDir: string, keep: string): Promise<void> {
    const now = Date.now();
    for (const name of await fs.readdir(keyDir).catch(() => [] as string[])) {
      if (name === keep || name === 'current' || name.startsWith('current.')) continue;
      if (name.startsWith('verified-') && name !== `verified-${keep}.json`) {
        await fs.rm(path.join(keyDir, name), { force: true });
        continue;
      }
      const p = path.join(keyDir, name);
      const st = await fs.stat(p).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      if (keyDir === this.root && !name.startsWith('.tmp-')) continue; // key folders live here
      const limit = name.startsWith('.tmp-') ? 6 * OLD_GENERATION_MS : OLD_GENERATION_MS;
      if (now - st.mtimeMs > limit) await fs.rm(p, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/** Copies the artifacts into the unfinished state folder and describes them. */
async function keepArtifacts(dir: string, files: StageExtra['artifacts']): Promise<StateArtifact[]> {
  const out: StateArtifact[] = [];
  if (files.length) await fs.mkdir(path.join(dir, ARTIFACTS_DIR));
  for (const [i, a] of files.entries()) {
    const file = String(i);
    const target = path.join(dir, ARTIFACTS_DIR, file);
    await fs.copyFile(a.path, target);
    const [sha256, st] = await Promise.all([sha256File(target), fs.stat(target)]);
    out.push({ job: a.job, src: a.src, dst: a.dst, file, sha256, bytes: st.size });
  }
  return out;
}

/** Bytes allocated on disk by the files under a folder (overlays are sparse). */
async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isFile()) continue;
    const st = await fs.stat(path.join(e.parentPath, e.name)).catch(() => undefined);
    n += st ? st.blocks * 512 : 0;
  }
  return n;
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

/** The backing file name recorded in a qcow2 header ('' when none), read without qemu-img. */
export async function readQcow2Backing(file: string): Promise<string> {
  return (await readQcow2Header(file)).backingFile ?? '';
}
