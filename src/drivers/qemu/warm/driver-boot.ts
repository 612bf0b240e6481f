// The qemu driver's warm path in one call: plan, launch, restore or boot (and
// save), connect over SSH, and fix up a restored guest. The driver keeps its
// own port retries, accelerator fall-back and error messages around it.
import type { ResolvedImage } from '../../../images/resolved.js';
import type { Reporter } from '../../../core/reporter.js';
import { SshSession, waitForBanner } from '../../../transport/ssh/index.js';
import type { DriverSettings } from '../../../config/settings.js';
import { HOSTFWD_TAKEN, QemuProcess, qemuArgs, type LaunchSpec } from '../launch.js';
import { BootStalled, watchStall } from '../stall.js';
import { afterConnect, runWarmSequence, type WarmSequenceResult } from './sequence.js';
import type { FixupResult } from './fixups.js';
import { waitForCloudInit, type CloudBoot } from '../cloud-seed.js';
import {
  applyLaunchChange,
  keyDigest,
  knownStateKey,
  restorePlan,
  type RestorePlan,
  type WarmMode,
  type WarmRequest,
} from './save-restore.js';
import { findStageState, stageStore, type StageMachine } from './stage-state.js';
import { ARTIFACTS_DIR } from './store.js';
import type { StateKey } from './key.js';
import type { CreateContext, ResumedStage } from '../../driver.js';
import path from 'node:path';
import { guestKey, sshTarget } from '../ssh-target.js';

/** `-warm` as set, `on` by default; off when there is no cache folder to keep states in. */
export function warmMode(settings: DriverSettings): WarmMode {
  if (!settings.cacheDir) return 'off';
  return settings.qemu.warm;
}

export interface DriverWarmBoot {
  settings: DriverSettings;
  image: ResolvedImage;
  /** The driver's launch description for a plain cold boot. */
  spec: LaunchSpec;
  /** The build's own temporary folder. */
  tempDir: string;
  /** Absolute time by which a cold boot must answer on SSH. */
  deadline: number;
  /** A cold boot quiet this long (no console output, no banner) throws BootStalled; a restore gets at most this long to answer. */
  stallMs: number;
  reporter: Reporter;
  signal: AbortSignal;
  /** Called with every QEMU started, so the driver can stop it whatever happens. */
  onProcess(qemu: QemuProcess): void;
  /** Catalogue images: log in with the seed's key, and save only once cloud-init is done. */
  cloud?: CloudBoot;
  /** Where the warm sequence's own lines go (restored, booted cold, saved, fixed up); the reporter unless set. */
  warmLog?(line: string): void;
  /** The build's stage states to try first (see CreateContext.stageStates). */
  stageStates?: CreateContext['stageStates'];
}

export interface DriverWarmResult {
  qemu: QemuProcess;
  session: SshSession;
  facts: Record<string, string | number | boolean>;
  /** How the machine started: restored or booted, the state's key, the save's duration. */
  sequence: WarmSequenceResult<QemuProcess>;
  /** What was fixed up in a restored guest (clock, entropy). */
  fixups?: FixupResult;
  /** When the build asked for stage states: what a stage save needs (unset when the machine cannot be saved), and the state restored. */
  stage?: { machine?: StageMachine; resumed?: ResumedStage };
}

/** How long a restored machine gets to answer on SSH before we boot cold instead. */
export const RESTORE_CONNECT_MS = 30_000;

