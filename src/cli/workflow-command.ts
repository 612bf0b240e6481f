// `djinn workflow`: prints a ready-to-commit .github/workflows/djinn.yml that
// runs the repository's manifests with the action, one matrix job per manifest,
// so a repository keeps its manifests and gains GitHub CI in one commit.
import { existsSync } from 'node:fs';
import { UsageError } from '../core/errors.js';
import { parseManifestFile } from '../manifest/parse.js';
import { findManifests } from '../runner/prepare.js';
import { parseFlags, type FlagSpec } from './flags.js';
import { str } from '../config/settings.js';
import { reportFailure, usage } from './usage.js';

/** How workflows refer to this action (owner/repo@ref). */
export const ACTION_REF = 'djinn-ci/djinn-vm-action@v1';

const WORKFLOW_FLAGS: FlagSpec[] = [
  {
    group: 'build',
    name: 'manifest',
    kind: 'string',
    default: '.djinn.yml and .djinn/*.yml',
    help: 'the manifests: a file, a folder or a glob (comma-separated for several)',
  },
  { group: 'build', name: 'action', kind: 'string', default: ACTION_REF, help: 'the action reference to use' },
  { group: 'build', name: 'runs-on', kind: 'string', default: 'ubuntu-24.04', help: 'the runner label' },
  { group: 'build', name: 'help', kind: 'bool', help: 'print this help' },
];

function yamlString(s: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(s) && !/^(true|false|yes|no|on|off|null|~)$/i.test(s) ? s : JSON.stringify(s);
}

export function workflowYaml(manifests: string[], opts: { action?: string; runsOn?: string } = {}): string {
  const list = manifests.map((m) => `          - ${yamlString(m)}`).join('\n');
  return `# Runs the repository's Djinn manifests in a VM on GitHub's runners.
# Made by \`djinn workflow\`; one matrix job per manifest.
name: Djinn
on:
  push:
  pull_request:
  workflow_dispatch:
permissions:
  contents: read
jobs:
  djinn:
    name: \${{ matrix.manifest }}
    runs-on: ${yamlString(opts.runsOn ?? 'ubuntu-24.04')}
    timeout-minutes: 60
    strategy:
      fail-fast: false
      matrix:
        manifest:
${list}
    steps:
      - uses: actions/checkout@v4
      - uses: ${opts.action ?? ACTION_REF}
        with:
          manifest: \${{ matrix.manifest }}
`;
}

export async function workflowCommand(argv: string[]): Promise<number> {
  const { flags } = parseFlags(argv, WORKFLOW_FLAGS);
  if (flags.help) {
    process.stdout.write(
      usage(WORKFLOW_FLAGS, 'usage: djinn workflow [-manifest SPEC] [-action REF] [-runs-on LABEL] > .github/workflows/djinn.yml'),
    );
    return 0;
  }
  const cwd = process.cwd();
  let spec = str(flags, 'manifest')?.split(',').join('\n');
  if (!spec) {
    const found = ['.djinn.yml', '.djinn'].filter((p) => existsSync(p));
    if (found.length === 0)
      throw new UsageError('no .djinn.yml or .djinn/ folder here; name the manifests with -manifest.', {}, '-manifest');
    spec = found.join('\n');
  }
  const manifests = await findManifests(spec, cwd, '-manifest');
  let code = 0;
  for (const m of manifests) {
    try {
      parseManifestFile(m);
    } catch (err) {
      // Still printed: the workflow is right, the manifest needs fixing.
      code = Math.max(code, reportFailure(err));
    }
  }
  process.stdout.write(workflowYaml(manifests, { action: str(flags, 'action'), runsOn: str(flags, 'runs-on') }));
  return code;
}
