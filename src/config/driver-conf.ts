// driver.conf, in Djinn's configuration syntax:
//   driver qemu { disks "/var/lib/djinn/images" cpus 2 memory 2048 }
// Blocks, `#` comments, "quoted strings" with ${ENV} expansion, integers,
// durations (60s, 1h30m), sizes (2KB/MB/GB), booleans, `include "file"`.
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import type { Warning } from '../manifest/types.js';
import { parseDuration } from '../util/duration.js';
import { readInputText } from '../util/input-file.js';

export type ConfValue =
  | { kind: 'string'; value: string; line: number; column?: number }
  | { kind: 'int'; value: number; line: number; column?: number }
  | { kind: 'duration'; value: number; line: number; column?: number }
  | { kind: 'size'; value: number; line: number; column?: number }
  | { kind: 'bool'; value: boolean; line: number; column?: number };

export interface DriverConf {
  file: string;
  blocks: Record<string, Record<string, ConfValue>>;
  warnings: Warning[];
}

/** Keys each driver block understands. */
export const CONF_KEYS: Record<string, string[]> = {
  qemu: ['disks', 'cpus', 'memory', 'arch', 'image', 'kvm', 'boot_timeout'],
  docker: ['host', 'version'],
  ssh: ['user', 'password', 'key', 'timeout'],
  os: [],
};

interface Token {
  text: string;
  quoted: boolean;
  line: number;
  col: number;
}

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let col = 1;
  let i = 0;
  const adv = (n = 1) => {
    for (let k = 0; k < n; k++) {
      if (text[i] === '\n') {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') adv();
    } else if (/\s/.test(c)) adv();
    else if (c === '{' || c === '}' || c === '[' || c === ']' || c === ',') {
      out.push({ text: c, quoted: false, line, col });
      adv();
    } else if (c === '"') {
      const start = { line, col };
      adv();
      let s = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\n') throw new UsageError('unterminated string.', { file, line: start.line, column: start.col });
        if (text[i] === '\\' && i + 1 < text.length) {
          adv();
          s += text[i] === 'n' ? '\n' : text[i] === 't' ? '\t' : text[i];
        } else s += text[i];
        adv();
      }
      if (i >= text.length) throw new UsageError('unterminated string.', { file, line: start.line, column: start.col });
      adv();
      out.push({ text: s, quoted: true, line: start.line, col: start.col });
    } else {
      const start = { line, col };
      let s = '';
      while (i < text.length && !/[\s{}[\],#"]/.test(text[i])) {
        s += text[i];
        adv();
      }
      out.push({ text: s, quoted: false, line: start.line, col: start.col });
    }
  }
  return out;
}

/** `${NAME}` from the environment; an unset one is an error, not a silent "". */
function expandEnv(s: string, env: NodeJS.ProcessEnv, where: { file: string; line: number; column: number }): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k: string) => {
    const v = env[k];
    if (v === undefined) throw new UsageError(`\${${k}} is not set in the environment; set it or write the value.`, where);
    return v;
  });
}

const SIZE = /^(\d+)(KB|MB|GB|TB)$/;
const SIZE_MULT: Record<string, number> = { KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function literal(t: Token, file: string, env: NodeJS.ProcessEnv, field: string): ConfValue {
  const at = { line: t.line, column: t.col };
  if (t.quoted) return { kind: 'string', value: expandEnv(t.text, env, { file, ...at }), ...at };
  if (/^-?\d+$/.test(t.text)) {
    if (!Number.isSafeInteger(Number(t.text)) || Math.abs(Number(t.text)) > 2 ** 31 - 1) {
      throw new UsageError(`${t.text} is too large a number.`, { file, ...at }, field);
    }
    return { kind: 'int', value: Number(t.text), ...at };
  }
  if (t.text === 'true' || t.text === 'false') return { kind: 'bool', value: t.text === 'true', ...at };
  const size = SIZE.exec(t.text);
  if (size) return { kind: 'size', value: Number(size[1]) * SIZE_MULT[size[2]], ...at };
  const d = parseDuration(t.text);
  if (d !== undefined && /[a-z]$/.test(t.text)) return { kind: 'duration', value: d, ...at };
  // A bare word (`kvm auto`), as the README's examples write the choices.
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(t.text)) return { kind: 'string', value: t.text, ...at };
  throw new UsageError(
    `"${t.text}" is not a value: expected a "quoted string", a number, a duration like 60s or a size like 2GB.`,
    { file, line: t.line, column: t.col },
    field,
  );
}

