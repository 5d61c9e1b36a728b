/**
 * A light XMPP stream scanner for the load generator. It does not build trees: it finds the
 * stream header, the boundaries of each top-level stanza and the stream close, which is all a
 * benchmark client needs (it reads attributes and a little text with string searches).
 * Quoted attribute values may contain '>'; comments, CDATA and processing instructions are skipped.
 */

export interface ScannerSink {
  /** The `<stream:stream …>` open tag. */
  streamOpen(openTag: string): void;
  /** A complete top-level element: its qualified name, its open tag and its whole text. */
  stanza(name: string, openTag: string, text: string): void;
  /** `</stream:stream>`. */
  streamClose(): void;
}

const LT = 0x3c; // <
const GT = 0x3e; // >
const SLASH = 0x2f;
const QUESTION = 0x3f;
const BANG = 0x21;
const DQUOTE = 0x22;
const SQUOTE = 0x27;

export class StreamScanner {
  private buf = "";
  private pos = 0;
  /** 0 outside the stream, 1 between stanzas, ≥ 2 inside a stanza. */
  private depth = 0;
  private stanzaStart = 0;
  private stanzaName = "";
  private stanzaOpenTag = "";

  constructor(private readonly sink: ScannerSink) {}

  /** Forgets the current stream, as after a SASL success when a new stream header follows. */
  restart(): void {
    this.depth = 0;
  }

  push(chunk: string): void {
    // `buf` holds only unconsumed text (trimmed below), so appending is enough.
    this.buf = this.buf.length > 0 ? this.buf + chunk : chunk;
    this.scan();
    // Keep only what is still needed: the open stanza, or the incomplete tag at `pos`.
    const keepFrom = this.depth >= 2 ? this.stanzaStart : this.pos;
    if (keepFrom > 0) {
      this.buf = this.buf.slice(keepFrom);
      this.pos -= keepFrom;
      this.stanzaStart -= keepFrom;
    }
  }

  private scan(): void {
    const buf = this.buf;
    const len = buf.length;
    let pos = this.pos;
    while (pos < len) {
      const lt = buf.indexOf("<", pos);
      if (lt < 0) {
        pos = len;
        break;
      }
      if (lt + 1 >= len) {
        pos = lt;
        break;
      }
      const next = buf.charCodeAt(lt + 1);
      if (next === QUESTION || next === BANG) {
        const end = skipMarkup(buf, lt);
        if (end < 0) {
          pos = lt;
          break;
        }
        pos = end;
        continue;
      }
      const gt = findTagEnd(buf, lt + 1, len);
      if (gt < 0) {
        pos = lt;
        break;
      }
      pos = gt + 1;
      if (next === SLASH) {
        this.depth--;
        if (this.depth === 1) {
          this.sink.stanza(this.stanzaName, this.stanzaOpenTag, buf.slice(this.stanzaStart, gt + 1));
        } else if (this.depth <= 0) {
          this.depth = 0;
          this.sink.streamClose();
        }
        continue;
      }
      const selfClosing = buf.charCodeAt(gt - 1) === SLASH;
      if (this.depth === 0) {
        this.depth = 1;
        this.sink.streamOpen(buf.slice(lt, gt + 1));
      } else if (this.depth === 1) {
        const openTag = buf.slice(lt, gt + 1);
        const name = tagName(openTag);
        if (selfClosing) {
          this.sink.stanza(name, openTag, openTag);
        } else {
          this.depth = 2;
          this.stanzaStart = lt;
          this.stanzaName = name;
          this.stanzaOpenTag = openTag;
        }
      } else if (!selfClosing) {
        this.depth++;
      }
    }
    this.pos = pos;
  }
}

const FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing";

/**
 * One WebSocket message of an RFC 7395 stream: a single complete element, `<open/>` and
 * `<close/>` (framing namespace) standing for the stream header and its end. Tells `sink` what
 * a TCP stream would have; a message of whitespace alone is ignored.
 */
