// `djinn image ls --catalogue`: every name the catalogue of official cloud
// images knows, with its image and checksum URLs (patterns where a folder
// listing decides the build number).
import { describe, catalogueNames, parseMirrors } from '../../images/catalogue/lookup.js';
import { UsageError } from '../../core/errors.js';

export function catalogueListing(json: boolean, mirrors: string[]): string {
  let bases: Record<string, string>;
  try {
    bases = parseMirrors(mirrors);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^-image-mirror: /, ''), {}, '-image-mirror');
  }
  const rows = catalogueNames(bases).map((r) => {
    const d = r.distro;
    const urls = describe(r);
    return {
      name: r.name,
      imageUrl: urls.imageUrl,
      checksumUrl: urls.checksumUrl,
      checksum: `${d.checksum.algorithm} ${d.checksum.format}`,
      format: d.compression ? `${d.diskFormat}.${d.compression}` : d.diskFormat,
      firmware: d.firmware,
      user: d.user,
      bootable: d.bootable,
      ...(d.note ? { note: d.note } : {}),
    };
  });
  if (json) return `${JSON.stringify(rows, null, 2)}\n`;
  const distros = new Set(rows.map((r) => r.name.split('/')[0])).size;
  const lines = rows.map(
    (r) => `${r.name}${r.bootable ? '' : ' (resolved only)'}\n    image    ${r.imageUrl}\n    checksum ${r.checksumUrl} (${r.checksum})`,
  );
  return `${lines.join('\n')}\n${rows.length} names from ${distros} distributions; versions beyond these may resolve too (docs/catalogue.md).\n`;
}
