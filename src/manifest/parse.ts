// Reads a .djinn.yml into a Manifest, keeping every item's position so that
// errors and warnings can name the file, line and column. Djinn's documented
// (v1.3.0) behaviour, with its bugs fixed: see README "Differences".
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { SourcePosition } from '../core/reporter.js';
import { readInputText } from '../util/input-file.js';
import { UsageError } from '../core/errors.js';
import type { DriverSpec, Manifest, ManifestJob, Passthrough, Source, Warning } from './types.js';

const TOP_KEYS = ['namespace', 'driver', 'env', 'objects', 'sources', 'stages', 'allow_failures', 'jobs'];
const JOB_KEYS = ['stage', 'name', 'commands', 'artifacts'];
export const DRIVER_TYPES = ['qemu', 'docker', 'ssh', 'os'] as const;
const DRIVER_KEYS: Record<string, { required: string[]; optional: string[] }> = {
  qemu: { required: ['image'], optional: ['arch'] },
  docker: { required: ['image', 'workspace'], optional: [] },
  ssh: { required: ['address'], optional: [] },
  os: { required: [], optional: [] },
};
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Merge keys followed while reading one manifest: far beyond any real one, short of an alias bomb. */
const MAX_MERGES = 10_000;

class Reader {
  readonly warnings: Warning[] = [];
  merges = 0;
  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  pos(node: Node | null | undefined, fallback?: SourcePosition): SourcePosition {
    const offset = node?.range?.[0];
    if (offset === undefined) return fallback ?? { file: this.file };
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  fail(message: string, node: Node | null | undefined, field: string, fallback?: SourcePosition): never {
    throw new UsageError(message, this.pos(node, fallback), field);
  }

  warn(message: string, node: Node | null | undefined, fallback?: SourcePosition): void {
    const p = this.pos(node, fallback);
    this.warnings.push({ file: this.file, line: p.line ?? 0, column: p.column ?? 0, message });
  }
}

/** A short description of what a node holds, for "expected X, found Y". */
export function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'nothing (null)';
    if (typeof v === 'number') return `a number (${String(v)})`;
    if (typeof v === 'boolean') return `a boolean (${String(v)})`;
    if (typeof v === 'string') return v === '' ? 'an empty string' : 'a string';
    return `a ${typeof v}`;
  }
  return 'something else';
}

function keyName(pair: Pair): string {
  if (!isScalar(pair.key)) return '';
  // The yaml library marks a merge key with a symbol.
  return typeof pair.key.value === 'symbol' ? '<<' : String(pair.key.value);
}

let currentDoc: Document | undefined;

/** Follows a YAML alias (`*name`) to the node it names, so anchors work as in Djinn's YAML library. */
function deref(r: Reader, node: unknown): Node | null {
  if (isAlias(node) && currentDoc) {
    const target = node.resolve(currentDoc);
    if (!target)
      r.fail(`the alias *${node.source} names no anchor (&${node.source}) defined before it.`, node as unknown as Node, 'manifest');
    return target as Node;
  }
  return (node ?? null) as Node | null;
}

/** A map's keys in order; YAML merge keys (`<<: *base`) add the keys the map does not set itself. */
function entries(r: Reader, map: YAMLMap): { key: string; keyNode: Node; value: Node | null }[] {
  const own = map.items
    .filter((pair) => keyName(pair) !== '<<')
    .map((pair) => ({ key: keyName(pair), keyNode: pair.key as Node, value: deref(r, pair.value) }));
  for (const pair of map.items) {
    if (keyName(pair) !== '<<') continue;
    const v = deref(r, pair.value);
    const bases = isSeq(v) ? v.items.map((x) => deref(r, x)) : [v];
    for (const base of bases) {
      if (!isMap(base)) continue;
      if (++r.merges > MAX_MERGES)
        r.fail(`more than ${MAX_MERGES} merges (<<: *alias) to follow; is this an alias bomb?`, pair.key as Node, 'manifest');
      for (const e of entries(r, base)) if (!own.some((o) => o.key === e.key)) own.push(e);
    }
  }
  return own;
}

/**
 * A string field read as go-yaml v2 reads one into a Go string (Djinn's
 * decoder): any scalar gives its text as written (`true`, `1.10`, `0x1F`
 * stay those characters), null (`~`, `null`, nothing) gives "". A map or a
 * list is an error.
 */
