// The SSH transport: one ssh2 connection per build, used by every driver that
// reaches its machine over SSH (ssh, qemu). Contract: docs/ssh-transport.md.
export { SshSession } from './session.js';
export type { SshTarget } from './connect.js';
export { waitForBanner } from './banner.js';
