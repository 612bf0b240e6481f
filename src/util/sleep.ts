/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects). With
 * `unref`, the timer does not keep the process alive (for timeouts raced
 * against work that may finish first).
 */
export function sleep(ms: number, signal?: AbortSignal, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(finish, Math.max(0, ms));
    if (opts.unref) t.unref();
    function finish() {
      clearTimeout(t);
      signal?.removeEventListener('abort', finish);
      resolve();
    }
    if (signal?.aborted) return finish();
    signal?.addEventListener('abort', finish, { once: true });
  });
}
