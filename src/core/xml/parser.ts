/**
 * Streaming XML parser for XMPP streams (RFC 6120 §4, §11), hardened against hostile input.
 *
 * Tokenizing is done by saxes (a strict, well-formedness checking XML 1.0 parser) without its
 * namespace mode; namespaces are resolved and checked here (parser-namespaces.ts), which
 * measured faster for the same strictness (docs/xml-parsing.md). This layer adds what XMPP
 * needs on top: the stream header, one XmlElement per top-level element, the restricted XML
 * subset (no DTD, comments, PIs or non-predefined entities), and hard resource limits.
 *
 * Memory bound: the bytes of the current top-level element are counted while they are fed and
 * the tokenizer is never handed more than `maxStanzaBytes` of one element (nor of whatever
 * precedes the stream header), so a 100 MB attribute or an endless text node is cut off at the
 * limit with a policy-violation before it is buffered. Whitespace between top-level elements
 * (keepalives) is dropped before the tokenizer sees it and costs nothing.
 *
 * Idle streams: a tokenizer with its handlers is about 2.5 KB, and most streams of a server
 * sit idle between stanzas for minutes. A stream that has read nothing for one to two sweeps
 * (`TOKENIZER_SWEEP_MS`) and stands between top-level elements gives its tokenizer up; the
 * next byte it reads gets a new one, first fed the stream element's open tag so that it is
 * where the old one was (namespaces are resolved here, not by the tokenizer, so nothing else
 * of the old one is needed).
 */
import { TextDecoder } from "node:util";
import { SaxesParser, type SaxesTagPlain, type XMLDecl } from "saxes";
import { XmlElement } from "./element.js";
import { NS_STREAM } from "./namespaces.js";
import {
  NamespaceError,
  type NsScope,
  ROOT_SCOPE,
  resolveElement,
  sharedHeaderScope,
} from "./parser-namespaces.js";
import { charBoundary, skipWhitespace, skipWhitespaceChars } from "./parser-utf8.js";
import { StreamError, type StreamErrorCondition } from "./stream-error.js";

/** What saxes throws for anything but whitespace after a well-formed closing of the root. */
const AFTER_ROOT_ERRORS = new Set([
  "documents may contain only one root.",
  "text data outside of root node.",
]);

/** Content namespaces whose top-level elements are delivered without an xmlns attribute. */
const CONTENT_NAMESPACES = new Set(["jabber:client", "jabber:server", "jabber:component:accept"]);

export interface StreamParserHandlers {
  /** <stream:stream ...> opened: attrs as written, plus xmlns = the stream's default namespace ("" if none) */
  streamStart(attrs: Record<string, string>): void;
  /** a complete top-level child of the stream */
  element(el: XmlElement): void;
  /** </stream:stream> */
  streamEnd(): void;
  /** fatal: a StreamError with the right condition; the parser stops accepting input after this */
  error(err: StreamError): void;
}

export interface StreamParserLimits {
  /** largest top-level element, in bytes of UTF-8 from its '<' to its final '>' */
  maxStanzaBytes: number;
  /** deepest nesting below the stream element (a top-level element is at depth 1) */
  maxDepth: number;
}

interface Frame {
  el: XmlElement;
  ns: string;
  scope: NsScope;
}

type State = "prolog" | "open" | "closed" | "failed" | "ended";

/** String.prototype.isWellFormed (Node 20) is newer than the ES2023 typings in use. */
type WellFormedCheck = string & { isWellFormed(): boolean };

const STREAM_END = Symbol("stream end");

/** Thrown from inside tokenizer callbacks to stop it mid-chunk; never escapes write(). */
const ABORT = Symbol("abort");

/**
 * One decoder for every stream: it is only used without `stream: true` (split characters are
 * carried by the parser itself), so it keeps no state between calls, and a fatal UTF-8 decoder
 * holds a native converter that each of thousands of idle streams would otherwise keep.
 */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** How often streams that read nothing since the last sweep give their tokenizer up. */
export const TOKENIZER_SWEEP_MS = 5_000;

/** Parsers holding a tokenizer that may be put to sleep: open streams only. */
const awake = new Set<StreamParser>();
let sweepTimer: NodeJS.Timeout | undefined;

