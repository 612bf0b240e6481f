// ssh2 allocates a fresh buffer for every packet it encrypts or decrypts. Those
// buffers live outside V8's heap, and V8 only notices them at a garbage
// collection, which a small, quiet heap rarely needs: streaming 200 MB grew the
// CLI by about 50 MB of dead buffers. A minor collection (a scavenge: the young
// objects only, a fraction of a millisecond) every few MiB of traffic frees
// them as they go and keeps the process flat (bench/ssh.ts measures it).
import type net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';

const EVERY_BYTES = 4 << 20;

type MinorGc = () => void;
let minorGc: MinorGc | null | undefined;

/** V8's gc() with --expose-gc turned on now; null where the runtime refuses. */
function loadMinorGc(): MinorGc | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    // A new context gets the gc() global that the flag provides.
    const gc = vm.runInNewContext('gc') as unknown;
    if (typeof gc !== 'function') return null;
    return () => (gc as (o: { type: string }) => void)({ type: 'minor' });
  } catch {
    return null;
  }
}

/** Runs a minor collection each time `sock` has moved another few MiB, either way. */
/** Whether this runtime lets us run minor collections (checked once). */
export function minorGcAvailable(): boolean {
  if (minorGc === undefined) minorGc = loadMinorGc();
  return minorGc !== null;
}

export function collectGarbageAsTrafficFlows(sock: net.Socket): void {
  if (minorGc === undefined) minorGc = loadMinorGc();
  const gc = minorGc;
  if (!gc) return;
  let last = 0;
  sock.on('data', () => {
    const moved = sock.bytesRead + sock.bytesWritten;
    if (moved - last < EVERY_BYTES) return;
    last = moved;
    gc();
  });
}