function readString(r: Reader, node: Node | null, field: string, what: string, fallback: SourcePosition): string {
  const text = scalarText(node);
  if (text !== undefined) return text;
  return r.fail(`expected ${what}, found ${describe(node)}.`, node, field, fallback);
}

/** The text of a scalar as written (undefined for a map, a list or nothing at all); null is "". */
export function scalarText(node: Node | null): string | undefined {
  if (node === null) return '';
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'string') return node.value;
  if (node.value === null) return '';
  // Plain scalars keep their source text; the resolved value (a number, a boolean) is not what Djinn sees.
  return typeof node.source === 'string' ? node.source : String(node.value);
}

/** A list of strings; a missing or null field is an empty list. */
function readStringList(
  r: Reader,
  node: Node | null,
  field: string,
  what: string,
  fallback: SourcePosition,
  item = 'a string',
): { value: string; node: Node | null }[] {
  if (node === null || (isScalar(node) && node.value === null)) return [];
  if (!isSeq(node)) {
    const hint = isScalar(node) && typeof node.value === 'string' ? ' Write it as a list: put "- " before the item.' : '';
    return r.fail(`expected a list of ${what}, found ${describe(node)}.${hint}`, node, field, fallback);
  }
  return node.items.map((entry, i) => {
    const n = deref(r, entry);
    const value = readString(r, n, `${field}[${i}]`, item, r.pos(node));
    if (value.includes('\0'))
      r.fail('contains a NUL byte, which no command line or environment can carry.', n, `${field}[${i}]`, r.pos(node));
    return { value, node: n };
  });
}

/** `src [=> dst]`: split at the first `=>`, both sides trimmed; no `=>` means dst = basename(src). */
export function parsePassthrough(text: string): { src: string; dst: string } | { error: string } {
  const at = text.indexOf('=>');
  if (at < 0) {
    const src = text.trim();
    if (!src) return { error: 'expected a path, found an empty string.' };
    return { src, dst: path.posix.basename(src) || src };
  }
  const src = text.slice(0, at).trim();
  const dst = text.slice(at + 2).trim();
  if (!src) return { error: `"${text}" has nothing before "=>"; write "src => dst".` };
  if (!dst) return { error: `"${text}" has nothing after "=>"; write "src => dst", or leave out "=>" to keep the name.` };
  return { src, dst };
}

/**
 * `url [ref] [=> dir]`, split as Djinn does (URL up to the first blank, then
 * blanks removed, `=>` separates ref from dir), except that tabs count as
 * blanks and a trailing `/` on the URL does not make the folder name empty.
 */
export function parseSource(text: string): Source | { error: string } {
  const trimmed = text.trim();
  if (!trimmed) return { error: 'expected "url [ref] [=> dir]", found an empty string.' };
  const arrow = trimmed.indexOf('=>');
  const before = arrow < 0 ? trimmed : trimmed.slice(0, arrow).trim();
  const blank = before.search(/\s/);
  const url = blank < 0 ? before : before.slice(0, blank);
  if (!url) return { error: `"${text}" has no URL before "=>".` };
  const ref = blank < 0 ? '' : before.slice(blank).replace(/\s+/g, '');
  let dir: string;
  if (arrow >= 0) {
    dir = trimmed.slice(arrow + 2).replace(/\s+/g, '');
    if (!dir) return { error: `"${text}" has nothing after "=>"; name the folder, or leave out "=>".` };
  } else {
    // Last segment without ".git"; for scp-like URLs (git@host:repo.git) the part after ":".
    const segment = url.replace(/\/+$/, '').split('/').pop() ?? '';
    dir = segment.replace(/\.git$/, '');
    const colon = dir.lastIndexOf(':');
    if (colon >= 0) dir = dir.slice(colon + 1);
    if (!dir) return { error: `cannot tell a folder name from the URL "${url}"; add "=> dir".` };
  }
  // git would read a leading "-" as an option (`--upload-pack=...` runs a command).
  for (const [what, v] of [
    ['URL', url],
    ['ref', ref],
    ['folder', dir],
  ]) {
    if (v.startsWith('-')) return { error: `the ${what} "${v}" starts with "-", which git would take for an option.` };
  }
  if (dir.split('/').includes('..') || dir.startsWith('/'))
    return { error: `the folder "${dir}" leaves the home folder; name a folder inside it.` };
  return { url, ref, dir, position: {} };
}

export interface ParseOptions {
  /** Shown in messages instead of the path as given. */
  displayName?: string;
}

