// ssh2 writes every SSH packet (at most 32 KiB) to the socket on its own: one
// syscall per packet, and on loopback each one also runs the receiver's TCP
// path. Corking the socket for the rest of the current tick hands the kernel
// all packets of one burst in a single writev. Measured on 256 MiB SFTP
// uploads: 1.3x faster (bench/ssh.ts).
import type net from 'node:net';

/** Makes `sock` gather the writes of one tick into one writev. */
export function coalesceWrites(sock: net.Socket): void {
  const write = sock.write;
  let corked = false;
  const flush = () => {
    corked = false;
    // end() or destroy() may already have flushed or dropped the buffer.
    if (!sock.destroyed && sock.writableCorked > 0) sock.uncork();
  };
  sock.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
    if (!corked && !sock.destroyed) {
      corked = true;
      sock.cork();
      process.nextTick(flush);
    }
    return write.apply(this, args);
  } as net.Socket['write'];
}
