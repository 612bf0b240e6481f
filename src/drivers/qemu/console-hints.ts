// Probe hints from the guest's serial console: a line about sshd (our images'
// "Server listening on 0.0.0.0 port 22.", systemd's "Started ssh.service")
// means the SSH server is up or about to be, so the transport probes at once
// instead of at its slow pace (see ProbeHints in transport/ssh/banner.ts).
import { open } from 'node:fs/promises';
import type { ProbeHints } from '../../transport/ssh/banner.js';

const POLL_MS = 50;
/** Read at most this much new console text per poll. */
const MAX_READ = 64 * 1024;
export const SSH_LINE = /\bsshd?\b|OpenSSH|Secure Shell|Server listening/i;

/** Hints for each new piece of the console file (QEMU's -serial file:) that mentions SSH. */
export function consoleHints(file: string): ProbeHints {
  return (probeNow) => {
    let offset = 0;
    let tail = '';
    let stopped = false;
    let busy = false;
    const poll = async () => {
      if (busy || stopped) return;
      busy = true;
      try {
        const fh = await open(file, 'r').catch(() => null);
        if (!fh) return;
        try {
          const buf = Buffer.alloc(MAX_READ);
          const { bytesRead } = await fh.read(buf, 0, MAX_READ, offset);
          if (bytesRead === 0) return;
          offset += bytesRead;
          // Keep the last partial line so that a word split across two reads still matches.
          const text = tail + buf.subarray(0, bytesRead).toString('latin1');
          const cut = text.lastIndexOf('\n');
          tail = cut < 0 ? text.slice(-256) : text.slice(cut + 1);
          if (!stopped && SSH_LINE.test(text)) probeNow();
        } finally {
          await fh.close();
        }
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void poll(), POLL_MS);
    timer.unref();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  };
}
