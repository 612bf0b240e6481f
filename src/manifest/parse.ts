// Reads a .djinn.yml into a Manifest, keeping every item's position so that
// errors and warnings can name the file, line and column. Djinn's documented
// (v1.3.0) behaviour, with its bugs fixed: see README "Differences".
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { SourcePosition } from '../runner/reporter.js';
import { UsageError } from './errors.js';
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

class Reader {
  readonly warnings: Warning[] = [];
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
function deref(node: unknown): Node | null {
  if (isAlias(node) && currentDoc) return (node.resolve(currentDoc) ?? null) as Node | null;
  return (node ?? null) as Node | null;
}

/** A map's keys in order; YAML merge keys (`<<: *base`) add the keys the map does not set itself. */
function entries(map: YAMLMap): { key: string; keyNode: Node; value: Node | null }[] {
  const own = map.items
    .filter((pair) => keyName(pair) !== '<<')
    .map((pair) => ({ key: keyName(pair), keyNode: pair.key as Node, value: deref(pair.value) }));
  for (const pair of map.items) {
    if (keyName(pair) !== '<<') continue;
    const v = deref(pair.value);
    const bases = isSeq(v) ? v.items.map(deref) : [v];
    for (const base of bases) {
      if (!isMap(base)) continue;
      for (const e of entries(base)) if (!own.some((o) => o.key === e.key)) own.push(e);
    }
  }
  return own;
}

function readString(r: Reader, node: Node | null, field: string, what: string, fallback: SourcePosition): string {
  if (isScalar(node) && typeof node.value === 'string') return node.value;
  return r.fail(`expected ${what}, found ${describe(node)}.`, node, field, fallback);
}

/** A list of strings; a missing or null field is an empty list. */
function readStringList(
  r: Reader,
  node: Node | null,
  field: string,
  what: string,
  fallback: SourcePosition,
  item = "a string",
): { value: string; node: Node | null }[] {
  if (node === null || (isScalar(node) && node.value === null)) return [];
  if (!isSeq(node)) {
    const hint = isScalar(node) && typeof node.value === 'string' ? ' Write it as a list: put "- " before the item.' : '';
    return r.fail(`expected a list of ${what}, found ${describe(node)}.${hint}`, node, field, fallback);
  }
  return node.items.map((entry, i) => {
    const n = deref(entry);
    if (isScalar(n) && (typeof n.value === 'number' || typeof n.value === 'boolean')) {
      r.fail(`expected ${item}, found ${describe(n)}; put it in quotes to make it a string.`, n, `${field}[${i}]`);
    }
    return { value: readString(r, n, `${field}[${i}]`, item, r.pos(node)), node: n };
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
  return { url, ref, dir, position: {} };
}

export interface ParseOptions {
  /** Shown in messages instead of the path as given. */
  displayName?: string;
}

export function parseManifestFile(file: string, options: ParseOptions = {}): Manifest {
  let text: string;
  const name = options.displayName ?? file;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (err as Error).message;
    throw new UsageError(`cannot read the manifest: ${why}.`, { file: name }, 'manifest');
  }
  return parseManifest(text, name);
}

export function parseManifest(text: string, file = '.djinn.yml'): Manifest {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const r = new Reader(file, lines);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const { line, col } = lines.linePos(e.pos[0]);
    const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '').replace(/\.?$/, '.');
    throw new UsageError(`not valid YAML: ${msg}`, { file, line, column: col }, 'manifest');
  }
  currentDoc = doc;
  const root = doc.contents as Node | null;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) {
    throw new UsageError('the manifest is empty; it needs at least a driver and jobs.', { file, line: 1, column: 1 }, 'manifest');
  }
  if (!isMap(root)) {
    return r.fail(`expected a map of manifest fields (driver, stages, jobs, ...) at the top level, found ${describe(root)}.`, root, 'manifest');
  }
  const top = r.pos(root);
  const fields = new Map<string, { keyNode: Node; value: Node | null }>();
  for (const e of entries(root)) {
    if (!TOP_KEYS.includes(e.key)) r.warn(`unknown field "${e.key}" is ignored.`, e.keyNode);
    fields.set(e.key, e);
  }
  const field = (k: string) => fields.get(k)?.value ?? null;

  let namespace: string | undefined;
  if (fields.has('namespace')) {
    const n = field('namespace');
    if (!(isScalar(n) && n.value === null)) namespace = readString(r, n, 'namespace', 'a string', top);
    if (namespace) r.warn(`namespace "${namespace}" is only used by a Djinn server; it is ignored when running here.`, fields.get('namespace')?.keyNode);
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
  for (const { value, node } of readStringList(r, field('stages'), 'stages', 'stage names', top, 'a stage name')) {
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

  const jobs = readJobs(r, field('jobs'), top, stages.map((s) => s.name));

  if (jobs.length === 0 && !fields.has('jobs')) r.warn('the manifest has no jobs; only the setup stage would run.', root);

  return { file, namespace, driver, env, objects, sources, stages, allowFailures, jobs, warnings: r.warnings };
}

function readDriver(r: Reader, entry: { keyNode: Node; value: Node | null } | undefined, top: SourcePosition): DriverSpec {
  if (!entry) return r.fail('required field is missing; add e.g. "driver: {type: qemu, image: debian/stable}".', null, 'driver', top);
  const node = entry.value;
  if (!isMap(node)) return r.fail(`expected a map with a "type" key, found ${describe(node)}.`, node, 'driver', r.pos(entry.keyNode));
  const options: Record<string, string> = {};
  const keyNodes: Record<string, Node> = {};
  for (const e of entries(node)) {
    const v = e.value;
    if (!isScalar(v) || v.value === null || typeof v.value === 'object') {
      r.fail(`expected a single value, found ${describe(v)}.`, v ?? e.keyNode, `driver.${e.key}`);
    }
    options[e.key] = String(v.value);
    keyNodes[e.key] = e.keyNode;
  }
  const type = options.type;
  if (type === undefined) return r.fail(`"type" is missing; expected one of ${DRIVER_TYPES.join(', ')}.`, node, 'driver.type');
  if (!(DRIVER_TYPES as readonly string[]).includes(type)) {
    return r.fail(`unknown driver type "${type}"; expected one of ${DRIVER_TYPES.join(', ')}.`, node.get('type', true) as Node, 'driver.type');
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
    if (options.arch && options.arch !== 'x86_64') r.warn(`driver qemu: arch "${options.arch}" is not supported; x86_64 is used, as Djinn does.`, keyNodes.arch);
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
    const jn = deref(item);
    if (!isMap(jn)) return r.fail(`expected a job (a map with stage, commands, ...), found ${describe(jn)}.`, jn, f, r.pos(node));
    const pos = r.pos(jn);
    const got = new Map<string, Node | null>();
    for (const e of entries(jn)) {
      if (!JOB_KEYS.includes(e.key)) r.warn(`unknown field "${e.key}" in ${f} is ignored.`, e.keyNode);
      got.set(e.key, e.value);
    }
    if (!got.has('stage')) r.fail('required field "stage" is missing.', jn, `${f}.stage`);
    const stage = readString(r, got.get('stage') ?? null, `${f}.stage`, 'a stage name', pos);
    let name = '';
    if (got.has('name') && !(isScalar(got.get('name')) && (got.get('name') as { value: unknown }).value === null)) {
      name = readString(r, got.get('name') ?? null, `${f}.name`, 'a string', pos);
      if (!name.trim()) r.fail('expected a name, found an empty string.', got.get('name'), `${f}.name`);
    }
    const commands = readStringList(r, got.get('commands') ?? null, `${f}.commands`, 'commands (strings)', pos, 'a command (a string)').map((c) => c.value);
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
        `job name "${job.name}" is used twice in stage "${job.stage}" (first at line ${prev.position.line}); Djinn would silently run only one of them, so give each job its own name.`,
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