export function parseManifestFile(file: string, options: ParseOptions = {}): Manifest {
  const name = options.displayName ?? file;
  const read = readInputText(file);
  if ('error' in read) throw new UsageError(`cannot read the manifest: ${read.error}.`, { file: name }, 'manifest');
  return parseManifest(read.text, name);
}

/** Where the unclosed quote before `end` opened: the last one not escaped (`\\"`) nor doubled (`''`). */
function openingQuote(text: string, end: number, quote: string): number {
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    if (text[i] !== quote) continue;
    if (quote === '"' && text[i - 1] === '\\') continue;
    if (quote === "'" && (text[i - 1] === "'" || text[i + 1] === "'")) {
      i--;
      continue;
    }
    return i;
  }
  return -1;
}

/** Text that is not UTF-8 YAML at all, said plainly before the YAML parser gives a puzzling message. */
function checkEncoding(text: string, file: string): void {
  const at = (offset: number) => {
    const before = text.slice(0, offset).split('\n');
    return { file, line: before.length, column: before[before.length - 1].length + 1 };
  };
  // UTF-16 read as UTF-8: its byte-order mark becomes two replacement characters, ASCII alternates with NULs.
  if (text.startsWith('\uFFFD\uFFFD') || /^[^\0]\0[^\0]\0|^\0[^\0]\0[^\0]/.test(text)) {
    throw new UsageError('the file looks like UTF-16 text; save it as UTF-8.', { file, line: 1, column: 1 }, 'manifest');
  }
  const nul = text.indexOf('\0');
  if (nul >= 0) throw new UsageError('the file contains a NUL byte; a manifest is UTF-8 text.', at(nul), 'manifest');
  const bad = text.indexOf('\uFFFD');
  if (bad >= 0) throw new UsageError('the file is not valid UTF-8 here; save it as UTF-8.', at(bad), 'manifest');
}

export function parseManifest(text: string, file = '.djinn.yml'): Manifest {
  checkEncoding(text, file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const r = new Reader(file, lines);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    let offset = e.pos[0];
    let msg = e.message
      .split('\n')[0]
      .replace(/ at line \d+, column \d+:?$/, '')
      .replace(/\.?$/, '.');
    if (e.code === 'RESOURCE_EXHAUSTION') {
      msg = 'the document nests too deeply to read.';
      // Where the parser ran out of stack varies; the line it happened on does not.
      offset = text.lastIndexOf('\n', offset - 1) + 1;
    }
    if (e.code === 'MULTIPLE_DOCS') msg = 'a manifest is one YAML document; this file holds several (a "---" line starts another).';
    if (e.code === 'MISSING_CHAR' && /closing ["']quote/.test(e.message)) {
      // The parser reports the end of the file; the quote that was never closed is more use.
      const quote = e.message.includes('closing "') ? '"' : "'";
      const opened = openingQuote(text, offset, quote);
      if (opened >= 0) {
        offset = opened;
        msg = `this ${quote === '"' ? 'double' : 'single'}-quoted string is never closed.`;
      }
    }
    const { line, col } = lines.linePos(offset);
    throw new UsageError(`not valid YAML: ${msg}`, { file, line, column: col }, 'manifest');
  }
  currentDoc = doc;
  const root = doc.contents as Node | null;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) {
    throw new UsageError('the manifest is empty; it needs at least a driver and jobs.', { file, line: 1, column: 1 }, 'manifest');
  }
  if (!isMap(root)) {
    return r.fail(
      `expected a map of manifest fields (driver, stages, jobs, ...) at the top level, found ${describe(root)}.`,
      root,
      'manifest',
    );
  }
  const top = r.pos(root);
  const fields = new Map<string, { keyNode: Node; value: Node | null }>();
  for (const e of entries(r, root)) {
    if (!TOP_KEYS.includes(e.key)) r.warn(`unknown field "${e.key}" is ignored.`, e.keyNode);
    fields.set(e.key, e);
  }
  const field = (k: string) => fields.get(k)?.value ?? null;

  let namespace: string | undefined;
  if (fields.has('namespace')) {
    const n = field('namespace');
    if (!(isScalar(n) && n.value === null)) namespace = readString(r, n, 'namespace', 'a string', top);
    if (namespace)
      r.warn(`namespace "${namespace}" is only used by a Djinn server; it is ignored when running here.`, fields.get('namespace')?.keyNode);
  }

  const driver = readDriver(r, fields.get('driver'), top);

  const env = readStringList(r, field('env'), 'env', 'strings KEY=VALUE', top, 'a string KEY=VALUE').map(({ value, node }, i) => {
    const eq = value.indexOf('=');
    if (eq < 0) r.fail(`expected KEY=VALUE, found "${value}" with no "=".`, node, `env[${i}]`);
    const key = value.slice(0, eq);
    if (!key) r.fail(`"${value}" has no variable name before "=".`, node, `env[${i}]`);
    if (!ENV_KEY.test(key)) {
      r.fail(`"${key}" is not a valid variable name (letters, digits and _, not starting with a digit).`, node, `env[${i}]`);
    }
    return { key, value: value.slice(eq + 1), position: r.pos(node) };
  });

  const objects = readPassthroughs(r, field('objects'), 'objects', top);

  const sources = readStringList(r, field('sources'), 'sources', 'strings "url [ref] [=> dir]"', top, 'a string "url [ref] [=> dir]"').map(
    ({ value, node }, i) => {
      const s = parseSource(value);
      if ('error' in s) return r.fail(s.error, node, `sources[${i}]`);
      return { ...s, position: r.pos(node) };
    },
  );

  const stages: Manifest['stages'] = [];
  for (const [i, { value, node }] of readStringList(r, field('stages'), 'stages', 'stage names', top, 'a stage name').entries()) {
    if (!value.trim()) r.fail(`expected a stage name, found ${value ? 'only blanks' : 'an empty one'}.`, node, `stages[${i}]`, top);
    if (stages.some((s) => s.name === value)) r.warn(`stage "${value}" is listed twice; it runs once.`, node);
    else stages.push({ name: value, position: r.pos(node) });
  }

  const allowFailures: Manifest['allowFailures'] = [];
  for (const { value, node } of readStringList(r, field('allow_failures'), 'allow_failures', 'stage names', top, 'a stage name')) {
    if (!stages.some((s) => s.name === value)) {
      r.warn(`allow_failures names "${value}", which is not a stage; it has no effect.`, node);
    }
    allowFailures.push({ name: value, position: r.pos(node) });
  }

  const jobs = readJobs(
    r,
    field('jobs'),
    top,
    stages.map((s) => s.name),
  );

  if (jobs.length === 0 && !fields.has('jobs')) r.warn('the manifest has no jobs; only the setup stage would run.', root);

  return { file, namespace, driver, env, objects, sources, stages, allowFailures, jobs, warnings: r.warnings };
}

