// The step summary: per manifest, the machine (image, accelerator, boot time),
// a table of stages and jobs, and the artifacts with their sizes.
import path from 'node:path';
import * as core from '@actions/core';
import type { BuildReport } from '../core/reporter.js';
import { formatBytes } from '../util/bytes.js';
import { formatDuration } from '../util/duration.js';
import { statusMark } from './reporter.js';

export interface BuildResult {
  manifest: string;
  report?: BuildReport;
  /** Set when the build could not start (manifest error, image, ...). */
  error?: string;
  artifactsDir: string;
}

export interface UploadResult {
  name: string;
  id?: number;
  url?: string;
  error?: string;
}

/** The first fact present among `names`. */
export function fact(
  facts: Record<string, string | number | boolean> | undefined,
  ...names: string[]
): string | number | boolean | undefined {
  for (const n of names) if (facts && facts[n] !== undefined && facts[n] !== '') return facts[n];
  return undefined;
}

export function bootSeconds(facts: BuildReport['facts'] | undefined): number | undefined {
  const s = fact(facts, 'startSeconds', 'bootSeconds', 'boot_seconds');
  if (typeof s === 'number') return s;
  const ms = fact(facts, 'bootMs', 'boot_ms');
  return typeof ms === 'number' ? Math.round(ms / 100) / 10 : undefined;
}

export async function writeSummary(builds: BuildResult[], upload?: UploadResult): Promise<void> {
  const s = core.summary;
  s.addHeading('Djinn build', 2);
  for (const b of builds) {
    const r = b.report;
    const status = r?.status ?? 'failed';
    s.addHeading(`${statusMark(status)} ${b.manifest}: ${status}`, 3);
    if (b.error) s.addRaw(`<p>${escape(b.error)}</p>`, true);
    if (!r) continue;
    const facts = r.facts;
    const machine: string[] = [`driver ${fact(facts, 'driver') ?? ''}`.trim()];
    const image = fact(facts, 'image');
    const imageNote = fact(facts, 'imageNote');
    if (image !== undefined)
      machine.push(`image <code>${escape(String(image))}</code>${imageNote ? ` (${escape(String(imageNote))})` : ''}`);
    const accel = fact(facts, 'accelerator', 'accel');
    if (accel !== undefined) machine.push(`accelerator ${escape(String(accel))}`);
    const boot = bootSeconds(facts);
    if (boot !== undefined) machine.push(`${fact(facts, 'start') === 'restored' ? 'restored from a saved state' : 'booted'} in ${boot} s`);
    const retries = fact(facts, 'bootRetries');
    if (retries !== undefined)
      machine.push(`booted again ${retries}× after a stall (${escape(String(fact(facts, 'bootStallReason') ?? ''))})`);
    machine.push(`total ${formatDuration(r.durationMs)}`);
    s.addRaw(`<p>${machine.filter((m) => m !== 'driver').join(' · ')}</p>`, true);
    if (r.reason) s.addRaw(`<p><strong>${escape(r.reason)}</strong></p>`, true);
    s.addTable([
      [
        { data: 'Stage', header: true },
        { data: 'Job', header: true },
        { data: 'Status', header: true },
        { data: 'Duration', header: true },
      ],
      ...r.jobs.map((j) => [
        escape(j.stage),
        escape(j.name),
        `${statusMark(j.status)} ${j.status}`,
        j.cachedAt ? `saved ${escape(j.cachedAt.replace(/\.\d+Z$/, 'Z'))}` : j.durationMs ? formatDuration(j.durationMs) : '',
      ]),
    ]);
    if (r.artifacts.length) {
      s.addTable([
        [
          { data: 'Artifact', header: true },
          { data: 'From job', header: true },
          { data: 'Size', header: true },
        ],
        ...r.artifacts.map((a) => [escape(path.relative(b.artifactsDir, a.path) || a.dst), escape(a.job), formatBytes(a.bytes)]),
      ]);
    }
  }
  if (upload) {
    if (upload.url) s.addRaw(`<p>Artifacts uploaded as <a href="${escape(upload.url)}">${escape(upload.name)}</a>.</p>`, true);
    else if (upload.id !== undefined) s.addRaw(`<p>Artifacts uploaded as ${escape(upload.name)} (id ${upload.id}).</p>`, true);
    else if (upload.error) s.addRaw(`<p>Artifacts not uploaded: ${escape(upload.error)}</p>`, true);
  }
  await s.write();
}

function escape(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