export function scanFrame(text: string, sink: ScannerSink): void {
  const lt = text.indexOf("<");
  if (lt < 0) {
    if (text.trim() === "") return;
    throw new Error(`not an element from server: ${text.slice(0, 40)}`);
  }
  const gt = findTagEnd(text, lt + 1, text.length);
  if (gt < 0) throw new Error(`incomplete element from server: ${text.slice(0, 80)}`);
  const openTag = text.slice(lt, gt + 1);
  const name = tagName(openTag);
  if ((name === "open" || name === "close") && attr(openTag, "xmlns") === FRAMING_NS) {
    if (name === "open") sink.streamOpen(openTag);
    else sink.streamClose();
    return;
  }
  sink.stanza(name, openTag, text.slice(lt).trimEnd());
}

/** Index of the '>' closing the tag whose name starts at `from`, skipping quoted values; -1 if incomplete. */
function findTagEnd(buf: string, from: number, len: number): number {
  for (let i = from; i < len; i++) {
    const c = buf.charCodeAt(i);
    if (c === GT) return i;
    if (c === DQUOTE || c === SQUOTE) {
      const close = buf.indexOf(c === DQUOTE ? '"' : "'", i + 1);
      if (close < 0) return -1;
      i = close;
    } else if (c === LT) {
      throw new Error(`malformed XML from server near: ${buf.slice(Math.max(0, i - 40), i + 40)}`);
    }
  }
  return -1;
}

/** End index (exclusive) of `<?…?>`, `<!--…-->` or `<![CDATA[…]]>` starting at `lt`; -1 if incomplete. */
function skipMarkup(buf: string, lt: number): number {
  if (buf.startsWith("<?", lt)) {
    const end = buf.indexOf("?>", lt + 2);
    return end < 0 ? -1 : end + 2;
  }
  if (buf.startsWith("<!--", lt)) {
    const end = buf.indexOf("-->", lt + 4);
    return end < 0 ? -1 : end + 3;
  }
  if (buf.startsWith("<![CDATA[", lt)) {
    const end = buf.indexOf("]]>", lt + 9);
    return end < 0 ? -1 : end + 3;
  }
  if (buf.length - lt < 9) return -1; // not enough text yet to tell which construct this is
  throw new Error(`unsupported markup from server: ${buf.slice(lt, lt + 40)}`);
}

function tagName(openTag: string): string {
  let end = 1;
  while (end < openTag.length) {
    const c = openTag.charCodeAt(end);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === SLASH || c === GT) break;
    end++;
  }
  return openTag.slice(1, end);
}

/** Value of attribute `name` in an open tag (entities left as they are), or undefined. */
export function attr(openTag: string, name: string): string | undefined {
  let from = 0;
  for (;;) {
    const at = openTag.indexOf(name + "=", from);
    if (at < 0) return undefined;
    const before = openTag.charCodeAt(at - 1);
    from = at + name.length + 1;
    // Must be a whole attribute name (preceded by whitespace), not the tail of another one.
    if (before !== 0x20 && before !== 0x09 && before !== 0x0a && before !== 0x0d) continue;
    const quote = openTag[from];
    if (quote !== '"' && quote !== "'") return undefined;
    const end = openTag.indexOf(quote, from + 1);
    return end < 0 ? undefined : openTag.slice(from + 1, end);
  }
}

/** Text content of the first `<local …>…</local>` child found in `text` (or "" when empty/self-closed). */
export function childText(text: string, local: string): string | undefined {
  const open = text.indexOf("<" + local);
  if (open < 0) return undefined;
  const gt = text.indexOf(">", open);
  if (gt < 0) return undefined;
  if (text.charCodeAt(gt - 1) === SLASH) return "";
  const close = text.indexOf("</", gt);
  return close < 0 ? undefined : text.slice(gt + 1, close);
}