function watchIdle(parser: StreamParser): void {
  awake.add(parser);
  if (sweepTimer === undefined) {
    sweepTimer = setInterval(sweepIdleTokenizers, TOKENIZER_SWEEP_MS);
    sweepTimer.unref();
  }
}

function unwatchIdle(parser: StreamParser): void {
  awake.delete(parser);
  if (awake.size === 0 && sweepTimer !== undefined) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
}

/**
 * One sweep: streams that read nothing since the previous sweep and stand between top-level
 * elements give their tokenizer up. Returns how many did. Runs on a timer; tests call it.
 */
export function sweepIdleTokenizers(): number {
  let slept = 0;
  for (const parser of awake) if (parser.sleepIfIdle()) slept++;
  return slept;
}

export class StreamParser {
  private readonly handlers: StreamParserHandlers;
  private readonly limits: StreamParserLimits;

  private state: State = "prolog";
  private sax: SaxesParser | undefined;
  private stack: Frame[] = [];
  private streamScope: NsScope = ROOT_SCOPE;
  /** the stream's content namespace when top-level elements in it go without xmlns, else null */
  private contentNs: string | null = null;

  /** bytes handed to the tokenizer since the last boundary (a closed top-level element or stream header) */
  private used = 0;
  /** only whitespace has been fed since the last boundary: more of it can be dropped unseen */
  private idle = false;
  /** tokenizer position (in UTF-16 units) right after the last boundary in the current piece, or -1 */
  private boundaryAt = -1;
  /** UTF-16 units handed to the current tokenizer before the current piece */
  private fedChars = 0;
  /** the incomplete UTF-8 sequence that ended the previous write */
  private carry: Buffer | undefined;
  /** the high surrogate that ended the previous string write */
  private carrySurrogate: string | undefined;
  /** the peer closed its stream and then sent more: everything from now on is ignored */
  private droppingInput = false;
  /** the top-level element (or stream end) completed by the last close tag, not yet delivered */
  private completed: XmlElement | typeof STREAM_END | undefined;
  private writing = false;
  private readonly pending: Buffer[] = [];
  private parsed = 0;
  /** The stream element's name as written (e.g. "stream:stream"): a new tokenizer opens it. */
  private rootName = "";
  /** Something was read since the last sweep. */
  private readSinceSweep = false;
  /** The tokenizer is being fed the stream's open tag again: its open tag is not an element. */
  private priming = false;

  constructor(handlers: StreamParserHandlers, limits: StreamParserLimits) {
    this.handlers = handlers;
    this.limits = limits;
    this.sax = this.newTokenizer();
  }

  /** Total bytes handed to the tokenizer so far (for tests and metrics). */
  get bytesParsed(): number {
    return this.parsed;
  }

  /**
   * True when the input so far ends between top-level elements of an open stream: nothing
   * is partly read. A transport that frames elements itself (WebSocket, RFC 7395: one
   * element per message) checks each message with it.
   */
  get atBoundary(): boolean {
    return (
      this.state === "open" && this.idle && this.carry === undefined && this.carrySurrogate === undefined
    );
  }

  /**
   * Feeds bytes as they arrive (a multibyte character may be split across writes). Never
   * throws: problems, including exceptions from the other handlers, go to handlers.error;
   * only an exception thrown by handlers.error itself reaches the caller.
   */
  write(chunk: Buffer | string): void {
    if (this.sax === undefined) {
      if (!this.sleeping) return;
      this.wake();
    }
    this.readSinceSweep = true;
    let buf: Buffer;
    if (typeof chunk === "string") {
      // Text from the caller: encode it, rejecting lone surrogates (Buffer.from would turn
      // them into U+FFFD); a pair split across two writes is joined first.
      let text = chunk;
      if (this.carrySurrogate !== undefined) {
        text = this.carrySurrogate + text;
        this.carrySurrogate = undefined;
      }
      const last = text.charCodeAt(text.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) {
        this.carrySurrogate = text.slice(-1);
        text = text.slice(0, -1);
      }
      if (!(text as WellFormedCheck).isWellFormed()) {
        this.fail(new StreamError("not-well-formed", "lone surrogate in text"));
        return;
      }
      buf = Buffer.from(text, "utf8");
    } else buf = chunk;
    if (this.writing) {
      // Written from inside a handler: process after the current chunk, in order.
      this.pending.push(buf);
      return;
    }
    this.writing = true;
    try {
      for (let next: Buffer | undefined = buf; next !== undefined && this.sax !== undefined; ) {
        try {
          this.feed(next);
        } catch (err) {
          if (err !== ABORT) {
            if (this.state === "failed") throw err; // thrown by handlers.error itself
            this.fail(new StreamError("internal-server-error", "XML parser failure"));
          }
        }
        next = this.pending.shift();
      }
    } finally {
      this.writing = false;
      this.pending.length = 0;
    }
  }

