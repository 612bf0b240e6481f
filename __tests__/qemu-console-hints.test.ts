// The qemu driver's probe hints: a line about sshd on the serial console makes
// the transport probe for the SSH banner at once (src/drivers/qemu/console-hints.ts).
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consoleHints } from '../src/drivers/qemu/console-hints.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-hints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('console hints', () => {
  it('fire for sshd lines, not for other console output, and stop when asked', async () => {
    const file = path.join(dir, 'console.log');
    writeFileSync(file, '');
    let hints = 0;
    const stop = consoleHints(file)(() => hints++);
    appendFileSync(file, '[    1.234] virtio_net virtio0 eth0: renamed\r\ndjinn: eth0 has address 10.0.2.15\r\n');
    await settle(300);
    expect(hints).toBe(0);
    appendFileSync(file, 'Server listening on 0.0.0.0 port 22.\r\n');
    for (let i = 0; i < 50 && hints === 0; i++) await settle(50);
    expect(hints).toBe(1);
    stop();
    appendFileSync(file, 'Started ssh.service - OpenBSD Secure Shell server.\r\n');
    await settle(300);
    expect(hints).toBe(1);
  });

  it('a line split across two writes still counts', async () => {
    const file = path.join(dir, 'split.log');
    writeFileSync(file, 'boot...\r\nServer list');
    let hints = 0;
    const stop = consoleHints(file)(() => hints++);
    await settle(200);
    const before = hints;
    appendFileSync(file, 'ening on :: port 22.\r\n');
    for (let i = 0; i < 50 && hints === before; i++) await settle(50);
    stop();
    expect(hints).toBeGreaterThan(before);
  });
});