export function parseDriverConf(text: string, file: string, env: NodeJS.ProcessEnv = process.env, depth = 0): DriverConf {
  const conf: DriverConf = { file, blocks: {}, warnings: [] };
  const toks = tokenize(text, file);
  let i = 0;
  const at = (t: Token | undefined) => ({ file, line: t?.line, column: t?.col });
  const expect = (what: string): Token => {
    const t = toks[i++];
    if (!t) {
      const last = toks[toks.length - 1];
      throw new UsageError(`unexpected end of file: expected ${what}.`, { file, line: last?.line ?? 1, column: last?.col ?? 1 });
    }
    return t;
  };
  while (i < toks.length) {
    const head = expect('"driver" or "include"');
    if (head.text === 'include' && !head.quoted) {
      const files: Token[] = [];
      if (toks[i]?.text === '[' && !toks[i].quoted) {
        i++;
        while (toks[i] && !(toks[i].text === ']' && !toks[i].quoted)) {
          if (toks[i].text !== ',') files.push(toks[i]);
          i++;
        }
        expect('"]"');
      } else files.push(expect('a file name'));
      for (const f of files) {
        const p = path.resolve(path.dirname(file), expandEnv(f.text, env, { file, line: f.line, column: f.col }));
        if (depth > 8) throw new UsageError('include nests too deeply.', at(f));
        const read = readInputText(p);
        if ('error' in read) throw new UsageError(`cannot read the included file ${p}: ${read.error}.`, at(f), 'include');
        const sub = parseDriverConf(read.text, p, env, depth + 1);
        for (const [k, v] of Object.entries(sub.blocks)) conf.blocks[k] = { ...(conf.blocks[k] ?? {}), ...v };
        conf.warnings.push(...sub.warnings);
      }
      continue;
    }
    if (head.text !== 'driver' || head.quoted) {
      throw new UsageError(`expected "driver <name> { ... }", found "${head.text}".`, at(head));
    }
    const name = expect('a driver name');
    const open = expect('"{"');
    if (open.text !== '{') throw new UsageError(`expected "{" after "driver ${name.text}", found "${open.text}".`, at(open));
    if (!(name.text in CONF_KEYS)) {
      conf.warnings.push({ file, line: name.line, column: name.col, message: `unknown driver "${name.text}" is ignored.` });
    }
    const block: Record<string, ConfValue> = conf.blocks[name.text] ?? {};
    for (;;) {
      const key = expect('a key or "}"');
      if (key.text === '}' && !key.quoted) break;
      const val = expect(`a value for "${key.text}"`);
      if ((val.text === '}' || val.text === '{') && !val.quoted) {
        throw new UsageError(`"${key.text}" has no value.`, at(key), `driver ${name.text}`);
      }
      const k = key.text.toLowerCase();
      if (CONF_KEYS[name.text] && !CONF_KEYS[name.text].includes(k)) {
        conf.warnings.push({
          file,
          line: key.line,
          column: key.col,
          message: `unknown key "${key.text}" in driver ${name.text} is ignored.`,
        });
      }
      block[k] = literal(val, file, env, `driver ${name.text} ${key.text}`);
    }
    conf.blocks[name.text] = block;
  }
  return conf;
}

export function readDriverConf(file: string, env: NodeJS.ProcessEnv = process.env): DriverConf {
  const read = readInputText(file);
  if ('error' in read) throw new UsageError(`cannot read the driver configuration: ${read.error}.`, { file }, '-driver');
  return parseDriverConf(read.text, file, env);
}

const KIND_NAMES: Record<ConfValue['kind'], string> = {
  string: 'a string',
  int: 'a number',
  duration: 'a duration',
  size: 'a size',
  bool: 'a boolean',
};

/** Typed accessors that name the file and line on a wrong type. */
export function confString(conf: DriverConf, block: string, key: string): string | undefined {
  const v = conf.blocks[block]?.[key];
  if (!v) return undefined;
  if (v.kind !== 'string')
    throw new UsageError(
      `expected a "quoted string", found ${KIND_NAMES[v.kind]}.`,
      { file: conf.file, line: v.line, column: v.column },
      `driver ${block} ${key}`,
    );
  return v.value;
}

export function confInt(conf: DriverConf, block: string, key: string): number | undefined {
  const v = conf.blocks[block]?.[key];
  if (!v) return undefined;
  if (v.kind !== 'int' || v.value <= 0) {
    const hint = v.kind === 'size' ? ' (memory is in MiB: write 2048, not 2GB)' : '';
    throw new UsageError(
      `expected a positive whole number, found ${v.kind === 'int' ? v.value : KIND_NAMES[v.kind]}${hint}.`,
      { file: conf.file, line: v.line, column: v.column },
      `driver ${block} ${key}`,
    );
  }
  return v.value;
}

/** A string that must be one of `allowed`. */
export function confChoice<T extends string>(conf: DriverConf, block: string, key: string, allowed: readonly T[]): T | undefined {
  const v = conf.blocks[block]?.[key];
  const text = v?.kind === 'bool' ? (v.value ? 'on' : 'off') : confString(conf, block, key);
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new UsageError(
      `expected one of ${allowed.join(', ')}, found "${text}".`,
      { file: conf.file, line: v?.line, column: v?.column },
      `driver ${block} ${key}`,
    );
  }
  return text as T;
}

/** Durations may be written quoted ("60s", as Djinn's sample file does) or bare (60s). */
export function confDuration(conf: DriverConf, block: string, key: string): number | undefined {
  const v = conf.blocks[block]?.[key];
  if (!v) return undefined;
  if (v.kind === 'duration') return v.value;
  if (v.kind === 'string') {
    const d = parseDuration(v.value);
    if (d !== undefined) return d;
  }
  throw new UsageError(
    `expected a duration like 60s or 5m.`,
    { file: conf.file, line: v.line, column: v.column },
    `driver ${block} ${key}`,
  );
}
