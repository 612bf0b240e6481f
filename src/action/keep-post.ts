// The post step's side of `keep` (kept apart from keep.ts so that the post
// bundle stays small): stop the kept machine and report on it.
import { readFile, rm } from 'node:fs/promises';
import * as core from '@actions/core';
import { formatDuration } from '../util/duration.js';
import { alive } from '../util/process.js';
import type { MachineFile } from '../vm-command/machine.js';
import { STATE } from './state.js';

/** Post step: stops the kept machine and says in the step summary how long it ran and how much it served. */
export async function stopKept(runDir: string): Promise<void> {
  const file = core.getState(STATE.kept);
  if (!file) return;
  let m: MachineFile;
  try {
    m = JSON.parse(await readFile(file, 'utf8')) as MachineFile;
  } catch {
    return; // main never finished writing it; the pidfile sweep stops QEMU
  }
  const stoppedAt = Date.now();
  // Only our QEMU: its command line names the run folder (pids get reused).
  const cmdline = await readFile(`/proc/${m.pid}/cmdline`, 'utf8').catch(() => '');
  const wasRunning = alive(m.pid) && cmdline.includes(runDir);
  if (wasRunning) {
    process.kill(m.pid, 'SIGTERM');
    for (let i = 0; i < 50 && alive(m.pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive(m.pid)) process.kill(m.pid, 'SIGKILL');
  }
  const served = (await readFile(m.commandsLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  const ran = formatDuration(stoppedAt - m.startedAt);
  const after = formatDuration(stoppedAt - m.keptAt);
  const what = `${served} djinn-vm command${served === 1 ? '' : 's'}`;
  const line = wasRunning
    ? `The kept machine ran for ${ran} (${after} after the build) and served ${what}; the post step stopped it.`
    : `The kept machine had already stopped when the post step ran; it served ${what}.`;
  core.info(line);
  await core.summary
    .addRaw(`<p>🖥️ ${line}</p>\n`)
    .write()
    .catch((err: unknown) => core.warning(`cannot write the step summary: ${(err as Error).message}`));
  const keptDir = core.getState(STATE.keptDir);
  if (keptDir) await rm(keptDir, { recursive: true, force: true });
}
