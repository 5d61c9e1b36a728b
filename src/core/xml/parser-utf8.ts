/** Byte-level helpers for feeding UTF-8 to the stream parser in bounded pieces. */

/**
 * The largest n <= end such that buf[0, n) does not end inside a multibyte sequence: a cut
 * there never splits a character. Invalid bytes are left in place for the decoder to reject.
 */
export function charBoundary(buf: Uint8Array, end: number): number {
  // A character is at most 4 bytes: look back over at most 3 continuation bytes for its lead.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = buf[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + len > end ? i : end;
  }
  return end;
}

/** Index of the first byte at or after `from` that is not XML whitespace (space, tab, CR, LF). */
export function skipWhitespace(buf: Uint8Array, from: number): number {
  let i = from;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) break;
    i++;
  }
  return i;
}

/** Index of the first character at or after `from` that is not XML whitespace. */
export function skipWhitespaceChars(s: string, from: number): number {
  let i = from;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}
