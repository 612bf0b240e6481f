// Plain-text tables for the terminal: columns padded to their widest cell, two spaces apart.

/** One line per row (the first row is the header), without trailing spaces. */
export function tableLines(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}
