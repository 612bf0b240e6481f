// Djinn's image server protocol (imgsrv): GET <server>/qemu/x86_64/<name>
// returns the qcow2 file; `Accept: application/json` on /qemu/x86_64 lists
// {driver, category, group, name, link, mod_time} per image.
import { ImageNotFoundError } from './errors.js';
import { readSmallBody, request } from './http.js';

export const DEFAULT_IMAGE_SERVER = 'https://images.djinn-ci.com';
export const ARCH = 'x86_64';

export interface ServerImage {
  driver: string;
  category: string;
  group: string;
  name: string;
  link?: string;
  mod_time?: string;
}

/** Image names are path segments of letters, digits and . _ + - (never `..`). */
export function checkImageName(name: string): string | undefined {
  if (!name) return 'the image name is empty';
  for (const seg of name.split('/')) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(seg))
      return `"${name}" is not a valid image name (segments of letters, digits and . _ + -, separated by /)`;
  }
  return undefined;
}

export function serverBase(server: string): string {
  return server.replace(/\/+$/, '');
}

export function imageUrl(server: string, name: string): string {
  return `${serverBase(server)}/qemu/${ARCH}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

/** The server's images for qemu/x86_64, as its JSON listing gives them. */
export async function listServerImages(
  server: string,
  opts: { idleTimeoutMs?: number; signal?: AbortSignal } = {},
): Promise<ServerImage[]> {
  const url = `${serverBase(server)}/qemu/${ARCH}`;
  const { res } = await request(url, {
    headers: { accept: 'application/json' },
    idleTimeoutMs: opts.idleTimeoutMs ?? 15_000,
    signal: opts.signal,
  });
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`listing ${url} answered HTTP ${res.statusCode}`);
  }
  const parsed: unknown = JSON.parse(await readSmallBody(res));
  // imgsrv answers a bare array; accept {images: [...]} as well.
  const items = Array.isArray(parsed)
    ? parsed
    : Array.isArray((parsed as { images?: unknown })?.images)
      ? (parsed as { images: unknown[] }).images
      : undefined;
  if (!items) throw new Error(`listing ${url} is not a JSON list`);
  return items.filter(
    (i): i is ServerImage =>
      typeof (i as ServerImage)?.name === 'string' && (!(i as ServerImage).driver || (i as ServerImage).driver === 'qemu'),
  );
}

/** The full name a listing entry is fetched by: imgsrv's name already includes the group (debian/stable). */
export function listedName(i: ServerImage): string {
  return i.name;
}

/** A 404 that says which images the server does have. */
export async function notFoundError(
  server: string,
  name: string,
  url: string,
  opts: { signal?: AbortSignal } = {},
): Promise<ImageNotFoundError> {
  try {
    const names = (await listServerImages(server, opts)).map(listedName).sort();
    const have = names.length ? `it has: ${names.join(', ')}` : 'its listing is empty';
    return new ImageNotFoundError(`image server ${serverBase(server)} has no image ${name} (${url} answered 404); ${have}.`, url, names);
  } catch (err) {
    return new ImageNotFoundError(
      `image server ${serverBase(server)} has no image ${name} (${url} answered 404), and its listing could not be read (${(err as Error).message}).`,
      url,
      [],
    );
  }
}

/** The listing's mod_time of one image, for servers that send neither ETag nor Last-Modified. */
export async function serverModTime(server: string, name: string, opts: { signal?: AbortSignal } = {}): Promise<string | undefined> {
  const images = await listServerImages(server, opts);
  return images.find((i) => listedName(i) === name)?.mod_time;
}
