// The SSH transport: one ssh2 connection per build, used by every driver that
// reaches its machine over SSH (ssh, qemu). Contract: ./README.md.
export { SshSession, type ExecOptions } from './session.js';
export { execCollect, type ExecOutput } from './exec.js';
export type { SshTarget } from './connect.js';
export { waitForBanner, type WaitLogger } from './banner.js';
export { fingerprint, normalizePrivateKey } from './keys.js';
