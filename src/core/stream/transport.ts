/**
 * What the stream engine needs from a connection, whatever carries it: TCP with STARTTLS,
 * direct TLS, WebSocket (RFC 7395), later server-to-server and component links. A
 * transport owns the bytes and their framing — it parses input into stream events
 * (with the limits the engine gives it) and writes the stream's opening and closing in its
 * own form (`<stream:stream>` on TCP, `<open/>` on WebSocket) — so the engine never sees
 * either, and a new transport is a new folder under src/transports.
 */
import type { StreamError } from "../errors.js";
import type { XmlElement } from "../xml/element.js";

/** How a client reaches the server: "tcp", "tls" (direct or after STARTTLS), "websocket", … */
export type TransportKind = string;

/** Parsed input, handed to the engine in order. */
export interface TransportSink {
  /** The peer opened (or restarted) its stream; attrs as written, xmlns = its default namespace. */
  streamStart(attrs: Record<string, string>): void;
  /** One complete top-level element. */
  element(el: XmlElement): void;
  /** The peer closed its stream. */
  streamEnd(): void;
  /** The input broke a rule (ill-formed, too large, restricted XML…): the stream must close with it. */
  error(err: StreamError): void;
  /** The connection is gone (closed by either side or lost); no more events follow. */
  connectionClosed(): void;
}

/** Limits the transport applies to its input before the engine sees it. */
export interface TransportLimits {
  maxStanzaBytes: number;
  maxDepth: number;
  /** Sustained inbound bytes per second (0: no limit); reading pauses above it. */
  bytesPerSecond: number;
  burstBytes: number;
}

/**
 * The language of the server's stream headers (xml:lang, RFC 6120 §4.7.4), and so of a
 * client stream that declares none.
 */
export const SERVER_LANGUAGE = "en";

/** Attributes of the server's stream header (or WebSocket <open/>). */
export interface StreamOpenAttrs {
  id: string;
  from: string;
  /** The content namespace: jabber:client, jabber:server, jabber:component:accept. */
  xmlns: string;
  to?: string;
  /** "1.0" for RFC 6120 streams; absent for XEP-0114 component streams. */
  version?: string;
}

export interface StreamTransport {
  /** "tcp", "tls", "websocket"…; may change when STARTTLS succeeds. */
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  /** TLS protects the bytes (direct TLS, after STARTTLS, wss). */
  readonly secure: boolean;
  /** STARTTLS (RFC 6120 §5) is possible on this connection now. */
  readonly canStartTls: boolean;
  /** Output handed to the transport and not yet taken by the network, in bytes. */
  readonly queuedBytes: number;
  /**
   * The part of `queuedBytes` written before the current turn of the event loop: what the
   * peer has had time to read and has not. A transport that holds one turn's writes to send
   * them together counts them in `queuedBytes` only, so a turn that writes much to a peer that
   * reads (answers to many pipelined requests) is not taken for a peer that stopped reading.
   */
  readonly backlogBytes: number;

  /** Starts reading; every parsed event goes to `sink`. */
  start(sink: TransportSink, limits: TransportLimits): void;
  /** Writes the server's side of the stream opening. */
  openStream(attrs: StreamOpenAttrs): void;
  /** Writes serialized XML (stanzas, negotiation elements). Writes of one event-loop turn may be batched. */
  write(data: string): void;
  /** Writes the server's side of the stream closing. */
  closeStream(): void;
  /** The peer is about to open a new stream on this connection (after TLS or SASL). */
  restartStream(): void;
  /**
   * Upgrades to TLS after the engine wrote <proceed/> (flushed first); `done` runs once the
   * handshake succeeded. Only when `canStartTls`.
   */
  startTls(done: () => void): void;
  /** TLS channel-binding data of this connection for a type, when it has it (RFC 5929, RFC 9266). */
  channelBinding(type: string): Buffer | undefined;
  /** The channel-binding types to advertise (XEP-0440), best first; empty without TLS. */
  channelBindingTypes(): string[];
  /**
   * Stops reading input (true) until told to read again (false), whatever the rate limit
   * says: the engine's handlers are behind (a stanza waits for the storage). What was read
   * already is still handed on.
   */
  holdInput?(held: boolean): void;
  /** Calls `onIdle` after `ms` without input (0: never). */
  setIdleTimeout(ms: number, onIdle: () => void): void;
  /** Ends the connection after the queued output (the peer gets a moment to close its side). */
  end(): void;
  /** Drops the connection at once, discarding queued output. */
  destroy(): void;
}
