/**
 * An XMPP stream over a TCP socket (RFC 6120): plain with STARTTLS, or direct TLS
 * (XEP-0368). Input is parsed by the streaming parser with the engine's limits and an
 * inbound rate limit; output is coalesced per event-loop turn.
 */
import type net from "node:net";
import tls from "node:tls";
import { TokenBucket } from "../../core/rate-limit.js";
import {
  SERVER_LANGUAGE,
  type StreamOpenAttrs,
  type StreamTransport,
  type TransportLimits,
  type TransportSink,
} from "../../core/stream/transport.js";
import { escapeAttr } from "../../core/xml/element.js";
import { NS_STREAM } from "../../core/xml/namespaces.js";
import { StreamParser } from "../../core/xml/parser.js";
import { type IdleWatched, unwatchIdle, watchIdle } from "../idle-sweep.js";
import { tlsChannelBinding, tlsChannelBindingTypes } from "../tls.js";

/** What the socket transport needs of the server's TLS setup. */
export interface SocketTlsMaterial {
  context: tls.SecureContext;
  /** Chooses the certificate of the served domain the client names (SNI); else `context`'s is served. */
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
}

export class SocketTransport implements StreamTransport, IdleWatched {
  kind: string;
  secure: boolean;
  readonly remoteAddress: string;
  private socket: net.Socket;
  private sink?: TransportSink;
  private parser?: StreamParser;
  private inbound?: TokenBucket;
  private resumeTimer?: NodeJS.Timeout;
  /** The engine asked to stop reading (holdInput). */
  private held = false;
  private corked = false;
  /** While corked: what was still unsent when this turn's writes began (backlogBytes). */
  private unsentBeforeCork = 0;
  private closedNotified = false;
  /**
   * TLS output goes out in pieces that fit Node's first TLS output buffer, one piece per
   * completed write, until the stream first has more than PACED_LIMIT_BYTES to send or
   * waiting; from then on it writes as a plain socket does. Node's ring between OpenSSL and the socket
   * adds a 16 KiB buffer for the first burst of ciphertext that does not fit its first 1 KiB
   * and keeps it for the connection's life: the pages written in it stayed resident in every
   * idle TLS session whose login's stream features (1.3 KB) left in one write
   * (docs/benchmarks.md, "The largest write stays").
   */
  private paced: boolean;
  private pacedText = "";
  private pacedRest: Buffer | undefined = undefined;
  private pieceInFlight = false;
  private pacedFlushScheduled = false;
  // The idle timeout (setIdleTimeout), kept for the shared sweep (idle-sweep.ts).
  idleActive = false;
  idleSince = 0;
  idleLimitMs = 0;
  onIdle: () => void = noop;

  constructor(
    socket: net.Socket,
    private readonly tlsMaterial: SocketTlsMaterial | undefined,
    directTls: boolean,
  ) {
    this.socket = socket;
    this.secure = directTls;
    this.paced = directTls;
    this.kind = directTls ? "tls" : "tcp";
    this.remoteAddress = socket.remoteAddress ?? "unknown";
  }

  get canStartTls(): boolean {
    return !this.secure && this.tlsMaterial !== undefined;
  }

  get queuedBytes(): number {
    return this.socket.writableLength + (this.pacedRest?.length ?? 0) + Buffer.byteLength(this.pacedText);
  }

  get backlogBytes(): number {
    // Paced output waiting for its turn was written in an earlier turn, or it is this turn's.
    if (this.paced) return this.socket.writableLength + (this.pacedRest?.length ?? 0);
    return this.corked ? this.unsentBeforeCork : this.socket.writableLength;
  }

  start(sink: TransportSink, limits: TransportLimits): void {
    this.sink = sink;
    // The sink is the parser's handler object and the limits its limits, as they are: an
    // idle stream holds no wrappers of its own for them (docs/benchmarks.md, "Idle streams").
    this.parser = new StreamParser(sink, limits);
    if (limits.bytesPerSecond > 0) {
      this.inbound = new TokenBucket({
        capacity: Math.max(limits.burstBytes, limits.maxStanzaBytes),
        refillPerSecond: limits.bytesPerSecond,
      });
    }
    this.attach(this.socket);
  }

