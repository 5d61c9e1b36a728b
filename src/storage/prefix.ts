/**
 * The smallest string greater than every string that starts with `prefix`, in code point
 * order (SQLite's BINARY and PostgreSQL's "C" collation on UTF-8), or undefined when no such
 * bound exists (the prefix is empty or only U+10FFFF). `key >= prefix AND key < bound` is then
 * exactly "starts with", as an index range.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (points.length > 0) {
    const last = points.pop()!;
    if (last === 0x10ffff) continue;
    // Surrogate code points cannot appear in a string stored as UTF-8: skip over them.
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
    return String.fromCodePoint(...points, next);
  }
  return undefined;
}
