// Masks secret values in a byte stream as it passes, chunk by chunk: a value
// split across two chunks is still caught, because a tail that could be the
// start of one is held back until the next chunk (or the end) shows what it is.
import { StringDecoder } from 'node:string_decoder';

export const MASK = '***';

export class Masker {
  private readonly secrets: string[];
  private readonly decoder = new StringDecoder('utf8');
  private held = '';

  constructor(secrets: string[]) {
    // Longest first, so that a secret containing another is masked whole.
    this.secrets = [...new Set(secrets.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
  }

  /** What can be printed now of `chunk` (and of what was held back before it). */
  push(chunk: Buffer): string {
    const text = this.held + this.decoder.write(chunk);
    if (this.secrets.length === 0) return text;
    const masked = this.replace(text);
    const hold = this.partialTail(masked);
    this.held = masked.slice(masked.length - hold);
    return masked.slice(0, masked.length - hold);
  }

  /** The rest, at the end of the stream. */
  end(): string {
    const rest = this.held + this.decoder.end();
    this.held = '';
    return this.replace(rest);
  }

  private replace(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(MASK);
    return out;
  }

  /** Length of the longest end of `text` that is the start of a secret (but not all of it). */
  private partialTail(text: string): number {
    let best = 0;
    for (const s of this.secrets) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
