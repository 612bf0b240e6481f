// Option values by name, as the CLI's flags and the action's inputs give them (the inputs carry the flags' names).

export type FlagValues = Record<string, string | boolean | undefined>;

/** Every value of a repeatable flag, in order, keyed by flag name. */
const repeated = new WeakMap<FlagValues, Record<string, string[]>>();

/** Keeps one more value of a repeatable option (see `all`). */
export function recordRepeated(flags: FlagValues, name: string, value: string): void {
  const values = repeated.get(flags) ?? {};
  (values[name] ??= []).push(value);
  repeated.set(flags, values);
}

/** All values of a repeatable flag (the last one only for others). */
export function all(flags: FlagValues, name: string): string[] {
  const list = repeated.get(flags)?.[name];
  if (list) return list;
  const v = flags[name];
  return typeof v === 'string' ? [v] : [];
}

export function str(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}
