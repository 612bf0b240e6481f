// Reads web server folder listings (Apache / nginx / lighttpd autoindex) for
// the distributions whose image names carry a build number or patch release
// (Fedora, Alpine): the newest matching file is picked from the links.

/** The file names a listing links to (query strings, parent links and sub-folders left out). */
export function listedFiles(html: string): string[] {
  const names = new Set<string>();
  for (const m of html.matchAll(/href\s*=\s*["']([^"'#?]+)["']/gi)) {
    let href = m[1]!;
    try {
      href = decodeURIComponent(href);
    } catch {
      continue;
    }
    if (href.endsWith('/') || href.startsWith('..')) continue;
    const name = href.split('/').pop()!;
    if (name) names.add(name);
  }
  return [...names];
}

/** Compares version-like strings part by part, numbers as numbers ("3.21.10" > "3.21.9", "1.10" > "1.9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c) return c;
  }
  return 0;
}

/**
 * The listed file matching `pattern` whose first capture group is the highest
 * version, with its captures; undefined when none matches.
 */
export function newestMatch(files: string[], pattern: RegExp): { file: string; version: string } | undefined {
  let best: { file: string; version: string } | undefined;
  for (const f of files) {
    const m = pattern.exec(f);
    if (!m || m[0] !== f) continue;
    const version = m[1] ?? '';
    if (!best || compareVersions(version, best.version) > 0) best = { file: f, version };
  }
  return best;
}