export async function bootWarm(o: DriverWarmBoot): Promise<DriverWarmResult> {
  const s = o.settings;
  const port = o.spec.sshPort;
  const key = await guestKey(s.ssh, o.cloud?.privateKey);
  let session: SshSession | undefined;
  const open = (deadline: number) =>
    SshSession.connect(
      sshTarget({
        port,
        ssh: s.ssh,
        privateKey: key,
        deadline: Math.max(Date.now() + 5_000, deadline),
        reporter: o.reporter,
        signal: o.signal,
        cloudInit: o.cloud !== undefined,
      }),
    );
  const connect = async (deadline: number) => {
    session = await open(deadline);
  };
  let cloudInitMs: number | undefined;
  /** A booted catalogue image is ready (and may be saved) only once cloud-init is done. */
  const cloudInitDone = async (deadline: number) => {
    const first = await open(deadline);
    try {
      await waitForCloudInit(
        (c) => first.exec(c),
        (l) => o.reporter.info(l),
        (l) => o.reporter.warn(l),
      );
      cloudInitMs = Date.now() - t0;
      o.reporter.info(`Machine ready in ${(cloudInitMs / 1000).toFixed(1)}s (root logged in, cloud-init done).`);
    } finally {
      await first.close().catch(() => {});
    }
  };
  const untilExit = (q: QemuProcess) => {
    const c = new AbortController();
    void q.exited.then(() => c.abort());
    return AbortSignal.any([o.signal, c.signal]);
  };
  const t0 = Date.now();
  const mode = warmMode(s);
  const req: WarmRequest = {
    mode,
    cacheDir: s.cacheDir ?? '',
    tempDir: o.tempDir,
    image: { path: o.image.path, format: o.image.format, sha256: o.image.sha256 },
    args: qemuArgs(o.spec),
    writableTop: o.stageStates !== undefined,
  };
  const stage = o.stageStates ? await findStageRestore(req, o.stageStates, o.reporter) : undefined;
  const result = await runWarmSequence(
    req,
    {
      launch: async (change) => {
        const q = await QemuProcess.start(applyLaunchChange(o.spec, change));
        o.onProcess(q);
        return q;
      },
      alive: (q) => q.running,
      // SIGKILL: a QEMU that is not used keeps nothing worth a clean exit, and a frozen one ignores SIGTERM.
      stop: async (q) => void (await q.kill()),
      waitForSsh: async (q, deadline) => {
        const stall = watchStall(q.spec.consoleLog, o.stallMs, q.pid);
        try {
          await waitForBanner('127.0.0.1', port, deadline, AbortSignal.any([untilExit(q), stall.signal]));
        } catch (err) {
          if (stall.signal.aborted && !o.signal.aborted && q.running) throw stall.signal.reason as BootStalled;
          throw err;
        } finally {
          stall.stop();
        }
        if (o.cloud) await cloudInitDone(deadline);
      },
      connectRestored: async (q, deadline) => {
        if (!q.running) throw new Error('QEMU exited');
        await connect(deadline);
      },
      exitText: async (q) => (q.running ? '' : (await q.exited).stderr),
      isTransient: (stderr) => HOSTFWD_TAKEN.test(stderr),
      log: (line) => (o.warmLog ? o.warmLog(line) : o.reporter.info(line)),
      warn: (line) => o.reporter.warn(line),
    },
    {
      bootTimeoutMs: Math.max(1, o.deadline - Date.now()),
      restoreBannerMs: Math.min(RESTORE_CONNECT_MS, o.stallMs),
      signal: o.signal,
      stageRestore: stage?.plan,
    },
  );
  if (!session) await connect(o.deadline);
  const facts: Record<string, string | number | boolean> = {
    start: result.start === 'restored' ? 'restored' : 'booted',
    startSeconds: Math.round((Date.now() - t0) / 100) / 10,
    warm: mode,
  };
  if (cloudInitMs !== undefined) facts.cloudInitMs = cloudInitMs;
  const stateKey = result.stateKey ?? result.plan.key;
  if (stateKey) facts.warmState = keyDigest(stateKey);
  if (result.savedSeconds !== undefined) facts.warmSaveSeconds = Math.round(result.savedSeconds * 10) / 10;
  const fix = await afterConnect(
    result,
    async (cmd) => {
      const r = await session!.exec(cmd);
      return { code: r.code, stdout: r.stdout.toString() };
    },
    (line) => (o.warmLog ? o.warmLog(line) : o.reporter.warn(line)),
  );
  if (fix) {
    facts.warmClock = fix.clock;
    facts.warmRandom = fix.rng;
  }
  const resumed = stage?.plan && result.plan === stage.plan ? stage.resumed : undefined;
  if (resumed) facts.stageRestored = resumed.stage;
  o.reporter.info(
    `Machine ${facts.start} in ${facts.startSeconds}s${resumed ? ` (from the state saved after stage ${resumed.stage})` : result.start === 'restored' ? ' (from a saved state)' : ''}.`,
  );
  const out: DriverWarmResult = { qemu: result.proc, session: session!, facts, sequence: result, fixups: fix };
  if (o.stageStates) out.stage = { machine: stageMachine(result, stage?.baseKey, o.image), resumed };
  return out;
}

/** Looks for a stage state to start from; logs why none when there are candidates. */
async function findStageRestore(
  req: WarmRequest,
  states: NonNullable<CreateContext['stageStates']>,
  reporter: Reporter,
): Promise<{ baseKey?: StateKey; plan?: RestorePlan; resumed?: ResumedStage }> {
  const baseKey = await knownStateKey(req);
  if (!baseKey || states.candidates.length === 0) return { baseKey };
  const store = stageStore(req.cacheDir);
  const base = { path: req.image.path, format: req.image.format };
  const hit = await findStageState(store, { key: baseKey, base }, states.candidates, req.tempDir, states.maxAgeMs);
  if ('misses' in hit) {
    // Absent or too old is normal; a state that is there but does not check out is worth a warning.
    const normal = hit.misses.every((m) => /no saved state|older than the max age/.test(m));
    (normal ? reporter.info : reporter.warn).call(
      reporter,
      `stage cache: no state to start from (${hit.misses.join('; ')}); running the stages`,
    );
    return { baseKey };
  }
  const m = hit.found.manifest;
  const artifacts = (m.stage?.artifacts ?? []).map((a) => ({
    job: a.job,
    src: a.src,
    dst: a.dst,
    path: path.join(hit.found.dir, ARTIFACTS_DIR, a.file),
  }));
  const key = states.candidates.find((c) => c.stage === hit.stage)!.key;
  return {
    baseKey,
    plan: await restorePlan(req, hit.key, store, hit.found),
    resumed: { stage: hit.stage, key, savedAt: m.createdAt, artifacts },
  };
}

/** What a later stage save needs; undefined when the disk below the machine's writes is not a file we can name. */
function stageMachine(
  result: Awaited<ReturnType<typeof runWarmSequence<QemuProcess>>>,
  baseKey: StateKey | undefined,
  image: ResolvedImage,
): StageMachine | undefined {
  const { stage: _stage, ...known } = result.stateKey ?? baseKey ?? ({} as Partial<StateKey>);
  const key = known.imageSha256 ? (known as StateKey) : undefined;
  const base = { path: image.path, format: image.format };
  let below: string | undefined;
  if (result.plan.kind === 'restore') below = result.plan.found.overlayPath;
  else if (result.plan.kind === 'save') below = result.savedOverlay;
  // A cold plan writes to QEMU's hidden snapshot=on file: nothing we can copy.
  if (!key || !below) return undefined;
  return { qmpSocket: result.plan.qmpSocket, base, key, below };
}
