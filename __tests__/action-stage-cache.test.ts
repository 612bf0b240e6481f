// The action's stage states across workflow runs, end to end with the bundled
// action, our test image under TCG and the real @actions/cache client against
// Azurite (the results-service stand-in mocks GitHub's own servers): the first
// run saves the machine after `deps` and its post step uploads it; a second run
// on a fresh runner restores it, shows the `cached` rows in the step summary,
// and still builds the checkout it was given (copied in fresh).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRunner, runMain, runPost, type Runner } from './helpers/action-harness.js';
import { startAzurite, type Azurite } from './helpers/azurite.js';
import { testDisks } from './helpers/vm.js';
import { startResultsService, type ResultsService } from './helpers/results-service.js';

const MANIFEST = `driver:
  type: qemu
  image: debian/stable
sources:
- https://github.com/octo/example.git => src
stages:
- deps
- build
jobs:
- stage: deps
  name: prepare
  commands:
  - echo "prepared-in-deps" > /root/prepared
  - echo deps-ran
- stage: build
  name: use
  commands:
  - cat /root/prepared
  - cat src/checkout.txt
`;

let disks: string;
let azurite: Azurite;
let results: ResultsService;
const runners: Runner[] = [];

beforeAll(async () => {
  disks = testDisks();
  azurite = await startAzurite();
  results = await startResultsService(azurite.blobUrl);
});
afterAll(async () => {
  for (const r of runners) await r.cleanup();
  await results?.stop();
  await azurite?.stop();
});

async function runner(checkout: string): Promise<Runner> {
  const r = await makeRunner();
  runners.push(r);
  await writeFile(path.join(r.workspace, '.djinn.yml'), MANIFEST);
  await writeFile(path.join(r.workspace, 'checkout.txt'), `${checkout}\n`);
  return r;
}

describe('action: stage states across runs', () => {
  it('saves after deps through @actions/cache in the post step; a fresh runner restores it and shows cached rows', async () => {
    const inputs = { kvm: 'off', disks, memory: '512', cpus: '1', 'upload-artifacts': 'false', 'cache-stages': 'deps' };
    const first = await runner('checkout of run one');
    const one = await runMain(first, { inputs, env: results.env });
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(one.stdout).toMatch(/stage cache: saved the machine after stage deps/);
    expect(one.stdout).toContain('deps-ran');
    const post = await runPost(first, { inputs, env: results.env });
    expect(post.code, post.stdout + post.stderr).toBe(0);
    expect(post.stdout).toMatch(/Stage states saved to the repository cache as djinn-stages-v1-[0-9a-f]{20}-1001-1-/);
    expect(results.caches.some((c) => c.finalized && c.key.startsWith('djinn-stages-v1-'))).toBe(true);

    const second = await runner('checkout of run two');
    const two = await runMain(second, { inputs, env: results.env });
    expect(two.code, two.stdout + two.stderr).toBe(0);
    expect(two.stdout).toMatch(/Stage states restored from the repository cache \(djinn-stages-v1-/);
    expect(two.stdout).not.toContain('deps-ran');
    expect(two.stdout).toContain('prepared-in-deps');
    // The checkout is this run's, not the one inside the saved machine.
    expect(two.stdout).toContain('checkout of run two');
    expect(two.stdout).not.toContain('checkout of run one');
    expect(two.summary).toMatch(/<td>deps<\/td><td>prepare<\/td><td>♻️ cached<\/td><td>saved \d{4}-\d\d-\d\dT[\d:]+Z<\/td>/);
    expect(two.summary).toMatch(/<td>build<\/td><td>use<\/td><td>✅ passed<\/td>/);
  }, 600_000);
});
