// The docker driver's downloads against a real Docker engine (scripts/dockerd.sh
// or DOCKER_HOST) and the real test image, through DockerDriver itself so each
// case can name its own error. Nothing is mocked.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftovers, startTestEngine, stopTestEngine, type TestEngine } from './helpers/docker.js';
import { testSettings } from './helpers/settings.js';
import { DockerDriver } from '../src/drivers/docker/docker-driver.js';
import { downloadArchiveEntry } from '../src/drivers/docker/archive-download.js';
import { silentReporter } from '../src/core/reporter.js';
import { jobScript } from '../src/runner/script.js';

const LONG_NAME = `${'n'.repeat(140)}-ünï.txt`;
const LONG_DIR = `/w/${'d'.repeat(120)}`;
let engine: TestEngine | undefined;

function eng(): TestEngine {
  if (!engine) throw new Error('no engine');
  return engine;
}

describe('docker driver downloads', () => {
  let driver: DockerDriver | undefined;
  let tmp = '';
  const stop = new AbortController();

  beforeAll(async () => {
    engine = await startTestEngine();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'djinn-docker-dl-'));
    driver = new DockerDriver(
      { type: 'docker', options: { image: eng().image, workspace: '/w' }, position: {} },
      testSettings(tmp, { docker: { host: eng().host } }),
    );
    await driver.create({ reporter: silentReporter, env: [], signal: stop.signal });
    const made = await driver.execute(
      {
        stage: 'a',
        name: 'a.1',
        scriptName: 'a.1.sh',
        script: jobScript([
          'head -c 3000001 /dev/urandom > big',
          'sha256sum big | cut -d" " -f1 > big.sum',
          ': > empty',
          `mkdir -p deep && printf long > "deep/${LONG_NAME}"`,
          `mkdir -p "${LONG_DIR}" && printf far > "${LONG_DIR}/target"`,
          `ln -s "${LONG_DIR}/target" far-link`,
          'mkdir -p folder/sub && echo x > folder/sub/f',
        ]),
        env: [],
      },
      { write() {} },
      stop.signal,
    );
    expect(made.exitCode).toBe(0);
  }, 20 * 60_000);

  afterAll(async () => {
    await driver?.destroy();
    if (engine) expect(await leftovers(engine.docker)).toEqual([]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await stopTestEngine(engine);
  });

  const dl = async (guestPath: string): Promise<Buffer> => {
    const out = path.join(tmp, 'out.bin');
    await driver!.download(guestPath, out);
    return readFileSync(out);
  };

  it('brings files of every size, long names and long symlink targets across intact', async () => {
    const big = await dl('big');
    expect(big.length).toBe(3000001);
    expect(createHash('sha256').update(big).digest('hex')).toBe((await dl('big.sum')).toString().trim());
    expect((await dl('empty')).length).toBe(0);
    expect((await dl(`/w/deep/${LONG_NAME}`)).toString()).toBe('long');
    expect((await dl('far-link')).toString()).toBe('far');
  });

  it('reads the archive straight off the engine socket when the engine answers 200, and leaves errors to dockerode', async () => {
    const files = `${String(driver!.facts().volume)}-files`;
    const address = { path: eng().host.replace(/^unix:\/\//, '') };
    const version = String(driver!.facts().dockerApiVersion);
    const out = path.join(tmp, 'direct.bin');
    expect(await downloadArchiveEntry(address, version, files, '/w/big', out)).toEqual({ type: 'file' });
    expect(readFileSync(out).length).toBe(3000001);
    expect(await downloadArchiveEntry(address, version, files, '/w/far-link', out)).toEqual({
      type: 'symlink',
      target: `${LONG_DIR}/target`,
    });
    expect(await downloadArchiveEntry(address, version, files, '/w/missing', out)).toBeUndefined();
  });

  it('says what is wrong with a missing path or a folder', async () => {
    await expect(dl('missing')).rejects.toThrow('no file /w/missing in the container');
    await expect(dl('folder')).rejects.toThrow('/w/folder is not a regular file (directory)');
    // The connection a folder's archive was cut off on leaves the driver working.
    expect((await dl('empty')).length).toBe(0);
  });
});