  /**
   * Stream restart (after STARTTLS or SASL success): expect a new XML declaration and stream
   * header. Called from inside a handler, it also drops the rest of the bytes being parsed:
   * whatever followed the element that caused the restart in the same read belongs to the old
   * stream (this is what defeats plaintext injection after STARTTLS).
   */
  reset(): void {
    if (this.state === "failed" || this.state === "ended") return;
    this.state = "prolog";
    unwatchIdle(this);
    this.droppingInput = false;
    this.stack = [];
    this.completed = undefined;
    this.streamScope = ROOT_SCOPE;
    this.contentNs = null;
    this.used = 0;
    this.idle = false;
    this.boundaryAt = -1;
    this.fedChars = 0;
    this.carry = undefined;
    this.carrySurrogate = undefined;
    this.pending.length = 0;
    this.sax = this.newTokenizer();
  }

  /**
   * Gives the tokenizer up when the stream read nothing since the last call and stands
   * between top-level elements (see the file's comment). Returns whether it did.
   */
  sleepIfIdle(): boolean {
    if (this.readSinceSweep) {
      this.readSinceSweep = false;
      return false;
    }
    // At a boundary nothing is partly read (no open element, no split character).
    if (!this.atBoundary || this.writing) return false;
    this.sax = undefined;
    // Empty at a boundary, but with the room it grew to: a fresh array has none.
    this.stack = [];
    unwatchIdle(this);
    return true;
  }

  /**
   * Whether the tokenizer is given up while the stream is open (the next write makes a new
   * one); an ended or failed stream has none either, for good.
   */
  get sleeping(): boolean {
    return this.sax === undefined && this.state === "open";
  }

  /** A new tokenizer inside the stream element, where the one given up was. */
  private wake(): void {
    const sax = this.newTokenizer();
    const open = `<${this.rootName}>`;
    this.priming = true;
    try {
      sax.write(open);
    } finally {
      this.priming = false;
    }
    this.sax = sax;
    this.fedChars = open.length;
    this.boundaryAt = -1;
    watchIdle(this);
  }

  /** The transport is gone: release everything and ignore further input. */
  end(): void {
    if (this.state !== "failed") this.state = "ended";
    this.release();
  }

  // ---- feeding ----

  private feed(input: Buffer): void {
    if (this.droppingInput) return;
    const sax = this.sax!;
    let buf = input;
    if (this.carry !== undefined) {
      buf = Buffer.concat([this.carry, input]);
      this.carry = undefined;
    }
    const complete = charBoundary(buf, buf.length);
    if (complete < buf.length) {
      this.carry = Buffer.from(buf.subarray(complete));
      buf = buf.subarray(0, complete);
    }
    let off = 0;
    while (off < buf.length) {
      if (this.idle) {
        off = skipWhitespace(buf, off);
        if (off === buf.length) return;
      }
      let end = buf.length;
      const allowance = this.limits.maxStanzaBytes - this.used;
      if (end - off > allowance) {
        end = allowance > 0 ? charBoundary(buf, off + allowance) : off;
        if (end <= off) {
          this.fail(
            new StreamError(
              "policy-violation",
              this.state === "prolog"
                ? `stream header larger than ${this.limits.maxStanzaBytes} bytes`
                : `stanza larger than ${this.limits.maxStanzaBytes} bytes`,
            ),
          );
          return;
        }
      }
      let piece: string;
      try {
        piece = UTF8.decode(off === 0 && end === buf.length ? buf : buf.subarray(off, end));
      } catch {
        this.fail(new StreamError("not-well-formed", "invalid UTF-8"));
        return;
      }
      const pieceStart = this.fedChars;
      this.fedChars += piece.length;
      this.parsed += end - off;
      this.idle = false;
      this.boundaryAt = -1;
      try {
        sax.write(piece);
      } catch (err) {
        if (err !== ABORT && this.sax === sax && this.afterPeerClosing(err)) {
          this.droppingInput = true;
          this.flush(); // the stream end; what followed it is dropped
          return;
        }
        // saxes reports ill-formed input by throwing a plain Error (it has no error handler).
        if (err !== ABORT && this.sax === sax && err instanceof Error && err.constructor === Error)
          this.onTokenizerError(err);
        throw err;
      }
      this.flush();
      if (this.sax !== sax) return; // reset or ended from a handler: drop the rest
      this.account(piece, pieceStart, end - off);
      off = end;
    }
  }