function readDriver(r: Reader, entry: { keyNode: Node; value: Node | null } | undefined, top: SourcePosition): DriverSpec {
  if (!entry) return r.fail('required field is missing; add e.g. "driver: {type: qemu, image: debian/stable}".', null, 'driver', top);
  const node = entry.value;
  if (!isMap(node)) return r.fail(`expected a map with a "type" key, found ${describe(node)}.`, node, 'driver', r.pos(entry.keyNode));
  const options: Record<string, string> = {};
  const keyNodes: Record<string, Node> = {};
  for (const e of entries(r, node)) {
    const v = e.value;
    const text = scalarText(v);
    if (text === undefined) r.fail(`expected a single value, found ${describe(v)}.`, v ?? e.keyNode, `driver.${e.key}`);
    if (text.includes('\0')) r.fail('contains a NUL byte.', v, `driver.${e.key}`);
    options[e.key] = text;
    keyNodes[e.key] = e.keyNode;
  }
  const type = options.type;
  if (type === undefined) return r.fail(`"type" is missing; expected one of ${DRIVER_TYPES.join(', ')}.`, node, 'driver.type');
  if (!(DRIVER_TYPES as readonly string[]).includes(type)) {
    return r.fail(
      `unknown driver type "${type}"; expected one of ${DRIVER_TYPES.join(', ')}.`,
      node.get('type', true) as Node,
      'driver.type',
    );
  }
  const spec = DRIVER_KEYS[type];
  for (const k of spec.required) {
    if (options[k] === undefined) r.fail(`driver ${type} requires "${k}", which is missing.`, node, `driver.${k}`);
    if (!options[k].trim()) r.fail(`driver ${type} requires "${k}", found an empty string.`, node.get(k, true) as Node, `driver.${k}`);
  }
  for (const k of Object.keys(options)) {
    if (k !== 'type' && !spec.required.includes(k) && !spec.optional.includes(k)) {
      r.warn(`unknown key "${k}" for driver ${type} is ignored.`, keyNodes[k]);
    }
  }
  if (type === 'qemu') {
    if (options.arch && options.arch !== 'x86_64')
      r.warn(`driver qemu: arch "${options.arch}" is not supported; x86_64 is used, as Djinn does.`, keyNodes.arch);
    options.arch = 'x86_64';
  }
  return { type: type as DriverSpec['type'], options, position: r.pos(node) };
}

