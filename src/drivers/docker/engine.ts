// Reaching a Docker engine through its API (never the docker CLI): where it
// is (driver.conf `host`, else DOCKER_HOST, else the default socket), which
// API version to speak, and making sure the build's image is there.
import type Docker from 'dockerode';
import type { Reporter } from '../../core/reporter.js';
import { DriverError } from '../../core/errors.js';
import type { EngineAddress } from './archive-download.js';

export const DEFAULT_HOST = 'unix:///var/run/docker.sock';
/** An engine that has not answered /version by then is not going to. */
const CONNECT_TIMEOUT_MS = 30_000;

function noAnswer(ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms).unref());
}

export interface Engine {
  docker: Docker;
  /** The address as the user would write it, for messages. */
  host: string;
  apiVersion: string;
  engineVersion: string;
  /** Where to reach it without dockerode for downloads: a unix socket or plain tcp (not TLS). */
  address?: EngineAddress;
}

/** Options for dockerode from a `host` such as `unix:///var/run/docker.sock` or `tcp://127.0.0.1:2375`. */
export function engineOptions(host: string, version?: string): Docker.DockerOptions {
  const opts: Docker.DockerOptions = {};
  if (version !== undefined) {
    if (!/^v?\d+\.\d+$/.test(version)) throw new DriverError(`driver docker: version "${version}" is not an API version such as "1.41".`);
    opts.version = `v${version.replace(/^v/, '')}`;
  }
  const m = /^([a-z]+):\/\/(.*)$/.exec(host);
  if (!m)
    throw new DriverError(`driver docker: host "${host}" is not an address such as unix:///var/run/docker.sock or tcp://127.0.0.1:2375.`);
  const [, scheme, rest] = m;
  if (scheme === 'unix') {
    if (!rest.startsWith('/'))
      throw new DriverError(`driver docker: host "${host}" must name an absolute socket path, e.g. unix:///var/run/docker.sock.`);
    opts.socketPath = rest;
    return opts;
  }
  if (scheme === 'tcp' || scheme === 'http' || scheme === 'https') {
    const u = new URL(`${scheme === 'https' ? 'https' : 'http'}://${rest}`);
    opts.host = u.hostname.replace(/^\[|\]$/g, '');
    opts.port = u.port || (scheme === 'https' ? '2376' : '2375');
    opts.protocol = scheme === 'https' ? 'https' : 'http';
    return opts;
  }
  throw new DriverError(`driver docker: host "${host}" uses "${scheme}://", which is not supported; use unix:// or tcp://.`);
}

export async function connect(hostSetting: string | undefined, version: string | undefined): Promise<Engine> {
  const host = hostSetting || process.env.DOCKER_HOST || DEFAULT_HOST;
  // Loaded on first use: dockerode and its gRPC dependencies cost the CLI ~20 MB of memory.
  const { default: DockerClient } = await import('dockerode');
  const options = engineOptions(host, version);
  const docker = new DockerClient(options);
  let info: Docker.DockerVersion;
  try {
    info = await Promise.race([docker.version(), noAnswer(CONNECT_TIMEOUT_MS)]);
  } catch (err) {
    throw new DriverError(
      `cannot reach the Docker engine at ${host}: ${errorText(err)}. Start dockerd, or point DOCKER_HOST or driver.conf's ` +
        `driver docker { host "..." } at its socket.`,
    );
  }
  return {
    docker,
    host,
    apiVersion: version?.replace(/^v/, '') ?? info.ApiVersion,
    engineVersion: info.Version,
    address: plainAddress(options),
  };
}

/** The socket path or tcp address of an engine spoken to without TLS. */
export function plainAddress(opts: Docker.DockerOptions): EngineAddress | undefined {
  if (opts.socketPath) return { path: String(opts.socketPath) };
  if (opts.protocol === 'http' && opts.host) return { host: opts.host, port: Number(opts.port) };
  return undefined;
}

/** The image's id, pulling it first when the engine does not have it. */
export async function ensureImage(engine: Engine, image: string, reporter: Reporter, signal: AbortSignal): Promise<string> {
  const present = await inspectImage(engine.docker, image);
  if (present) return present;
  reporter.info(`Pulling image ${image}...`);
  try {
    const stream = await engine.docker.pull(image, { abortSignal: signal });
    await new Promise<void>((resolve, reject) => {
      engine.docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
        const failed = err ?? events.find((e) => e.error);
        if (failed) reject(failed instanceof Error ? failed : new Error(String(failed.error)));
        else resolve();
      });
    });
  } catch (err) {
    if (signal.aborted) throw new DriverError(`pulling image ${image} was stopped.`);
    throw new DriverError(missingImageMessage(image, engine.host, errorText(err)));
  }
  const pulled = await inspectImage(engine.docker, image);
  if (!pulled) throw new DriverError(missingImageMessage(image, engine.host, 'the pull ended but the engine still has no such image'));
  return pulled;
}

export function missingImageMessage(image: string, host: string, why: string): string {
  return (
    `image ${image} is missing from the Docker engine at ${host} and pulling it failed (${why}). ` +
    `Without a registry, make the image from a root file system tarball and import it, e.g.: ` +
    `mmdebstrap --variant=minbase --include=git bookworm rootfs.tar && docker import rootfs.tar ${image}`
  );
}

async function inspectImage(docker: Docker, image: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(image).inspect()).Id;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw new DriverError(`cannot look up image ${image}: ${errorText(err)}`);
  }
}

export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number((err as { statusCode: unknown }).statusCode) : undefined;
}

/** The engine's own message when it sent one (`{"message": ...}`), else the error's. */
export function errorText(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const json = (err as { json?: unknown }).json;
    if (json && typeof json === 'object' && 'message' in json) return String((json as { message: unknown }).message).trim();
    if (err instanceof Error) return err.message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
  }
  return String(err);
}
