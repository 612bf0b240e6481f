// `djinn cache ls` and `djinn cache rm KEY...|--all`: the saved running machines
// in the CLI's cache folder, warm-start states and stage states (docs/warm-start.md).
import { cacheDirFlag } from '../config/settings.js';
import { UsageError } from '../core/errors.js';
import { StateStore } from '../drivers/qemu/warm/store.js';
import { stageStore } from '../drivers/qemu/warm/stage-state.js';
import { formatBytes } from '../util/bytes.js';
import { parseFlags, type FlagSpec } from './flags.js';
import { tableLines } from './table.js';

const FLAGS: FlagSpec[] = [
  { group: 'build', name: 'help', kind: 'bool', help: 'print this help' },
  { group: 'image', name: 'cache-dir', kind: 'string', default: '$XDG_CACHE_HOME/djinn/images', help: 'the cache folder' },
  { group: 'output', name: 'json', kind: 'bool', help: 'print the states as JSON (ls)' },
  { group: 'image', name: 'all', kind: 'bool', help: 'remove every saved state (rm)' },
];

const USAGE = `usage: djinn cache ls [-cache-dir DIR] [--json]
       djinn cache rm [-cache-dir DIR] KEY... | --all

Lists or removes the saved running machines: warm-start states (a booted image)
and stage states (the machine after a stage, -cache-stage). KEY is the start of
a state's key as ls prints it.
`;

interface Listed {
  kind: 'warm' | 'stage';
  key: string;
  stage?: string;
  bytes: number;
  savedAt: string;
  lastUsed: string;
  artifacts: number;
}

async function listAll(dir: string): Promise<{ listed: Listed[]; stores: StateStore[] }> {
  const stores = [new StateStore(dir), stageStore(dir)];
  const listed: Listed[] = [];
  for (const [i, store] of stores.entries()) {
    for (const s of await store.list()) {
      listed.push({
        kind: i === 0 ? 'warm' : 'stage',
        key: s.manifest.keyDigest,
        ...(s.manifest.stage ? { stage: s.manifest.stage.name } : {}),
        bytes: s.bytes,
        savedAt: s.manifest.createdAt,
        lastUsed: s.lastUsed.toISOString(),
        artifacts: s.manifest.stage?.artifacts.length ?? 0,
      });
    }
  }
  return { listed, stores };
}

export async function cacheCommand(argv: string[]): Promise<number> {
  const sub = argv[0];
  const { flags, args } = parseFlags(argv.slice(1), FLAGS);
  if (flags.help || sub === '--help' || sub === '-help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (sub !== 'ls' && sub !== 'rm') throw new UsageError(`usage: djinn cache ls|rm ...; found "${sub ?? ''}".`);
  const dir = cacheDirFlag(flags);
  const { listed, stores } = await listAll(dir);
  if (sub === 'ls') {
    if (args.length) throw new UsageError(`cache ls takes no arguments; found "${args[0]}".`);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
      return 0;
    }
    if (!listed.length) {
      process.stdout.write(`No saved machines in ${dir}.\n`);
      return 0;
    }
    const rows = [
      ['KIND', 'STAGE', 'KEY', 'SIZE', 'SAVED', 'LAST USED'],
      ...listed.map((l) => [l.kind, l.stage ?? '-', l.key.slice(0, 12), formatBytes(l.bytes), short(l.savedAt), short(l.lastUsed)]),
    ];
    process.stdout.write(`${tableLines(rows).join('\n')}\n`);
    const total = listed.reduce((n, l) => n + l.bytes, 0);
    process.stdout.write(`${listed.length} saved machine${listed.length > 1 ? 's' : ''}, ${formatBytes(total)} in ${dir}\n`);
    return 0;
  }
  if (flags.all && args.length) throw new UsageError('cache rm takes either keys or --all, not both.');
  if (!flags.all && !args.length) throw new UsageError('cache rm needs a key (as djinn cache ls prints it) or --all.');
  let code = 0;
  const wanted = flags.all ? listed.map((l) => l.key) : args;
  for (const prefix of wanted) {
    const hits = listed.filter((l) => l.key.startsWith(prefix.toLowerCase()));
    if (hits.length !== 1) {
      process.stderr.write(
        `djinn: cache rm: ${hits.length ? `"${prefix}" names ${hits.length} states; give more of the key` : `no saved machine has the key "${prefix}"`} (see djinn cache ls).\n`,
      );
      code = 1;
      continue;
    }
    const hit = hits[0]!;
    await stores[hit.kind === 'warm' ? 0 : 1]!.remove(hit.key);
    process.stdout.write(
      `Removed ${hit.kind} state ${hit.key.slice(0, 12)}${hit.stage ? ` (after stage ${hit.stage})` : ''}, ${formatBytes(hit.bytes)}\n`,
    );
  }
  if (flags.all && !listed.length) process.stdout.write(`No saved machines in ${dir}.\n`);
  return code;
}

function short(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}