  private attach(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // Errors end in "close"; the engine hears of it there.
    socket.on("error", () => undefined);
    // A peer that ends its side of the connection without </stream:stream> did not close
    // its stream: the connection is lost (XEP-0198 §6 keeps such a session for resumption).
    // Node ends our side too, and "close" follows.
    socket.on("close", () => this.notifyClosed());
  }

  private onData(chunk: Buffer): void {
    this.idleActive = true;
    const debtMs = Math.max(
      this.inbound ? this.inbound.consume(chunk.length) : 0,
      this.inputMeter ? this.inputMeter(chunk.length) : 0,
    );
    if (debtMs > 0) this.pauseInput(debtMs);
    this.parser!.write(chunk);
  }

  /** A limit shared beyond this connection (a remote domain's): `meter` charges each chunk read. */
  private inputMeter: ((bytes: number) => number) | undefined;
  meterInput(meter: ((bytes: number) => number) | undefined): void {
    this.inputMeter = meter;
  }

  /**
   * Over a sustained rate: stops reading for `ms` (throttle, not disconnect); what was read
   * is still handled. A later, longer pause extends it.
   */
  pauseInput(ms: number): void {
    if (ms <= 0 || this.closedNotified) return;
    const until = Date.now() + ms;
    if (this.pausedUntil >= until) return;
    this.pausedUntil = until;
    this.socket.pause();
    clearTimeout(this.resumeTimer);
    const socket = this.socket;
    this.resumeTimer = setTimeout(() => {
      this.pausedUntil = 0;
      if (!socket.destroyed && !this.held) socket.resume();
    }, ms);
    this.resumeTimer.unref();
  }
  private pausedUntil = 0;

  holdInput(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    if (held) this.socket.pause();
    else if (this.pausedUntil === 0 && !this.socket.destroyed) this.socket.resume();
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    clearTimeout(this.resumeTimer);
    this.stopIdleWatch();
    this.parser?.end();
    this.sink?.connectionClosed();
  }

  openStream(attrs: StreamOpenAttrs): void {
    let header = `<?xml version='1.0'?><stream:stream xmlns='${attrs.xmlns}' xmlns:stream='${NS_STREAM}'`;
    header += ` id='${escapeAttr(attrs.id)}' from='${escapeAttr(attrs.from)}'`;
    if (attrs.to !== undefined) header += ` to='${escapeAttr(attrs.to)}'`;
    if (attrs.version !== undefined) header += ` version='${attrs.version}'`;
    header += ` xml:lang='${SERVER_LANGUAGE}'>`;
    this.write(header);
  }

