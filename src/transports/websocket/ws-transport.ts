/**
 * An XMPP stream over a WebSocket connection (RFC 7395). Each message is one complete
 * element: <open/> and <close/> in the framing namespace stand for the stream header and
 * its end, everything else is a stanza or a negotiation element. Messages are parsed by
 * the same streaming parser as TCP input, with the same limits, inside an implicit
 * jabber:client stream; a message that is not exactly one element is a framing error
 * (not-well-formed) and nothing of it reaches the engine. There is no STARTTLS: TLS, when
 * there is any, is the WebSocket connection's (wss).
 */
import type net from "node:net";
import type { WebSocket } from "ws";
import { StreamError } from "../../core/errors.js";
import { TokenBucket } from "../../core/rate-limit.js";
import type {
  StreamOpenAttrs,
  StreamTransport,
  TransportLimits,
  TransportSink,
} from "../../core/stream/transport.js";
import type { XmlElement } from "../../core/xml/element.js";
import { NS_CLIENT, NS_FRAMING, NS_STREAM } from "../../core/xml/namespaces.js";
import { StreamParser } from "../../core/xml/parser.js";
import { tlsChannelBinding, tlsChannelBindingTypes } from "../tls.js";
import { CLOSE_ELEMENT, declareNamespaces, openElement } from "./framing.js";

/** The implicit stream every message is parsed in: its elements default to jabber:client. */
const IMPLICIT_STREAM = `<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' version='1.0'>`;

/** What the endpoint knows of the connection when it hands it over. */
export interface WebSocketConnection {
  ws: WebSocket;
  /** The TCP (or TLS) socket under the WebSocket: idle timeout and channel binding. */
  socket: net.Socket;
  /** The client's address (from X-Forwarded-For behind a trusted proxy). */
  remoteAddress: string;
  /** See StreamTransport.secure; decided by the endpoint (wss, https at a trusted proxy, loopback). */
  secure: boolean;
}

export class WebSocketTransport implements StreamTransport {
  readonly kind = "websocket";
  readonly canStartTls = false;
  readonly secure: boolean;
  readonly remoteAddress: string;
  private readonly ws: WebSocket;
  private readonly socket: net.Socket;
  private sink?: TransportSink;
  private parser?: StreamParser;
  private inbound?: TokenBucket;
  private resumeTimer?: NodeJS.Timeout;
  /** Reading stopped: by the rate limit (until its timer), by the engine (holdInput). */
  private throttled = false;
  private held = false;
  /** The elements of the message being parsed; handed on once the message proved to be one. */
  private readonly pending: XmlElement[] = [];
  private parseError?: StreamError;
  /** No <open/> yet on this stream (at the start, and after a restart). */
  private awaitingOpen = true;
  private failed = false;
  private closedNotified = false;

  constructor(conn: WebSocketConnection) {
    this.ws = conn.ws;
    this.socket = conn.socket;
    this.remoteAddress = conn.remoteAddress;
    this.secure = conn.secure;
  }

  get queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /** Each message is handed to the socket as it is sent (nothing is held for the turn). */
  get backlogBytes(): number {
    return this.ws.bufferedAmount;
  }

