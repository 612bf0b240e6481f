// Waiting for an SSH server that is not up yet. QEMU's port forward accepts
// TCP long before the guest's sshd runs (and then drops the connection), so a
// successful TCP connect means nothing: only the server's `SSH-` banner does.
import net from 'node:net';

/** A quick probe's wait for the banner before trying again. */
export const PROBE_TIMEOUT_MS = 1500;
/**
 * One probe at a time is patient: it waits twice as long as the last patient
 * one each time it times out, up to this. Quick probes alone can livelock a
 * slow guest: under emulation on a loaded host, sshd may take longer than
 * PROBE_TIMEOUT_MS from accepting a connection to sending its banner, so every
 * quick probe gives up just before the banner, and each costs the guest
 * another sshd start (seen as hangs of minutes with sshd listening and its
 * console full of "Connection closed by 10.0.2.2").
 */
const MAX_PATIENT_TIMEOUT_MS = 24_000;
/** A probe on a console hint (sshd is starting now) waits this long for the banner. */
const HINTED_PROBE_TIMEOUT_MS = 60_000;
/**
 * Pause between the starts of two probes. Not shorter: every probe that reaches
 * a booting guest costs it work, and under emulation probing 4 times a second
 * delayed the guest's sshd by 0.2-1 s (bench/boot.ts). A hint (below) makes up
 * for the slow pace when the machine says that its sshd is starting.
 */
const RETRY_PAUSE_MS = 1000;
/** Probes waiting for a banner at once, hinted ones aside. */
const MAX_PROBES = 2;
/** Shortest gap between two hinted probes. */
const HINT_GAP_MS = 100;

/**
 * A source of hints that the server may be up now (the qemu driver watches the
 * serial console for sshd's lines): it calls `probeNow` on each and returns a
 * function that stops it.
 */
export type ProbeHints = (probeNow: () => void) => () => void;

/** Called while waiting, at most once every few seconds, with why the last probe failed. */
export type WaitLogger = (why: string, waitedMs: number) => void;
export const WAIT_LOG_EVERY_MS = 5000;

/**
 * One probe that keeps the connection: resolves with the open socket, paused,
 * with every byte read so far pushed back, so an SSH client can take it over.
 * Each new connection costs the guest an sshd start (slow under emulation),
 * so the login reuses the probe's connection instead of opening a second one.
 */
const NO_BANNER_YET = 'no SSH banner yet';

export function probeBannerKeep(host: string, port: number, timeoutMs: number): Promise<net.Socket | string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const chunks: Buffer[] = [];
    let got = '';
    const done = (why: string | null) => {
      clearTimeout(timer);
      if (why === null) {
        sock.removeAllListeners('data');
        sock.removeAllListeners('error');
        sock.removeAllListeners('close');
        sock.pause();
        sock.unshift(Buffer.concat(chunks));
        return resolve(sock);
      }
      sock.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(NO_BANNER_YET), timeoutMs);
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.toString('latin1');
      // Servers may send other lines before the banner (RFC 4253 4.2).
      if (/(^|\n)SSH-/.test(got)) done(null);
      else if (got.length > 8192) done('the server does not speak SSH');
    });
    sock.on('error', (err: NodeJS.ErrnoException) => done(describeSocketError(err)));
    sock.on('close', () => done('the connection was closed before the SSH banner'));
  });
}

export function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENOTFOUND':
      return 'host name not found';
    default:
      return err.message;
  }
}

/**
 * Resolves once the server at host:port sends its SSH banner; rejects with a
 * clear message when `deadline` (a Date.now() time) passes or `signal` aborts.
 */
export async function waitForBanner(host: string, port: number, deadline: number, signal?: AbortSignal, log?: WaitLogger): Promise<void> {
  (await waitForBannerSocket(host, port, deadline, signal, log)).destroy();
}

/** Like waitForBanner, but hands over the connection that got the banner (see probeBannerKeep). */
export function waitForBannerSocket(
  host: string,
  port: number,
  deadline: number,
  signal?: AbortSignal,
  log?: WaitLogger,
  hints?: ProbeHints,
): Promise<net.Socket> {
  const started = Date.now();
  // Probes overlap: a new one starts every RETRY_PAUSE_MS while fewer than
  // MAX_PROBES wait. Through QEMU's port forward a probe made before the guest's
  // network is up hangs until its timeout, so one probe at a time would notice
  // a fresh sshd up to PROBE_TIMEOUT_MS late.
  return new Promise<net.Socket>((resolve, reject) => {
    let waiting = 0;
    let settled = false;
    let lastLog = started;
    let lastWhy = NO_BANNER_YET;
    let timer: NodeJS.Timeout | undefined;
    const hintsOff: { stop?: () => void } = {};
    const finish = (err: Error | null, sock?: net.Socket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      hintsOff.stop?.();
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(sock!);
    };
    const onAbort = () => finish(new Error('aborted'));
    const timedOut = () =>
      finish(new Error(`Timed out trying to connect to ${host}:${port} after ${Math.round((Date.now() - started) / 1000)}s (${lastWhy}).`));
    let patientWaiting = false;
    let patientTimeouts = 0;
    const probe = (kind: 'quick' | 'patient' | 'hinted') => {
      const now = Date.now();
      const wait =
        kind === 'quick'
          ? PROBE_TIMEOUT_MS
          : kind === 'hinted'
            ? HINTED_PROBE_TIMEOUT_MS
            : Math.min(MAX_PATIENT_TIMEOUT_MS, PROBE_TIMEOUT_MS * 2 ** patientTimeouts);
      waiting++;
      if (kind === 'patient') patientWaiting = true;
      void probeBannerKeep(host, port, Math.max(100, Math.min(wait, deadline - now))).then((r) => {
        waiting--;
        if (kind === 'patient') {
          patientWaiting = false;
          if (r === NO_BANNER_YET) patientTimeouts++;
        }
        if (typeof r !== 'string') {
          if (settled) r.destroy();
          else finish(null, r);
          return;
        }
        lastWhy = r;
        const t = Date.now();
        if (log && !settled && t - lastLog >= WAIT_LOG_EVERY_MS) {
          lastLog = t;
          log(r, t - started);
        }
        if (t >= deadline && waiting === 0) timedOut();
      });
    };
    const launch = () => {
      if (settled) return;
      const now = Date.now();
      if (now >= deadline) {
        if (waiting === 0) timedOut();
        return;
      }
      if (waiting < MAX_PROBES) probe(patientWaiting ? 'quick' : 'patient');
      timer = setTimeout(launch, Math.min(RETRY_PAUSE_MS, Math.max(0, deadline - now)));
    };
    // A hinted probe goes at once, whatever is in flight (one that went out before
    // sshd listened may hang), but not more than one per HINT_GAP_MS.
    let lastHint = 0;
    const hinted = () => {
      const now = Date.now();
      if (settled || now >= deadline || now - lastHint < HINT_GAP_MS) return;
      lastHint = now;
      probe('hinted');
    };
    if (signal?.aborted) return finish(new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    hintsOff.stop = hints?.(hinted);
    launch();
  });
}
