// Download progress through the Reporter: a front end that can draw (a bar on
// a terminal) implements `progress`; otherwise one info line per ~10 %.
import type { Reporter } from '../../core/reporter.js';
import { formatBytes } from '../../util/bytes.js';

export interface ProgressEvent {
  label: string;
  done: number;
  /** Undefined when the server did not say. */
  total?: number;
  finished: boolean;
}

/** A Reporter that may draw progress itself; `progress` returns false when it cannot (no terminal), and lines are used. */
export type ProgressReporter = Reporter & { progress?(event: ProgressEvent): boolean };

export function progressLine(e: ProgressEvent): string {
  if (e.total)
    return `Downloading ${e.label}: ${Math.floor((e.done / e.total) * 100)}% (${formatBytes(e.done)} of ${formatBytes(e.total)})`;
  return `Downloading ${e.label}: ${formatBytes(e.done)}`;
}

/** `debian/stable [#########.........]  31% 40.0 MiB of 128.0 MiB`, for a redrawn terminal line. */
export function progressBar(e: ProgressEvent, width = 30): string {
  if (!e.total) return `Downloading ${e.label}: ${formatBytes(e.done)}`;
  const frac = Math.min(1, e.done / e.total);
  const fill = Math.round(frac * width);
  return (
    `Downloading ${e.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ` +
    `${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(e.done)} of ${formatBytes(e.total)}`
  );
}

export class Progress {
  private lastTenth = -1;
  private lastLineBytes = 0;
  private lastDraw = 0;
  private drawable = true;
  constructor(
    private readonly reporter: ProgressReporter,
    private readonly label: string,
  ) {}

  update(done: number, total: number | undefined, finished = false): void {
    const event: ProgressEvent = { label: this.label, done, total, finished };
    if (this.reporter.progress && this.drawable) {
      // A terminal redraws at most ~10 times a second.
      const now = Date.now();
      if (!finished && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.drawable = this.reporter.progress(event);
      if (this.drawable) return;
    }
    if (total) {
      const tenth = Math.floor((done / total) * 10);
      if (tenth > this.lastTenth) {
        this.lastTenth = tenth;
        this.reporter.info(progressLine(event));
      }
    } else if (finished || done - this.lastLineBytes >= 64 * 1024 * 1024) {
      // Unknown size: a line every 64 MiB.
      this.lastLineBytes = done;
      this.reporter.info(progressLine(event));
    }
  }
}