  /**
   * Writes raw text, coalescing into one syscall the writes made while the event loop
   * handles this round of input — including those made after awaiting storage, which a
   * flush on process.nextTick would split (a pipelined licence proof's answer and the
   * SASL challenge after it left in two writes: measured, one write costs a plaintext
   * login about 3 % of its CPU).
   */
  write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    this.idleActive = true;
    if (this.paced) {
      this.writePaced(data);
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.unsentBeforeCork = socket.writableLength;
      socket.cork();
      setImmediate(() => {
        // After STARTTLS the flag belongs to the TLS socket (startTls flushed this one).
        if (this.socket === socket) this.corked = false;
        if (!socket.destroyed) socket.uncork();
      });
    }
    socket.write(data);
  }

  private writePaced(data: string): void {
    this.pacedText += data;
    if (this.pacedText.length + (this.pacedRest?.length ?? 0) > PACED_LIMIT_BYTES) {
      // A burst, or a client that stopped reading while a piece waits: the socket's own buffer
      // takes it, where the send-buffer limit sees it (backlogBytes).
      this.stopPacing();
      return;
    }
    if (this.pieceInFlight || this.pacedFlushScheduled) return;
    // Like the cork above: what this round of input writes leaves together.
    this.pacedFlushScheduled = true;
    setImmediate(() => {
      this.pacedFlushScheduled = false;
      this.flushPaced();
    });
  }

  /** Writes the next piece of paced output; runs again when that piece has been written. */
  private flushPaced(): void {
    const socket = this.socket;
    if (!this.paced || socket.destroyed) return;
    let out = this.pacedRest;
    if (this.pacedText !== "") {
      const text = Buffer.from(this.pacedText);
      out = out ? Buffer.concat([out, text]) : text;
      this.pacedText = "";
    }
    this.pacedRest = undefined;
    if (out === undefined) return;
    if (out.length > PACED_LIMIT_BYTES) {
      // A burst (the length check in writePaced counts characters, not bytes).
      this.pacedRest = out;
      this.stopPacing();
      return;
    }
    let cut = out.length;
    if (cut > PIECE_BYTES) {
      cut = PIECE_BYTES;
      // Never inside a UTF-8 sequence: a client may decode each record on its own.
      while ((out[cut]! & 0xc0) === 0x80) cut--;
      this.pacedRest = out.subarray(cut);
    }
    this.pieceInFlight = true;
    socket.write(cut === out.length ? out : out.subarray(0, cut), () => {
      this.pieceInFlight = false;
      this.flushPaced();
    });
  }

  /** Hands all paced output to the socket at once and stops pacing for the stream's life. */
  private stopPacing(): void {
    if (!this.paced) return;
    this.paced = false;
    const socket = this.socket;
    if (this.pacedRest) socket.write(this.pacedRest);
    if (this.pacedText !== "") socket.write(this.pacedText);
    this.pacedRest = undefined;
    this.pacedText = "";
  }

  closeStream(): void {
    this.write("</stream:stream>");
  }

  restartStream(): void {
    this.parser?.reset();
  }

  startTls(done: () => void): void {
    const material = this.tlsMaterial;
    if (!material) throw new Error("STARTTLS without TLS material");
    this.upgradeTls(
      (raw) =>
        new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: material.context,
          ...(material.SNICallback ? { SNICallback: material.SNICallback } : {}),
        }),
      "secure",
      () => done(),
    );
  }

  /**
   * Upgrades the connection to TLS with a socket the caller builds (server-to-server streams: the
   * client side of the handshake, or a server side that asks for the peer's certificate); `done`
   * runs once the handshake succeeded ("secure" on a server socket, "secureConnect" on a client).
   */
  upgradeTls(
    wrap: (raw: net.Socket) => tls.TLSSocket,
    readyEvent: "secure" | "secureConnect",
    done: (socket: tls.TLSSocket) => void,
  ): void {
    const raw = this.socket;
    // <proceed/> must leave in the clear before the TLS layer takes the socket over.
    if (this.corked) {
      this.corked = false;
      raw.uncork();
    }
    raw.removeAllListeners("data");
    raw.removeAllListeners("end");
    raw.removeAllListeners("close");
    const secure = wrap(raw);
    this.socket = secure;
    this.paced = true;
    this.parser?.reset();
    secure.once(readyEvent, () => {
      this.secure = true;
      this.kind = "tls";
      done(secure);
    });
    this.attach(secure);
  }

  /** The socket the stream runs on now (a TLSSocket on direct TLS and after an upgrade). */
  get currentSocket(): net.Socket {
    return this.socket;
  }

  channelBinding(type: string): Buffer | undefined {
    return this.tlsMaterial ? tlsChannelBinding(this.socket, type) : undefined;
  }

  channelBindingTypes(): string[] {
    return this.tlsMaterial ? tlsChannelBindingTypes(this.socket) : [];
  }

  /** Traffic either way, read or written, counts as activity (as Node's socket timeout counts it). */
  setIdleTimeout(ms: number, onIdle: () => void): void {
    if (ms > 0 && !this.closedNotified) {
      this.idleLimitMs = ms;
      this.onIdle = onIdle;
      watchIdle(this);
    } else this.stopIdleWatch();
  }

  private stopIdleWatch(): void {
    unwatchIdle(this);
    this.onIdle = noop;
  }

  end(): void {
    const socket = this.socket;
    this.stopPacing();
    this.parser?.end();
    socket.end();
    // Do not wait forever for the peer's closing handshake.
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.parser?.end();
    this.socket.destroy();
  }
}

function noop(): void {}

/**
 * A piece of paced TLS output: its record (22 bytes more under TLS 1.3) and the session
 * tickets OpenSSL may send with the first one fit in the ring's first 1 KiB buffer. Measured
 * with bench/tls-floor.ts: a first write of 800 bytes fits, one of 850 does not.
 */
const PIECE_BYTES = 768;
/** More than this at once (a flood, a large roster or archive page) ends pacing for the stream. */
const PACED_LIMIT_BYTES = 8192;
