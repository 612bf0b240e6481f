// `djinn image ls` and `djinn image rm NAME...|--all`: the CLI's image cache,
// both the downloaded images and those our builder made (kept under built/).
import { rm, stat } from 'node:fs/promises';
import { all, cacheDirFlag } from '../../config/settings.js';
import { UsageError } from '../../core/errors.js';
import { diskPath, listDiskImages } from '../../images/local.js';
import { builtImagesDir } from '../../images/resolve.js';
import { ImageCache, imageRevision, type CacheEntry } from '../../images/cache/store.js';
import { formatBytes } from '../../util/bytes.js';
import { parseFlags, type FlagSpec } from '../flags.js';
import { catalogueListing } from './catalogue.js';
import { tableLines } from '../table.js';

const CACHE_DIR_FLAG: FlagSpec = {
  group: 'image',
  name: 'cache-dir',
  kind: 'string',
  default: '$XDG_CACHE_HOME/djinn/images',
  help: 'the image cache folder',
};
const HELP_FLAG: FlagSpec = { group: 'build', name: 'help', kind: 'bool', help: 'print this help' };

const LS_FLAGS: FlagSpec[] = [
  HELP_FLAG,
  CACHE_DIR_FLAG,
  { group: 'output', name: 'json', kind: 'bool', help: 'print the entries as JSON' },
  { group: 'image', name: 'catalogue', kind: 'bool', help: 'list the catalogue of official cloud images instead of the cache' },
  { group: 'image', name: 'image-mirror', kind: 'string', repeatable: true, help: 'DISTRO=URL, as for builds (with --catalogue)' },
];
const RM_FLAGS: FlagSpec[] = [HELP_FLAG, CACHE_DIR_FLAG, { group: 'image', name: 'all', kind: 'bool', help: 'remove every cached image' }];

function helpText(specs: FlagSpec[], head: string): string {
  const lines = [head, ''];
  for (const s of specs)
    lines.push(`  -${s.name}${s.kind === 'string' ? ' value' : ''}`, `        ${s.help}${s.default ? ` (default ${s.default})` : ''}`);
  return `${lines.join('\n')}\n`;
}

function row(e: CacheEntry): string[] {
  return [e.meta.name, formatBytes(e.meta.size), e.meta.checkedAt.replace(/\.\d+Z$/, 'Z'), e.meta.sha256.slice(0, 12), e.meta.url];
}

interface BuiltImage {
  name: string;
  path: string;
  size: number;
  builtAt: string;
}

/** Images our builder made, in the disks layout under the cache folder. */
async function builtImages(cacheDir: string): Promise<BuiltImage[]> {
  const root = builtImagesDir(cacheDir)!;
  const out: BuiltImage[] = [];
  for (const name of await listDiskImages(root)) {
    const file = diskPath(root, name);
    const st = await stat(file).catch(() => undefined);
    if (st?.isFile()) out.push({ name, path: file, size: st.size, builtAt: st.mtime.toISOString() });
  }
  return out;
}

export async function imageLsCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlags(argv, LS_FLAGS);
  if (flags.help) {
    process.stdout.write(
      helpText(
        LS_FLAGS,
        'usage: djinn image ls [-cache-dir DIR] [--json] [--catalogue]\n\n' +
          'Lists the images in the CLI cache (--catalogue: the names the catalogue of official cloud images knows).',
      ),
    );
    return 0;
  }
  if (args.length) throw new UsageError(`image ls takes no arguments; found "${args[0]}".`);
  if (flags.catalogue) {
    process.stdout.write(catalogueListing(!!flags.json, all(flags, 'image-mirror')));
    return 0;
  }
  const dir = cacheDirFlag(flags);
  const entries = await new ImageCache(dir).list();
  const built = await builtImages(dir);
  if (flags.json) {
    const out = [
      ...entries.map((e) => ({ ...e.meta, path: e.path, revision: imageRevision(e.meta) })),
      ...built.map((b) => ({ name: b.name, source: 'built', path: b.path, size: b.size, builtAt: b.builtAt })),
    ];
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const count = entries.length + built.length;
  if (!count) {
    process.stdout.write(`No cached images in ${dir}.\n`);
    return 0;
  }
  const total = entries.reduce((n, e) => n + e.meta.size, 0) + built.reduce((n, b) => n + b.size, 0);
  const builtRows = built.map((b) => [
    b.name,
    formatBytes(b.size),
    b.builtAt.replace(/\.\d+Z$/, 'Z'),
    '-',
    'built here (djinn image build)',
  ]);
  process.stdout.write(`${tableLines([['NAME', 'SIZE', 'CHECKED', 'SHA256', 'SOURCE'], ...entries.map(row), ...builtRows]).join('\n')}\n`);
  process.stdout.write(`${count} image${count > 1 ? 's' : ''}, ${formatBytes(total)} in ${dir}\n`);
  return 0;
}

export async function imageRmCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlags(argv, RM_FLAGS);
  if (flags.help) {
    process.stdout.write(
      helpText(
        RM_FLAGS,
        'usage: djinn image rm [-cache-dir DIR] NAME... | --all\n\nRemoves images from the CLI cache (every source the name was fetched from).',
      ),
    );
    return 0;
  }
  if (flags.all && args.length) throw new UsageError('image rm takes either image names or --all, not both.');
  if (!flags.all && !args.length) throw new UsageError('image rm needs an image name (e.g. debian/stable) or --all.');
  const dir = cacheDirFlag(flags);
  const cache = new ImageCache(dir);
  let code = 0;
  const removed = flags.all ? await cache.remove({ all: true }) : [];
  const built = await builtImages(dir);
  const removedBuilt = built.filter((b) => flags.all || args.includes(b.name));
  for (const b of removedBuilt) {
    await rm(b.path, { force: true });
    process.stdout.write(`Removed ${b.name} (${formatBytes(b.size)}, built here)\n`);
  }
  for (const name of args) {
    const r = await cache.remove({ name });
    if (!r.length && !removedBuilt.some((b) => b.name === name)) {
      process.stderr.write(`djinn: image rm: ${name} is not in the cache (${dir}); see djinn image ls.\n`);
      code = 1;
    }
    removed.push(...r);
  }
  for (const e of removed) process.stdout.write(`Removed ${e.meta.name} (${formatBytes(e.meta.size)}, from ${e.meta.url})\n`);
  if (flags.all && !removed.length && !removedBuilt.length) process.stdout.write(`No cached images in ${dir}.\n`);
  return code;
}
