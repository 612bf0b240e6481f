// Shell quoting for commands we send to /bin/sh (in the machine, or QEMU's exec: URIs).

/** POSIX single-quoting: every byte arrives as written, newlines included. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export KEY='value'` lines, for `. envfile` in /bin/sh. */
export function envFile(env: { key: string; value: string }[]): string {
  return env.map((e) => `export ${e.key}=${shellQuote(e.value)}\n`).join('');
}