  /**
   * The peer's closing tag has been read (not a mismatched one), and anything after it is
   * dropped. RFC 6120 §4.4 forbids sending it, but a peer may still do so without meaning
   * harm (an `<a/>` answering an `<r/>` that crossed its closing), and its stream ends as it
   * asked rather than with a `not-well-formed` error, as other servers treat it.
   */
  private afterPeerClosing(err: unknown): boolean {
    return this.state === "closed" && err instanceof Error && AFTER_ROOT_ERRORS.has(err.message);
  }

  /** Updates the byte count of the unfinished top-level element after a piece was parsed. */
  private account(piece: string, pieceStart: number, bytes: number): void {
    if (this.boundaryAt < 0) {
      this.used += bytes;
      return;
    }
    // Count from the first non-whitespace character after the last boundary: the next element's '<'.
    const from = skipWhitespaceChars(piece, this.boundaryAt - pieceStart);
    if (from === piece.length) {
      this.used = 0;
      this.idle = true;
    } else if (piece.length === bytes)
      this.used = bytes - from; // all ASCII: one byte per unit
    else this.used = Buffer.byteLength(from === 0 ? piece : piece.slice(from));
  }

  // ---- tokenizer events ----

  /**
   * saxes installs handlers with keyed stores; from the eighth one on, V8 leaves the parser
   * object in a shape that makes tokenizing five times slower (measured, see
   * docs/xml-parsing.md). Hence exactly seven handlers: no error handler (saxes then throws,
   * which is what is wanted anyway) and the XML declaration read from sax.xmlDecl.
   */
  private newTokenizer(): SaxesParser {
    const sax = new SaxesParser({ position: false });
    sax.on("opentag", (tag) => this.onOpen(sax, tag as SaxesTagPlain));
    sax.on("closetag", () => this.onClose(sax));
    sax.on("text", (text) => this.onText(text));
    sax.on("cdata", (text) => this.onText(text));
    sax.on("doctype", () => this.restricted("DTDs are not allowed"));
    sax.on("comment", () => this.restricted("comments are not allowed"));
    sax.on("processinginstruction", () => this.restricted("processing instructions are not allowed"));
    return sax;
  }

  private checkXmlDecl(decl: XMLDecl): void {
    if (decl.version !== undefined && decl.version !== "1.0")
      this.abort("not-well-formed", "only XML 1.0 is supported");
    if (decl.encoding !== undefined && decl.encoding.toLowerCase() !== "utf-8")
      this.abort("unsupported-encoding", "only UTF-8 is supported");
  }

  private onTokenizerError(err: Error): never {
    const reason = err.message;
    // RFC 6120 §11.1: entity references beyond the predefined five, DTDs and their markup
    // declarations (which saxes only sees as "<!" followed by something unexpected), and any
    // PI other than the XML declaration at the very start are restricted XML.
    if (reason.startsWith("undefined entity"))
      this.abort("restricted-xml", "only predefined entities are allowed");
    if (reason.startsWith("inappropriately located doctype"))
      this.abort("restricted-xml", "DTDs are not allowed");
    if (reason.startsWith("incorrect syntax"))
      this.abort("restricted-xml", "markup declarations are not allowed");
    if (reason.startsWith("an XML declaration must be at the start"))
      this.abort("restricted-xml", "processing instructions are not allowed");
    this.abort("not-well-formed", reason);
  }

