import type { EventEmitter } from 'node:events';

/**
 * A promise for a stream's `drain` (or its end: close, error) after a write
 * that returned false, so that a job's output source can wait for a full
 * stdout instead of piling up in our memory.
 */
export function drained(stream: EventEmitter): Promise<void> {
  // A stream already destroyed (a closed pipe) sends no more events.
  if ((stream as { destroyed?: boolean }).destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