function readPassthroughs(r: Reader, node: Node | null, field: string, fallback: SourcePosition): Passthrough[] {
  return readStringList(r, node, field, 'strings "src [=> dst]"', fallback, 'a string "src [=> dst]"').map(({ value, node: n }, i) => {
    const p = parsePassthrough(value);
    if ('error' in p) return r.fail(p.error, n, `${field}[${i}]`);
    // Said now so that lint catches it; the runner refuses these paths at run time.
    const outside = (x: string) => x.split(/[\\/]/).includes('..');
    if (field === 'objects' && outside(p.src)) {
      r.warn(`object "${p.src}" leaves the objects folder with ".."; it will not be placed.`, n);
    } else if (field !== 'objects' && (outside(p.dst) || p.dst.startsWith('/'))) {
      r.warn(`artifact destination "${p.dst}" is outside the artifacts folder; it will not be collected.`, n);
    }
    return { ...p, position: r.pos(n) };
  });
}

function readJobs(r: Reader, node: Node | null, top: SourcePosition, stages: string[]): ManifestJob[] {
  if (node === null || (isScalar(node) && node.value === null)) return [];
  if (!isSeq(node)) return r.fail(`expected a list of jobs, found ${describe(node)}.`, node, 'jobs', top);
  const jobs: ManifestJob[] = [];
  node.items.forEach((item, i) => {
    const f = `jobs[${i}]`;
    const jn = deref(r, item);
    if (!isMap(jn)) return r.fail(`expected a job (a map with stage, commands, ...), found ${describe(jn)}.`, jn, f, r.pos(node));
    const pos = r.pos(jn);
    const got = new Map<string, Node | null>();
    for (const e of entries(r, jn)) {
      if (!JOB_KEYS.includes(e.key)) r.warn(`unknown field "${e.key}" in ${f} is ignored.`, e.keyNode);
      got.set(e.key, e.value);
    }
    if (!got.has('stage')) r.fail('required field "stage" is missing.', jn, `${f}.stage`);
    const stage = readString(r, got.get('stage') ?? null, `${f}.stage`, 'a stage name', pos);
    if (!stage.trim())
      r.fail(`expected a stage name, found ${stage ? 'only blanks' : 'an empty one'}.`, got.get('stage'), `${f}.stage`, pos);
    // No name, null and "" are the same to go-yaml v2: an unnamed job, named <stage>.<n>.
    const name = readString(r, got.get('name') ?? null, `${f}.name`, 'a string', pos);
    if (name && !name.trim()) r.fail('expected a name, found only blanks.', got.get('name'), `${f}.name`);
    if (name.includes('\0') || stage.includes('\0')) r.fail('contains a NUL byte.', jn, f);
    const commands = readStringList(r, got.get('commands') ?? null, `${f}.commands`, 'commands', pos, 'a command').map((c) => c.value);
    const artifacts = readPassthroughs(r, got.get('artifacts') ?? null, `${f}.artifacts`, pos);
    jobs.push({ stage, name, commands, artifacts, position: pos });
  });

  // Names: explicit ones must be unique within a stage; unnamed jobs are <stage>.<n>.
  const counts = new Map<string, number>();
  const seen = new Map<string, ManifestJob>();
  for (const [index, job] of jobs.entries()) {
    const n = (counts.get(job.stage) ?? 0) + 1;
    counts.set(job.stage, n);
    if (!job.name) job.name = `${job.stage}.${n}`;
    const key = `${job.stage}\u0000${job.name}`;
    const prev = seen.get(key);
    if (prev) {
      throw new UsageError(
        `job name "${job.name}" is used twice in stage "${job.stage}" (first at line ${prev.position.line}); Djinn ` +
          `would silently run only one of them, so give each job its own name.`,
        job.position,
        `jobs[${index}].name`,
      );
    }
    seen.set(key, job);
    if (!stages.includes(job.stage)) {
      r.warn(`job "${job.name}" will not run: its stage "${job.stage}" is not listed in stages.`, null, job.position);
    } else if (job.commands.length === 0) {
      r.warn(`job "${job.name}" has no commands; it passes without running.`, null, job.position);
    }
  }
  return jobs;
}