  start(sink: TransportSink, limits: TransportLimits): void {
    this.sink = sink;
    this.parser = new StreamParser(
      {
        streamStart: () => undefined,
        element: (el) => this.pending.push(el),
        streamEnd: () => {
          this.parseError ??= new StreamError("not-well-formed", "a stream end tag in a WebSocket message");
        },
        error: (err) => {
          this.parseError ??= err;
        },
      },
      { maxStanzaBytes: limits.maxStanzaBytes, maxDepth: limits.maxDepth },
    );
    this.parser.write(IMPLICIT_STREAM);
    if (limits.bytesPerSecond > 0) {
      this.inbound = new TokenBucket({
        capacity: Math.max(limits.burstBytes, limits.maxStanzaBytes),
        refillPerSecond: limits.bytesPerSecond,
      });
    }
    this.ws.on("message", (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    // Errors (a frame over maxPayload, a broken socket) end in "close"; the engine hears of it there.
    this.ws.on("error", () => undefined);
    this.ws.on("close", () => this.notifyClosed());
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.failed || this.closedNotified) return;
    this.throttle(data.length);
    if (isBinary) {
      this.fail(new StreamError("unsupported-encoding", "XMPP over WebSocket is sent in text messages"));
      return;
    }
    // Whitespace keepalives are not part of RFC 7395 (WebSocket pings are); they are harmless.
    if (isWhitespace(data)) return;
    const parser = this.parser!;
    parser.write(data);
    const elements = this.pending.splice(0);
    if (this.parseError) {
      this.fail(this.parseError);
      return;
    }
    if (elements.length !== 1 || !parser.atBoundary) {
      this.fail(
        new StreamError(
          "not-well-formed",
          elements.length > 1
            ? "a WebSocket message must hold one element, not several (RFC 7395)"
            : "a WebSocket message must hold one complete element (RFC 7395)",
        ),
      );
      return;
    }
    this.deliver(elements[0]!);
  }

  private deliver(el: XmlElement): void {
    const sink = this.sink!;
    const framing = el.attrs.xmlns === NS_FRAMING;
    if (framing && el.name === "open") {
      if (!this.awaitingOpen) {
        this.fail(new StreamError("not-well-formed", "<open/> inside an open stream"));
        return;
      }
      this.awaitingOpen = false;
      const { xmlns: _framing, ...attrs } = el.attrs;
      sink.streamStart({ ...attrs, xmlns: NS_CLIENT });
      return;
    }
    if (this.awaitingOpen) {
      this.fail(
        new StreamError("invalid-namespace", `the stream must be opened with <open xmlns='${NS_FRAMING}'/>`),
      );
      return;
    }
    if (framing && el.name === "close") {
      sink.streamEnd();
      return;
    }
    sink.element(el);
  }

  /** A broken rule in the input: the engine closes the stream with it; nothing more is read. */
  private fail(err: StreamError): void {
    this.failed = true;
    this.parser?.end();
    this.sink!.error(err);
  }

  /** Over the sustained inbound rate: stop reading until the debt is paid (throttle, not disconnect). */
  private throttle(bytes: number): void {
    const debtMs = this.inbound ? this.inbound.consume(bytes) : 0;
    if (debtMs <= 0) return;
    this.ws.pause();
    this.throttled = true;
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      this.throttled = false;
      if (!this.held) this.ws.resume();
    }, debtMs);
    this.resumeTimer.unref();
  }

  holdInput(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    if (held) this.ws.pause();
    else if (!this.throttled) this.ws.resume();
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    clearTimeout(this.resumeTimer);
    this.socket.setTimeout(0);
    this.parser?.end();
    this.sink?.connectionClosed();
  }

  openStream(attrs: StreamOpenAttrs): void {
    this.write(openElement(attrs));
  }

  /** One message per element the engine writes, with the namespace declarations it needs. */
  write(data: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(declareNamespaces(data));
  }

  closeStream(): void {
    this.write(CLOSE_ELEMENT);
  }

  /** RFC 7395 §3.7: after SASL the client sends a new <open/> and no <close/>. */
  restartStream(): void {
    this.awaitingOpen = true;
  }

  startTls(): void {
    throw new Error("STARTTLS does not exist on WebSocket (RFC 7395 §3.9)");
  }

  /** Only where the listener itself serves wss: behind a TLS-terminating proxy there is no channel to bind to. */
  channelBinding(type: string): Buffer | undefined {
    return tlsChannelBinding(this.socket, type);
  }

  channelBindingTypes(): string[] {
    return tlsChannelBindingTypes(this.socket);
  }

  /** Any input counts, WebSocket pings included (RFC 7395 §3.8 keeps the connection alive with them). */
  setIdleTimeout(ms: number, onIdle: () => void): void {
    if (ms > 0) this.socket.setTimeout(ms, onIdle);
    else this.socket.setTimeout(0);
  }

  /** Closes the WebSocket after the queued output; the peer gets two seconds to answer the close. */
  end(): void {
    this.parser?.end();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    const ws = this.ws;
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  destroy(): void {
    this.parser?.end();
    this.ws.terminate();
  }
}

function isWhitespace(data: Buffer): boolean {
  for (const b of data) if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return false;
  return true;
}
