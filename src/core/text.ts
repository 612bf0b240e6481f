/** The first non-empty line, trimmed ('' when there is none). */
export function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l) ?? ''
  );
}
