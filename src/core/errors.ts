// The errors every layer throws, and the one way to turn a caught value into text.
import type { SourcePosition } from './reporter.js';

/**
 * A problem with what the user wrote (manifest, driver.conf, flags): shown as
 * one short paragraph, never with a stack trace, exit status 2.
 */
export class UsageError extends Error {
  readonly position: SourcePosition;
  readonly field?: string;
  constructor(message: string, position: SourcePosition = {}, field?: string) {
    super(message);
    this.name = 'UsageError';
    this.position = position;
    this.field = field;
  }

  /** `file:line:column: field: message` with the parts that are known. */
  format(): string {
    return formatLocated(this.message, this.position, this.field);
  }
}

export function formatLocated(message: string, pos: SourcePosition, field?: string): string {
  let where = pos.file ?? '';
  if (pos.line !== undefined) where += `${where ? ':' : 'line '}${pos.line}`;
  if (pos.line !== undefined && pos.column !== undefined) where += `:${pos.column}`;
  const head = [where, field].filter(Boolean).join(': ');
  return head ? `${head}: ${message}` : message;
}

/** A failure with a message fit to show the user as it is. */
export class DriverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriverError';
  }
}

/** The message of a caught value (an Error's message, anything else as text). */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
