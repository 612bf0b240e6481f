// Readers for the checksum files distributions publish next to their cloud
// images. Each returns the digests it lists by file name; what a file does not
// list is not verified (and so not booted, see catalogue/source.ts).

export type DigestAlgorithm = 'sha256' | 'sha512';

/**
 * gnu: `<hex>  <file>` or `<hex> *<file>` lines (sha256sum/sha512sum output: Debian SHA512SUMS,
 * Ubuntu SHA256SUMS, AlmaLinux CHECKSUM, openSUSE .sha256).
 * bsd: `SHA256 (<file>) = <hex>` lines (Rocky .CHECKSUM, FreeBSD CHECKSUM.SHA256, Fedora CHECKSUM),
 * also inside a PGP clear-signed message.
 * bare: only the digest, for the one image the sidecar sits next to (Alpine .sha512, Arch .SHA256 may
 * also name the file: then it is read as gnu).
 */
export type ChecksumFormat = 'gnu' | 'bsd' | 'bare';

export interface ChecksumEntry {
  algorithm: DigestAlgorithm;
  hex: string;
}

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export class ChecksumFileError extends Error {}

/** The text between a clear-signed message's header and its signature (the whole text when unsigned). */
export function clearSignedBody(text: string): string {
  const start = text.indexOf('-----BEGIN PGP SIGNED MESSAGE-----');
  if (start < 0) return text;
  const rest = text.slice(start);
  // Armor headers (Hash: SHA256) end at the first empty line.
  const bodyStart = rest.search(/\r?\n\r?\n/);
  const sig = rest.indexOf('-----BEGIN PGP SIGNATURE-----');
  if (bodyStart < 0) return '';
  const body = rest.slice(bodyStart, sig < 0 ? undefined : sig);
  // Dash-escaped lines ("- -----") lose their "- ".
  return body.replace(/^- /gm, '');
}

function algorithmOfLength(hex: string): DigestAlgorithm | undefined {
  if (hex.length === 64) return 'sha256';
  if (hex.length === 128) return 'sha512';
  return undefined;
}

/**
 * Every digest a checksum file lists, by file name (the path's last segment,
 * since some files list `./name` or `images/name`). `sidecarFor` names the
 * file a bare digest belongs to.
 */
export function parseChecksumFile(
  text: string,
  format: ChecksumFormat,
  algorithm: DigestAlgorithm,
  sidecarFor?: string,
): Map<string, ChecksumEntry> {
  const out = new Map<string, ChecksumEntry>();
  const want = HEX_LENGTH[algorithm];
  const body = clearSignedBody(text);
  const add = (file: string, hex: string) => {
    const name = file.trim().replace(/^\*/, '').split('/').pop()!;
    if (name && hex.length === want) out.set(name, { algorithm, hex: hex.toLowerCase() });
  };
  for (const raw of body.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const bsd = /^(SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$/.exec(line);
    if (bsd) {
      if (bsd[1]!.toLowerCase() === algorithm) add(bsd[2]!, bsd[3]!);
      continue;
    }
    const gnu = /^([0-9a-fA-F]+)\s+\*?(\S.*)$/.exec(line);
    if (gnu && format !== 'bsd') {
      if (algorithmOfLength(gnu[1]!) === algorithm) add(gnu[2]!, gnu[1]!);
      continue;
    }
    const bare = /^([0-9a-fA-F]+)$/.exec(line);
    if (bare && sidecarFor && algorithmOfLength(bare[1]!) === algorithm) add(sidecarFor, bare[1]!);
  }
  return out;
}

/**
 * The digest of one file, or a ChecksumFileError that says what the checksum
 * file does list. A sidecar (a checksum file for this one image) may name the
 * image by its dated name while we fetch it by its `latest` name: its only digest is taken.
 */
export function digestFor(
  text: string,
  format: ChecksumFormat,
  algorithm: DigestAlgorithm,
  file: string,
  source: string,
  sidecar = false,
): ChecksumEntry {
  const all = parseChecksumFile(text, format, algorithm, format === 'bare' ? file : undefined);
  const hit = all.get(file) ?? (sidecar && all.size === 1 ? [...all.values()][0] : undefined);
  if (hit) return hit;
  const listed = [...all.keys()];
  if (!listed.length)
    throw new ChecksumFileError(
      `the checksum file ${source} lists no ${algorithm.toUpperCase()} digests (unreadable or not a checksum file)`,
    );
  const shown = listed.slice(0, 5).join(', ') + (listed.length > 5 ? `, ... (${listed.length} in all)` : '');
  throw new ChecksumFileError(`the checksum file ${source} does not list ${file} (it lists ${shown})`);
}
