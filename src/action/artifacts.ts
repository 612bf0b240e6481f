// Uploads the collected artifacts folder with @actions/artifact: one artifact
// per step, holding every file (one sub-folder per manifest when there are several).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import type { UploadResult } from './summary.js';

export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    // Half-copied files (`.part-xxxx`) are never renamed into place: skip them.
    else if (e.isFile() && !/\.part-[0-9a-f]{8}$/.test(e.name)) out.push(p);
  }
  return out;
}

/** The run page's artifact link, as upload-artifact forms it. */
export function artifactUrl(id: number, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  if (!server || !repo || !run) return undefined;
  return `${server}/${repo}/actions/runs/${run}/artifacts/${id}`;
}

export async function uploadArtifacts(name: string, dir: string): Promise<UploadResult & { files: number }> {
  const files = await listFiles(dir);
  if (files.length === 0) return { name, files: 0 };
  const client = new DefaultArtifactClient();
  const res = await client.uploadArtifact(name, files, dir, {});
  return { name, id: res.id, url: res.id !== undefined ? artifactUrl(res.id) : undefined, files: files.length };
}
