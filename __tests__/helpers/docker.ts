// A real Docker engine for the docker driver's tests. When DOCKER_HOST is
// set (.ci/run starts one) it is used as it is; otherwise a private dockerd
// is started with scripts/dockerd.sh and stopped by stopTestEngine(). The
// test image is an mmdebstrap tarball (scripts/docker-test-image.sh, cached
// under /var/cache/djinn-ci/) imported through the engine's import API.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { BUILD_LABEL } from '../../src/drivers/docker/docker-driver.js';
import { engineOptions } from '../../src/drivers/docker/engine.js';
import { ROOT } from './cli.js';

const run = promisify(execFile);

export interface TestEngine {
  docker: Docker;
  /** `unix:///...`, for DOCKER_HOST or driver.conf. */
  host: string;
  /** The imported test image, e.g. `djinn-test/debian:0c481638da9c83e8`. */
  image: string;
  /** The private dockerd's state folder, when we started one. */
  stateDir?: string;
}

export async function startTestEngine(): Promise<TestEngine> {
  let host = process.env.DOCKER_HOST;
  let stateDir: string | undefined;
  if (!host) {
    // Short path: dockerd's sockets live under it and Unix socket paths are limited to 107 bytes.
    stateDir = await mkdtemp('/tmp/djinn-dockerd-');
    try {
      const { stdout } = await run(path.join(ROOT, 'scripts', 'dockerd.sh'), ['start', stateDir]);
      const m = /DOCKER_HOST=(\S+)/.exec(stdout);
      if (!m) throw new Error(`scripts/dockerd.sh printed no DOCKER_HOST: ${stdout}`);
      host = m[1];
    } catch (err) {
      await stopDockerd(stateDir);
      throw err;
    }
  }
  const docker = new Docker(engineOptions(host));
  const engine: TestEngine = { docker, host, image: '', stateDir };
  try {
    engine.image = await importTestImage(docker);
  } catch (err) {
    await stopTestEngine(engine);
    throw err;
  }
  return engine;
}

export async function stopTestEngine(engine: TestEngine | undefined): Promise<void> {
  if (engine?.stateDir) await stopDockerd(engine.stateDir);
}

async function stopDockerd(stateDir: string): Promise<void> {
  await run(path.join(ROOT, 'scripts', 'dockerd.sh'), ['stop', stateDir]).catch(() => {});
  await rm(stateDir, { recursive: true, force: true });
}

/** Builds (or finds in the cache) the rootfs tarball and imports it unless the engine has it already. */
export async function importTestImage(docker: Docker): Promise<string> {
  const { stdout } = await run(path.join(ROOT, 'scripts', 'docker-test-image.sh'), [], { maxBuffer: 1 << 20, timeout: 15 * 60_000 });
  const tarball = stdout.trim().split('\n').pop() ?? '';
  const key = /rootfs-([0-9a-f]+)\.tar$/.exec(tarball)?.[1];
  if (!key) throw new Error(`scripts/docker-test-image.sh printed no tarball path: ${stdout}`);
  const image = `djinn-test/debian:${key}`;
  const have = await docker
    .getImage(image)
    .inspect()
    .then(() => true)
    .catch(() => false);
  if (!have) {
    const progress = await docker.importImage(createReadStream(tarball), { repo: 'djinn-test/debian', tag: key });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(progress, (err: Error | null) => (err ? reject(err) : resolve())),
    );
  }
  return image;
}

/** Containers and volumes of any djinn build still in the engine (there should be none). */
export async function leftovers(docker: Docker): Promise<string[]> {
  const containers = await docker.listContainers({ all: true, filters: { label: [BUILD_LABEL] } });
  const { Volumes } = await docker.listVolumes({ filters: { label: [BUILD_LABEL] } });
  return [...containers.map((c) => `container ${c.Names.join(',')}`), ...(Volumes ?? []).map((v) => `volume ${v.Name}`)];
}
