// Go `flag`-style parsing, as Djinn's offline runner takes its flags:
// `-name value`, `-name=value`, `--name`, booleans without a value.
import { UsageError } from '../core/errors.js';
import { recordRepeated, type FlagValues } from '../config/settings.js';

export interface FlagSpec {
  name: string;
  kind: 'string' | 'bool';
  /** May be given several times; every value is kept (see `all`). */
  repeatable?: boolean;
  help: string;
  default?: string;
  /** Shown under this heading in -help. */
  group: 'build' | 'qemu' | 'image' | 'ssh' | 'docker' | 'output';
}

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
    } else if (eq >= 0) setValue(flags, spec, body.slice(eq + 1));
    else {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}.`);
      setValue(flags, spec, argv[++i]);
    }
  }
  return { flags, args };
}

function setValue(flags: FlagValues, spec: FlagSpec, value: string): void {
  flags[spec.name] = value;
  if (spec.repeatable) recordRepeated(flags, spec.name, value);
}
