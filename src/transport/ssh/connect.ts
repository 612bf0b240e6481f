// Opening one authenticated ssh2 connection: wait for the banner, then log in
// trying key, none, empty password, password; retry transient failures until
// the deadline, but never a refused login (it will not get better).
import net from 'node:net';
import ssh2, { type AnyAuthMethod, type AuthenticationType, type Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Reporter } from '../../core/reporter.js';
import { DriverError } from '../../core/errors.js';
import { sleep } from '../../util/sleep.js';
import { describeSocketError, WAIT_LOG_EVERY_MS, waitForBannerSocket, type ProbeHints } from './banner.js';
import { coalesceWrites } from './coalesce.js';
import { collectGarbageAsTrafficFlows } from './garbage.js';
import { fingerprint, keyType, KeyError, normalizePrivateKey } from './keys.js';

export interface SshTarget {
  /** 127.0.0.1 for VMs. */
  host: string;
  port: number;
  /** root by default. */
  user: string;
  privateKey?: string | Buffer;
  /** '' = try an empty password (Djinn images); undefined also tries it after key and none. */
  password?: string;
  /** When to give up (a Date.now() time), retrying until then while the banner is not there. */
  deadline: number;
  reporter: Reporter;
  signal?: AbortSignal;
  /**
   * Keep retrying a refused login until the deadline (a booting VM may start sshd
   * before its keys or password are in place). Default: fail at once.
   */
  retryRefusedLogin?: boolean;
  /** Hints that the server may be up now, to probe at once (see banner.ts). */
  hints?: ProbeHints;
}

/** ssh2 detects a dead link after KEEPALIVE_MS * KEEPALIVE_MAX without an answer. */
const KEEPALIVE_MS = 15_000;
const KEEPALIVE_MAX = 4;

class AuthRefused extends Error {}

// ssh2 is CommonJS: Node's ESM loader only gives its default export.
const { Client: SshClient } = ssh2;

function authMethods(t: SshTarget, key: Buffer | undefined): { label: string; method: AnyAuthMethod }[] {
  const username = t.user;
  const out: { label: string; method: AnyAuthMethod }[] = [];
  if (key) out.push({ label: 'key', method: { type: 'publickey', username, key } });
  out.push({ label: 'none', method: { type: 'none', username } });
  if (t.password === '' || t.password === undefined)
    out.push({ label: 'empty password', method: { type: 'password', username, password: '' } });
  if (t.password) {
    const password = t.password;
    out.push({ label: 'password', method: { type: 'password', username, password } });
    out.push({
      label: 'password (keyboard-interactive)',
      method: { type: 'keyboard-interactive', username, prompt: (_n, _i, _l, prompts, finish) => finish(prompts.map(() => password)) },
    });
  }
  return out;
}

/** One login attempt on a fresh TCP connection. */
function attempt(
  t: SshTarget,
  key: Buffer | undefined,
  timeoutMs: number,
  onHostKey: (blob: Buffer) => void,
  connected?: net.Socket,
): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new SshClient();
    const sock = connected ?? new net.Socket();
    // Without this every small request waits on Nagle + delayed ACK: 40 ms per job.
    sock.setNoDelay(true);
    coalesceWrites(sock);
    collectGarbageAsTrafficFlows(sock);
    const methods = authMethods(t, key);
    const tried: string[] = [];
    let offered: string[] | null = null;
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      t.signal?.removeEventListener('abort', onAbort);
      if (err) {
        client.removeAllListeners('ready');
        client.on('error', () => {});
        client.destroy();
        reject(err);
      } else resolve(client);
    };
    const onAbort = () => finish(new Error('aborted'));
    t.signal?.addEventListener('abort', onAbort, { once: true });
    client.on('ready', () => finish(null));
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (err.level === 'client-authentication') {
        const offers = offered ? ` (the server offers: ${offered.join(', ')})` : '';
        finish(
          new AuthRefused(`SSH login as ${t.user} to ${t.host}:${t.port} was refused; tried ${tried.join(', ') || 'nothing'}${offers}.`),
        );
      } else if (err.level === 'client-timeout') finish(new Error('the SSH handshake timed out'));
      else finish(new Error(err.code ? describeSocketError(err) : err.message));
    });
    client.on('close', () => finish(new Error('the connection was closed during the SSH handshake')));
    if (!connected) sock.connect({ host: t.host, port: t.port });
    client.connect({
      sock,
      username: t.user,
      readyTimeout: timeoutMs,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: KEEPALIVE_MAX,
      hostVerifier: (blob: Buffer) => {
        onHostKey(blob);
        return true;
      },
      authHandler: (left: AuthenticationType[] | null, _partial: boolean | null, next: (m: AnyAuthMethod | false) => void) => {
        if (left) offered = left;
        for (;;) {
          const m = methods.shift();
          if (!m) return next(false);
          if (m.method.type !== 'none' && left && !left.includes(m.method.type)) continue;
          tried.push(m.label);
          return next(m.method);
        }
      },
    } as ConnectConfig);
  });
}

/** An authenticated client; throws DriverError with a user-facing message. */
export async function openClient(t: SshTarget): Promise<Client> {
  let key: Buffer | undefined;
  if (t.privateKey !== undefined) {
    try {
      key = normalizePrivateKey(t.privateKey);
    } catch (err) {
      throw new DriverError(`cannot use the SSH private key: ${err instanceof KeyError ? err.message : String(err)}.`);
    }
  }
  const deadline = t.deadline;
  let printed = false;
  const onHostKey = (blob: Buffer) => {
    if (printed) return;
    printed = true;
    t.reporter.info(`Host key of ${t.host}:${t.port} is ${keyType(blob)} ${fingerprint(blob)} (accepted without checking)...`);
  };
  const log = (why: string, waited: number) =>
    t.reporter.info(`Waiting for SSH on ${t.host}:${t.port} (${why}; ${Math.round(waited / 1000)}s so far)...`);
  let lastError = '';
  let lastLog = Date.now();
  for (;;) {
    let sock: net.Socket;
    try {
      sock = await waitForBannerSocket(t.host, t.port, deadline, t.signal, log, t.hints);
    } catch (err) {
      const msg = (err as Error).message;
      if (msg === 'aborted') throw err;
      throw new DriverError(lastError ? msg.replace(/\.$/, `; last error: ${lastError}.`) : msg);
    }
    try {
      return await attempt(t, key, Math.max(2000, deadline - Date.now()), onHostKey, sock);
    } catch (err) {
      if (err instanceof AuthRefused && (!t.retryRefusedLogin || Date.now() >= deadline)) throw new DriverError(err.message);
      if ((err as Error).message === 'aborted') throw err;
      lastError = (err as Error).message;
      if (Date.now() >= deadline) throw new DriverError(`Timed out trying to connect to ${t.host}:${t.port}: ${lastError}.`);
      const refused = err instanceof AuthRefused;
      if (Date.now() - lastLog >= WAIT_LOG_EVERY_MS) {
        lastLog = Date.now();
        t.reporter.info(`Waiting for SSH on ${t.host}:${t.port} (${refused ? 'login refused so far' : lastError})...`);
      }
      await sleep(refused ? 1000 : 250, t.signal);
    }
  }
}

/**
 * Starts `command`. `attach` runs synchronously when the channel opens: ssh2
 * may emit data, `exit` and `close` in the same tick as the exec callback, so
 * listeners added after an await can miss the exit status.
 */
export function openExec(client: Client, command: string, attach: (ch: ClientChannel) => void): Promise<ClientChannel> {
  return new Promise((resolve, reject) =>
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      attach(ch);
      resolve(ch);
    }),
  );
}