  private onOpen(sax: SaxesParser, tag: SaxesTagPlain): void {
    if (this.priming) return;
    this.flush();
    if (this.state === "prolog") {
      this.onStreamOpen(sax, tag);
      return;
    }
    const depth = this.stack.length + 1;
    if (depth > this.limits.maxDepth)
      this.abort("policy-violation", `elements nested deeper than ${this.limits.maxDepth}`);
    const parent = this.stack[this.stack.length - 1];
    const r = this.resolve(
      tag,
      parent ? parent.scope : this.streamScope,
      parent ? parent.ns : this.contentNs,
    );
    if (parent === undefined && r.local === "stream" && r.ns === NS_STREAM)
      this.abort("not-well-formed", "stream header inside the stream");
    const el = new XmlElement(r.local, r.attrs);
    if (parent) parent.el.children.push(el);
    this.stack.push({ el, ns: r.ns, scope: r.scope });
  }

  private onStreamOpen(sax: SaxesParser, tag: SaxesTagPlain): void {
    this.checkXmlDecl(sax.xmlDecl);
    const r = this.resolve(tag, ROOT_SCOPE, null, true);
    if (r.local !== "stream" || r.ns !== NS_STREAM)
      this.abort("invalid-namespace", `the stream element must be {${NS_STREAM}}stream`);
    const scope = sharedHeaderScope(r.scope);
    const attrs = r.attrs;
    attrs.xmlns = scope.defaultNs;
    this.streamScope = scope;
    this.contentNs = CONTENT_NAMESPACES.has(scope.defaultNs) ? scope.defaultNs : null;
    this.state = "open";
    // The usual name as a literal: the name as read would keep the chunk it came in alive.
    this.rootName = tag.name === "stream:stream" ? "stream:stream" : tag.name;
    this.boundaryAt = sax.position;
    watchIdle(this);
    this.invoke(() => this.handlers.streamStart(attrs));
  }

  /**
   * A close tag completes a top-level element (or the stream), but delivery waits until the
   * tokenizer has moved past it without complaint: on a mismatched close tag saxes reports the
   * open element closed before it fails, and that element must not reach the server.
   */
  private onClose(sax: SaxesParser): void {
    this.flush();
    const frame = this.stack.pop();
    if (frame === undefined) {
      this.state = "closed";
      this.boundaryAt = sax.position;
      this.completed = STREAM_END;
    } else if (this.stack.length === 0) {
      this.boundaryAt = sax.position;
      this.completed = frame.el;
    }
  }

  /** Delivers what the last close tag completed. */
  private flush(): void {
    const done = this.completed;
    if (done === undefined) return;
    this.completed = undefined;
    this.invoke(done === STREAM_END ? () => this.handlers.streamEnd() : () => this.handlers.element(done));
  }

  /** Runs a handler; an exception from it ends the stream instead of escaping into write(). */
  private invoke(run: () => void): void {
    const sax = this.sax;
    try {
      run();
    } catch (err) {
      this.fail(err instanceof StreamError ? err : new StreamError("internal-server-error"));
      throw ABORT;
    }
    if (this.sax !== sax) throw ABORT; // the handler reset or ended the parser
  }

  private onText(text: string): void {
    this.flush();
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) {
      // Between top-level elements only whitespace (keepalives) may appear.
      if (skipWhitespaceChars(text, 0) !== text.length) {
        if (this.state === "open") this.abort("bad-format", "character data between top-level elements");
        this.abort("not-well-formed", "character data outside the stream element");
      }
      return;
    }
    const children = top.el.children;
    const last = children.length - 1;
    if (last >= 0 && typeof children[last] === "string") children[last] += text;
    else children.push(text);
  }

  private resolve(tag: SaxesTagPlain, scope: NsScope, inheritedNs: string | null, header = false) {
    try {
      return resolveElement(tag.name, tag.attributes, scope, inheritedNs, header);
    } catch (err) {
      if (err instanceof NamespaceError) this.abort("not-well-formed", err.message);
      throw err;
    }
  }

  // ---- outcome ----

  private restricted(text: string): never {
    this.flush();
    this.abort("restricted-xml", text);
  }

  private abort(condition: StreamErrorCondition, text: string): never {
    this.fail(new StreamError(condition, text));
    throw ABORT;
  }

  private fail(err: StreamError): void {
    if (this.state === "failed" || this.state === "ended") return;
    this.state = "failed";
    this.release();
    this.handlers.error(err);
  }

  private release(): void {
    this.sax = undefined;
    unwatchIdle(this);
    this.completed = undefined;
    this.stack = [];
    this.carry = undefined;
    this.carrySurrogate = undefined;
    this.pending.length = 0;
  }
}

export { NS_STREAM as NS_STREAMS } from "./namespaces.js";
