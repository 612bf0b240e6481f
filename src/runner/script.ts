// Djinn's job script and its file name.

/** `#!/bin/sh`, `exec 2>&1`, `set -ex`, a blank line, then each command on its own line. */
export function jobScript(commands: string[]): string {
  return `#!/bin/sh\nexec 2>&1\nset -ex\n\n${commands.map((c) => `${c}\n`).join('')}`;
}

/** Djinn names the script after the job with spaces as `-`; we also replace `/` (it broke Djinn's upload). */
export function scriptFileName(jobName: string): string {
  return `${jobName.replace(/[\s/\\]/g, '-').replace(/^\.+/, '_')}.sh`;
}
