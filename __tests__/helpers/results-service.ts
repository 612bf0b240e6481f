// A stand-in for GitHub's own "results service", the Twirp JSON API that
// @actions/cache (v2) and @actions/artifact call on a hosted runner. GitHub's
// servers cannot exist here, so this is the one thing these tests mock; the
// bytes themselves go to and come from Azurite through signed (SAS) URLs, as
// on GitHub, and the @actions clients are the real, unmodified packages.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlobSASPermissions, BlobServiceClient, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './azurite.js';

const CONTAINER = 'results';
const RUN = 'run-backend-1';
const JOB = 'job-backend-1';

export interface CacheEntry {
  key: string;
  version: string;
  blob: string;
  size: number;
  finalized: boolean;
}
export interface ArtifactEntry {
  id: number;
  name: string;
  blob: string;
  size: number;
  digest?: string;
  finalized: boolean;
}

export interface ResultsService {
  url: string;
  /** ACTIONS_* variables the @actions clients need to talk to this service. */
  env: Record<string, string>;
  caches: CacheEntry[];
  artifacts: ArtifactEntry[];
  /** Every Twirp method called, in order. */
  calls: string[];
  stop(): Promise<void>;
}

/** An unsigned JWT: the artifact client decodes the token, it does not verify it. */
function runtimeToken(): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ scp: `Actions.GenericRead:x Actions.Results:${RUN}:${JOB}` })}.sig`;
}

export async function startResultsService(blobUrl: string): Promise<ResultsService> {
  const cred = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const container = new BlobServiceClient(blobUrl, cred).getContainerClient(CONTAINER);
  await container.createIfNotExists();
  const sas = (blob: string, permissions: string) =>
    `${container.getBlobClient(blob).url}?${generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName: blob,
        permissions: BlobSASPermissions.parse(permissions),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      cred,
    ).toString()}`;

  const caches: CacheEntry[] = [];
  const artifacts: ArtifactEntry[] = [];
  const calls: string[] = [];

  type Body = Record<string, unknown>;
  const handlers: Record<string, (b: Body) => Body | Promise<Body>> = {
    'CacheService/CreateCacheEntry': (b) => {
      const blob = `cache-${caches.length + 1}`;
      caches.push({ key: String(b.key), version: String(b.version), blob, size: 0, finalized: false });
      return { ok: true, signed_upload_url: sas(blob, 'cw') };
    },
    'CacheService/FinalizeCacheEntryUpload': (b) => {
      const e = caches.findLast((c) => c.key === b.key && c.version === b.version);
      if (!e) return { ok: false };
      e.finalized = true;
      e.size = Number(b.size_bytes);
      return { ok: true, entry_id: String(caches.indexOf(e) + 1) };
    },
    'CacheService/GetCacheEntryDownloadURL': (b) => {
      const done = caches.filter((c) => c.finalized && c.version === b.version).reverse();
      const hit =
        done.find((c) => c.key === b.key) ??
        ((b.restore_keys as string[] | undefined) ?? []).map((p) => done.find((c) => c.key.startsWith(p))).find(Boolean);
      if (!hit) return { ok: false };
      return { ok: true, signed_download_url: sas(hit.blob, 'r'), matched_key: hit.key };
    },
    'ArtifactService/CreateArtifact': (b) => {
      const id = artifacts.length + 1;
      artifacts.push({ id, name: String(b.name), blob: `artifact-${id}.zip`, size: 0, finalized: false });
      return { ok: true, signed_upload_url: sas(`artifact-${id}.zip`, 'cw') };
    },
    'ArtifactService/FinalizeArtifact': (b) => {
      const a = artifacts.findLast((x) => x.name === b.name);
      if (!a) return { ok: false };
      a.finalized = true;
      a.size = Number(b.size);
      a.digest = typeof b.hash === 'string' ? b.hash : undefined;
      return { ok: true, artifact_id: String(a.id) };
    },
    'ArtifactService/ListArtifacts': (b) => ({
      artifacts: artifacts
        .filter((a) => a.finalized)
        .filter((a) => !b.name_filter || a.name === b.name_filter)
        .filter((a) => !b.id_filter || String(a.id) === String(b.id_filter))
        .map((a) => ({
          workflow_run_backend_id: RUN,
          workflow_job_run_backend_id: JOB,
          database_id: String(a.id),
          name: a.name,
          size: String(a.size),
          created_at: new Date().toISOString(),
          ...(a.digest ? { digest: a.digest } : {}),
        })),
    }),
    'ArtifactService/GetSignedArtifactURL': (b) => {
      const a = artifacts.findLast((x) => x.finalized && x.name === b.name);
      return { signed_url: a ? sas(a.blob, 'r') : '' };
    },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/twirp\/github\.actions\.results\.api\.v1\.(\w+\/\w+)$/.exec(req.url ?? '');
      const handler = m && handlers[m[1]];
      if (!handler || req.method !== 'POST') {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ code: 'bad_route', msg: `no such method ${req.url}` }));
        return;
      }
      calls.push(m[1]);
      Promise.resolve()
        .then(() => handler(JSON.parse(Buffer.concat(chunks).toString() || '{}') as Body))
        .then(
          (out) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
          (err: unknown) =>
            res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'internal', msg: String(err) })),
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    env: { ACTIONS_RESULTS_URL: url, ACTIONS_RUNTIME_TOKEN: runtimeToken(), ACTIONS_CACHE_SERVICE_V2: 'true' },
    caches,
    artifacts,
    calls,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
