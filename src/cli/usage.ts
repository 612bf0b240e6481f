// What every djinn command shares: its usage text and how a failure becomes a message and an exit status.
import { DriverError, UsageError } from '../core/errors.js';
import type { FlagSpec } from './flags.js';

export const EXIT_USAGE = 2;

/** The commands besides a run, as `djinn -help` lists them. */
export const COMMAND_HELP = {
  lint: 'check a manifest and print its warnings and errors',
  plan: 'print what a manifest would run (--json for the plan as JSON)',
  image: 'build, list or remove images: image build|ls|rm',
  cache: 'list or remove saved running machines (warm starts, stage states): cache ls|rm',
  workflow: "print a GitHub Actions workflow for the repository's manifests",
};

export function reportFailure(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`djinn: ${err.format()}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof DriverError) {
    process.stderr.write(`djinn: ${err.message}\n`);
    return 1;
  }
  throw err;
}

export function usage(specs: FlagSpec[], head: string): string {
  const lines = [head, ''];
  let group = '';
  for (const s of specs) {
    if (s.group !== group) {
      group = s.group;
      lines.push(`${group} flags:`);
    }
    const arg = s.kind === 'string' ? ' value' : '';
    lines.push(`  -${s.name}${arg}`);
    lines.push(`        ${s.help}${s.default ? ` (default ${s.default})` : ''}`);
  }
  lines.push('', 'commands:');
  for (const [name, help] of Object.entries(COMMAND_HELP)) lines.push(`  ${name.padEnd(10)}${help}`);
  lines.push(
    '',
    'Exit status: 0 passed (or passed with failures), 1 failed/killed/timed out, 2 bad usage, manifest or configuration; 130/143 after SIGINT/SIGTERM.',
  );
  return lines.join('\n') + '\n';
}
