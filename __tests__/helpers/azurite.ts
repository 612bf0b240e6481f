// Starts Azurite (Microsoft's Azure Blob emulator, npm azurite@3.35) on a free
// loopback port, in memory, with telemetry off. The @actions/cache and
// @actions/artifact clients upload to and download from it exactly as they do
// to Azure Blob Storage on GitHub.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './cli.js';

/** The emulator's well-known development account (published by Microsoft, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** e.g. http://127.0.0.1:36051/devstoreaccount1 */
  blobUrl: string;
  stop(): Promise<void>;
}

export async function startAzurite(): Promise<Azurite> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-azurite-'));
  const bin = path.join(ROOT, 'node_modules', '.bin', 'azurite-blob');
  const child: ChildProcess = spawn(
    bin,
    ['--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--skipApiVersionCheck', '--loose', '--disableTelemetry'],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir }, // in memory; cwd keeps any stray file out of the tree
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('close', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`Azurite did not start:\n${out}`)), 30_000);
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      child.once('close', () => reject(new Error(`Azurite exited:\n${out}`)));
    });
    return { blobUrl: `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
