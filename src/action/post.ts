// The action's post step (always runs, also after a cancelled or failed main):
// stop any machine still running, upload the artifacts collected so far if
// main could not, print the serial console's tail when a machine failed to boot.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as core from '@actions/core';
import { alive } from '../util/process.js';
import { listFiles, uploadArtifacts } from './artifacts.js';
import { stopKept } from './keep-post.js';
import { STATE } from './state.js';
import { saveStageStates } from './stage-cache.js';
import { message } from '../core/errors.js';

const TAIL_LINES = 60;

/** Stops every process whose pidfile (`*.pid`) is under the run folder and still names a live process of ours. */
export async function stopLeftovers(runDir: string): Promise<number> {
  let stopped = 0;
  for (const f of (await listFiles(runDir)).filter((p) => p.endsWith('.pid'))) {
    const pid = Number((await readFile(f, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !alive(pid)) continue;
    // Only a process started for this build: its command line names the run folder.
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(runDir)) continue;
    core.info(`Stopping process ${pid} left running by the main step (${path.basename(f)}).`);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    stopped++;
  }
  return stopped;
}

async function printConsoleLogs(dir: string): Promise<void> {
  const logs = (await listFiles(dir)).filter((p) => /(console|serial)[^/]*\.log$/.test(path.basename(p)));
  for (const log of logs) {
    const { size } = await stat(log);
    if (size === 0) {
      core.info(`The serial console of the machine that did not finish booting is empty (${path.basename(log)}).`);
      continue;
    }
    const text = await readFile(log, 'utf8');
    const lines = text.replace(/\r/g, '').trimEnd().split('\n');
    core.startGroup(
      `Serial console of the machine that failed to boot (last ${Math.min(TAIL_LINES, lines.length)} lines of ${path.basename(log)})`,
    );
    core.info(lines.slice(-TAIL_LINES).join('\n'));
    core.endGroup();
  }
}

export async function runPost(): Promise<void> {
  try {
    const runDir = core.getState(STATE.runDir);
    if (runDir) await stopKept(runDir);
    if (runDir) await stopLeftovers(runDir);

    const bootFailed = core.getState(STATE.bootFailed);
    if (bootFailed) for (const dir of JSON.parse(bootFailed) as string[]) await printConsoleLogs(dir);
    else if (runDir && !core.getState(STATE.finished))
      for (const d of await readdir(runDir).catch(() => [])) await printConsoleLogs(path.join(runDir, d));

    if (core.getState(STATE.uploadPending) === 'true') {
      const name = core.getState(STATE.artifactName);
      const dir = core.getState(STATE.artifactsDir);
      try {
        const up = await uploadArtifacts(name, dir);
        if (up.id !== undefined)
          core.info(
            `Uploaded ${up.files} artifact file${up.files === 1 ? '' : 's'} collected before the main step stopped, as ` +
              `"${name}" (id ${up.id}${up.url ? `, ${up.url}` : ''}).`,
          );
      } catch (err) {
        core.warning(`uploading the artifacts as "${name}" failed: ${message(err)}`);
      }
    }
    await saveStageStates();
    if (runDir) await rm(runDir, { recursive: true, force: true });
  } catch (err) {
    // The post step must never fail the job on its own.
    core.warning(`post step: ${message(err)}`);
  }
}
