// Go `flag`-style parsing, as Djinn's offline runner takes its flags:
// `-name value`, `-name=value`, `--name`, booleans without a value.
import { UsageError } from '../manifest/errors.js';

export interface FlagSpec {
  name: string;
  kind: 'string' | 'bool';
  help: string;
  default?: string;
  /** Shown under this heading in -help. */
  group: 'build' | 'qemu' | 'image' | 'ssh' | 'docker' | 'output';
}

export type FlagValues = Record<string, string | boolean | undefined>;

export function parseFlags(argv: string[], specs: FlagSpec[]): { flags: FlagValues; args: string[] } {
  const flags: FlagValues = {};
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new UsageError(`flag provided but not defined: -${name}; see -help for the flags.`);
    if (spec.kind === 'bool') {
      if (eq < 0) flags[name] = true;
      else {
        const v = body.slice(eq + 1);
        if (!['true', 'false', '1', '0'].includes(v)) throw new UsageError(`invalid boolean value "${v}" for -${name}.`);
        flags[name] = v === 'true' || v === '1';
      }
    } else if (eq >= 0) flags[name] = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}.`);
      flags[name] = argv[++i];
    }
  }
  return { flags, args };
}

export function str(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}
