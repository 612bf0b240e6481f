// The action's main step in-process, with @actions/core replaced by a recorder: GitHub's runner
// (which reads the step's outputs, state and failure from the process) cannot exist here. Inputs go
// in through getInput; everything else is real (manifest parsing, the os driver, the runner, the
// artifacts folder, the step summary file). The end-to-end tests on dist/ (action-*.test.ts) run
// the bundled action as GitHub does.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const recorded = vi.hoisted(() => ({
  inputs: {} as Record<string, string>,
  outputs: {} as Record<string, string>,
  state: {} as Record<string, string>,
  failed: [] as string[],
  errors: [] as { message: string; props?: unknown }[],
  log: [] as string[],
}));

vi.mock('@actions/core', async (importOriginal) => {
  const real = await importOriginal<typeof import('@actions/core')>();
  return {
    ...real,
    getInput: (name: string) => recorded.inputs[name] ?? '',
    setOutput: (name: string, value: unknown) => void (recorded.outputs[name] = String(value)),
    saveState: (name: string, value: unknown) => void (recorded.state[name] = String(value)),
    setFailed: (message: string | Error) => void recorded.failed.push(String(message)),
    setSecret: () => {},
    error: (message: string | Error, props?: unknown) => void recorded.errors.push({ message: String(message), props }),
    warning: (message: string | Error) => void recorded.log.push(`warning: ${String(message)}`),
    info: (message: string) => void recorded.log.push(message),
    debug: () => {},
    startGroup: (name: string) => void recorded.log.push(`group: ${name}`),
    endGroup: () => {},
  };
});

const { runMain } = await import('../src/action/main.js');

let workspace: string;
const savedEnv = { ...process.env };

beforeEach(async () => {
  workspace = await mkdtemp(path.join(os.tmpdir(), 'djinn-action-main-'));
  Object.assign(recorded, { inputs: {}, outputs: {}, state: {}, failed: [], errors: [], log: [] });
  process.env.GITHUB_WORKSPACE = workspace;
  process.env.RUNNER_TEMP = path.join(workspace, 'runner-temp');
  process.env.GITHUB_STEP_SUMMARY = path.join(workspace, 'summary.md');
  process.env.INPUT_MANIFEST = '.djinn.yml';
  await writeFile(process.env.GITHUB_STEP_SUMMARY, '');
  recorded.inputs = { manifest: '.djinn.yml', 'upload-artifacts': 'false', cache: 'false', workspace: 'off' };
});

afterEach(async () => {
  process.env = { ...savedEnv };
  await rm(workspace, { recursive: true, force: true });
});

describe('the action main step with @actions/core replaced', () => {
  it('runs an os-driver manifest, sets the outputs and fails nothing', async () => {
    await writeFile(
      path.join(workspace, '.djinn.yml'),
      'driver:\n  type: os\nstages: [make]\njobs:\n  - stage: make\n    commands:\n      - echo built > out.txt\n    artifacts:\n      - out.txt\n',
    );
    await runMain();
    expect(recorded.failed).toEqual([]);
    expect(recorded.outputs.status).toBe('passed');
    expect(recorded.outputs['artifacts-dir']).toBe(path.join(process.env.RUNNER_TEMP!, 'djinn-artifacts'));
    expect(recorded.state.finished).toBe('true');
    expect(await readFile(path.join(recorded.outputs['artifacts-dir'], 'out.txt'), 'utf8')).toBe('built\n');
    expect(await readFile(process.env.GITHUB_STEP_SUMMARY!, 'utf8')).toContain('.djinn.yml: passed');
  });

  it('fails the step naming the job when a job fails', async () => {
    await writeFile(
      path.join(workspace, '.djinn.yml'),
      'driver:\n  type: os\nstages: [make]\njobs:\n  - stage: make\n    name: broken\n    commands:\n      - exit 3\n',
    );
    await runMain();
    expect(recorded.outputs.status).toBe('failed');
    expect(recorded.failed).toEqual(['build failed: job broken in stage make failed: exit status 3']);
  });

  it('reports a bad manifest with an annotation at its file and line, before any machine starts', async () => {
    await writeFile(path.join(workspace, '.djinn.yml'), 'driver:\n  type: os\nstages: [a]\nallow_failures: a\n');
    await runMain();
    expect(recorded.outputs.status).toBe('failed');
    expect(recorded.failed).toHaveLength(1);
    expect(recorded.failed[0]).toMatch(/^\.djinn\.yml:4:\d+: allow_failures: expected a list of stage names/);
    expect(recorded.errors[0]?.props).toMatchObject({ file: '.djinn.yml', startLine: 4 });
    expect(recorded.state.runDir).toBeUndefined();
  });
});
