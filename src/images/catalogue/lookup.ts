// Image names -> catalogue entries -> the URLs of one image and its checksum file.
import { CATALOGUE, type Distro, type Release } from './catalogue.js';
import { listedFiles, newestMatch } from './index-page.js';

export interface CatalogueRef {
  name: string;
  distro: Distro;
  release: Release;
  /** The distribution's base URL after -image-mirror. */
  base: string;
}

export interface LocatedImage {
  ref: CatalogueRef;
  imageUrl: string;
  checksumUrl: string;
  /** The image's file name, as the checksum file lists it. */
  file: string;
}

export class CatalogueError extends Error {}

/** `DISTRO=URL` values of -image-mirror, checked; later ones win. */
export function parseMirrors(values: string[] | undefined, field = '-image-mirror'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const m = /^([a-z]+)=(.+)$/.exec(v.trim());
    if (!m) throw new CatalogueError(`${field}: expected DISTRO=URL (e.g. debian=https://mirror.example/debian-cloud), found "${v}".`);
    const [, distro, url] = m;
    if (!CATALOGUE.some((d) => d.distro === distro))
      throw new CatalogueError(`${field}: unknown distribution "${distro}" (known: ${CATALOGUE.map((d) => d.distro).join(', ')}).`);
    let u: URL;
    try {
      u = new URL(url!);
    } catch {
      throw new CatalogueError(`${field}: "${url}" is not a URL.`);
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname)))
      throw new CatalogueError(`${field}: ${url} must be an https URL (plain http only for a mirror on 127.0.0.1 / localhost).`);
    out[distro!] = url!.replace(/\/+$/, '');
  }
  return out;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);
}

/** The catalogue entry for an image name, or undefined when the catalogue does not have it. */
export function findInCatalogue(name: string, mirrors: Record<string, string> = {}): CatalogueRef | undefined {
  const [head, rest, extra] = name.split('/');
  if (extra !== undefined || !head) return undefined;
  const distro = CATALOGUE.find((d) => d.distro === head);
  if (!distro) return undefined;
  const base = mirrors[distro.distro] ?? distro.base;
  if (distro.unversioned) return rest === undefined ? { name, distro, release: distro.releases[0]!, base } : undefined;
  if (rest === undefined) return undefined;
  let key = rest;
  if (distro.versionForm) {
    const m = distro.versionForm.exec(rest);
    if (!m) return undefined;
    key = m.slice(1).find((g) => g !== undefined)!;
  }
  const release =
    distro.releases.find((r) => r.version === key || r.codename === key || r.aliases?.includes(key)) ??
    (distro.anyVersion?.test(key) ? { version: key } : undefined);
  return release ? { name, distro, release, base } : undefined;
}

function fill(pattern: string, vars: Record<string, string | undefined>): string {
  return pattern.replace(/\{(\w+)\}/g, (_whole, k: string) => vars[k] ?? `<${k}>`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Image and checksum URLs as patterns (with <build>/<file> where a folder listing decides), for listings. */
export function describe(ref: CatalogueRef): { imageUrl: string; checksumUrl: string } {
  const d = ref.distro;
  const vars = { version: ref.release.version, codename: ref.release.codename };
  const imagePath = fill(ref.release.image ?? d.image, vars);
  const checksumPath = fill(ref.release.checksum ?? d.checksum.path, { ...vars, image: imagePath });
  return { imageUrl: `${ref.base}/${imagePath}`, checksumUrl: `${ref.base}/${checksumPath}` };
}

/** Concrete URLs; for entries with an index, `fetchText` reads the folder listing. */
export async function locate(ref: CatalogueRef, fetchText: (url: string) => Promise<string>): Promise<LocatedImage> {
  const d = ref.distro;
  const vars: Record<string, string | undefined> = { version: ref.release.version, codename: ref.release.codename };
  if (d.index) {
    const folderUrl = `${ref.base}/${fill(d.index.folder, vars)}`;
    const pattern = new RegExp(d.index.file.replace(/\{(\w+)\}/g, (_, k: string) => escapeRe(vars[k] ?? '')));
    let html: string;
    try {
      html = await fetchText(folderUrl);
    } catch (err) {
      throw new CatalogueError(
        `cannot read the folder listing ${folderUrl} to find the newest ${ref.name} image: ${(err as Error).message}`,
      );
    }
    const hit = newestMatch(listedFiles(html), pattern);
    if (!hit)
      throw new CatalogueError(`the folder listing ${folderUrl} has no file like ${d.index.file.replace(/\\/g, '')} for ${ref.name}`);
    vars.file = hit.file;
    vars.build = hit.version;
  }
  const imagePath = fill(ref.release.image ?? d.image, vars);
  const checksumPath = fill(ref.release.checksum ?? d.checksum.path, { ...vars, image: imagePath });
  return { ref, imageUrl: `${ref.base}/${imagePath}`, checksumUrl: `${ref.base}/${checksumPath}`, file: imagePath.split('/').pop()! };
}

/** Every name the catalogue knows (release numbers, codenames, aliases), with its entry. */
export function catalogueNames(mirrors: Record<string, string> = {}): CatalogueRef[] {
  const out: CatalogueRef[] = [];
  for (const d of CATALOGUE) {
    const base = mirrors[d.distro] ?? d.base;
    for (const r of d.releases) {
      if (d.unversioned) {
        out.push({ name: d.distro, distro: d, release: r, base });
        continue;
      }
      const form = (v: string) => (d.distro === 'opensuse' ? (v === 'tumbleweed' ? v : `leap-${v}`) : v);
      for (const n of [r.version, r.codename, ...(r.aliases ?? [])])
        if (n) out.push({ name: `${d.distro}/${form(n)}`, distro: d, release: r, base });
    }
  }
  return out;
}
