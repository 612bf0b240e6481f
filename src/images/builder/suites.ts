// Which Debian suites the builder knows, and what `stable`/`oldstable` mean today.
import { readSmallBody, request } from '../fetch/http.js';
import { MIRROR } from './packages.js';

/** Codenames the builder has been checked with (kernel, busybox, OpenSSH layout). */
export const KNOWN_CODENAMES = ['bullseye', 'bookworm', 'trixie', 'forky'] as const;
const ALIASES = ['stable', 'oldstable', 'testing'] as const;
/** Used when the mirror cannot be asked (what the aliases meant when this was written). */
const FALLBACK: Record<string, string> = { stable: 'trixie', oldstable: 'bookworm', testing: 'forky' };

/** `debian/<suite>` names we can build, e.g. debian/stable, debian/bookworm. */
export function buildableSuite(imageName: string): string | undefined {
  const m = /^debian\/([a-z]+)$/.exec(imageName);
  if (!m) return undefined;
  const s = m[1];
  return (KNOWN_CODENAMES as readonly string[]).includes(s) || (ALIASES as readonly string[]).includes(s) ? s : undefined;
}

/** Maps stable/oldstable/testing to the codename the mirror gives them now. */
export async function codenameFor(suite: string, signal?: AbortSignal): Promise<string> {
  if (!(ALIASES as readonly string[]).includes(suite)) return suite;
  try {
    // Through our HTTP client, so that HTTPS_PROXY / HTTP_PROXY apply as for image downloads.
    const { res } = await request(`${MIRROR}/dists/${suite}/Release`, { idleTimeoutMs: 15_000, signal });
    if (res.statusCode === 200) {
      const m = /^Codename:\s*(\S+)/m.exec(await readSmallBody(res));
      if (m && (KNOWN_CODENAMES as readonly string[]).includes(m[1])) return m[1];
    } else res.resume();
  } catch {
    // Offline or slow mirror: the table below is right until the next Debian release.
  }
  return FALLBACK[suite];
}
