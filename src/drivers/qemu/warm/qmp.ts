// A small QMP client: one Unix socket, JSON objects one per line, the
// capabilities handshake, and the few commands a warm start needs (stop,
// migrate to a file, query-migrate, query-status, cont, quit).
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { shellQuote } from '../../../core/shell.js';

export class QmpError extends Error {
  constructor(
    message: string,
    readonly qmpClass?: string,
  ) {
    super(message);
    this.name = 'QmpError';
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export interface QmpEvent {
  event: string;
  data?: unknown;
}

export interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  ram?: { transferred?: number; total?: number };
}

export class QmpClient {
  private buffer = '';
  private queue: Pending[] = [];
  private closedError: Error | undefined;
  readonly events: QmpEvent[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new QmpError(`QMP connection failed: ${err.message}`)));
    socket.on('close', () => this.fail(new QmpError('QMP connection closed (QEMU exited?)')));
  }

  /**
   * Connects to QEMU's `-qmp unix:PATH,server,wait=off` socket, retrying while
   * QEMU has not created it yet, and negotiates capabilities.
   */
  static async connect(
    socketPath: string,
    opts: { timeoutMs?: number; signal?: AbortSignal; alive?: () => boolean } = {},
  ): Promise<QmpClient> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    let lastError: string;
    for (;;) {
      opts.signal?.throwIfAborted();
      if (opts.alive && !opts.alive()) throw new QmpError('QEMU exited before its QMP socket answered');
      try {
        const socket = await openSocket(socketPath);
        const client = new QmpClient(socket);
        // The greeting ({"QMP": ...}) arrives first, unasked; it takes the first queue slot.
        await client.expectReply();
        await client.execute('qmp_capabilities');
        return client;
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (Date.now() > deadline) throw new QmpError(`no QMP socket at ${socketPath} after ${opts.timeoutMs ?? 10_000} ms: ${lastError}`);
      await sleep(25);
    }
  }

  /** Runs one command and returns its `return` value; a QMP `error` becomes a QmpError. */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedError) throw this.closedError;
    const reply = this.expectReply();
    this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    return (await reply) as T;
  }

  stop(): Promise<unknown> {
    return this.execute('stop');
  }

  cont(): Promise<unknown> {
    return this.execute('cont');
  }

  async status(): Promise<string> {
    const r = await this.execute<{ status: string }>('query-status');
    return r.status;
  }

  /** Starts writing the machine's state into `file` (QEMU ≥ 7: through `exec:cat`). */
  migrateToFile(file: string): Promise<unknown> {
    return this.execute('migrate', { uri: `exec:cat > ${shellQuote(file)}` });
  }

  /** Polls query-migrate until the outgoing migration completed; throws on failed/cancelled. */
  async waitMigrationDone(timeoutMs = 120_000, signal?: AbortSignal): Promise<MigrationInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const info = await this.execute<MigrationInfo>('query-migrate');
      if (info.status === 'completed') return info;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new QmpError(`saving the machine state ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`);
      }
      if (Date.now() > deadline)
        throw new QmpError(`saving the machine state did not finish within ${timeoutMs} ms (status ${info.status ?? 'none'})`);
      await sleep(20);
    }
  }

  /**
   * Polls query-status until an incoming migration has been loaded (the
   * machine leaves `inmigrate`). Returns the new status, normally `paused`.
   */
  async waitIncomingDone(timeoutMs = 60_000, signal?: AbortSignal): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const status = await this.status();
      if (status !== 'inmigrate') {
        if (status === 'paused' || status === 'running' || status === 'postmigrate') return status;
        throw new QmpError(`loading the machine state failed (status ${status})`);
      }
      if (Date.now() > deadline) throw new QmpError(`loading the machine state did not finish within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Asks QEMU to exit; the socket closes as it does. */
  async quit(): Promise<void> {
    try {
      await this.execute('quit');
    } catch {
      // QEMU may close the socket before replying: that is the point.
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private expectReply(): Promise<unknown> {
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.fail(new QmpError(`QMP sent something that is not JSON: ${line.slice(0, 200)}`));
        return;
      }
      if (typeof msg.event === 'string') {
        this.events.push({ event: msg.event, data: msg.data });
        continue;
      }
      const pending = this.queue.shift();
      if (!pending) continue;
      if (msg.error) {
        const e = msg.error as { class?: string; desc?: string };
        pending.reject(new QmpError(e.desc ?? 'QMP error', e.class));
      } else if ('QMP' in msg) {
        pending.resolve(msg.QMP);
      } else {
        pending.resolve(msg.return);
      }
    }
  }

  private fail(err: Error): void {
    if (!this.closedError) this.closedError = err;
    for (const p of this.queue.splice(0)) p.reject(err);
  }
}

function openSocket(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath);
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}
