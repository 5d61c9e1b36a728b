/**
 * A client session: what modules see of a client, from the opening of its stream to the
 * end of the session. A session is not its connection: it can lose its stream and keep
 * living (stream management hibernates it) and take over another stream (resumption),
 * so what belongs to the connection (address, transport, TLS) is read from the stream
 * currently attached.
 */
import type { StreamError } from "./errors.js";
import type { UserAgent } from "./features.js";
import type { Jid } from "./jid.js";
import type { TransportKind } from "./stream/transport.js";
import type { XmlElement } from "./xml/element.js";

export type { TransportKind } from "./stream/transport.js";

export interface ClientSession {
  /** Unique per session; stays the same when the session moves to another stream. */
  readonly id: string;
  /** Of the stream attached now (or last attached). */
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  readonly connectedAt: number;
  /** True once TLS protects the stream (STARTTLS, direct TLS or wss). */
  readonly secure: boolean;
  /** The id of the current stream (it changes at each stream restart); proofs bind to it. */
  readonly streamId: string;
  /** TLS channel-binding data of the current connection ("tls-exporter", "tls-server-end-point", "tls-unique"). */
  channelBinding(type: string): Buffer | undefined;
  /** The channel-binding types the current connection advertises, best first (empty without TLS). */
  channelBindingTypes(): string[];

  /** What the client said of itself in a SASL2 <user-agent/>, unverified. */
  userAgent?: UserAgent;
  /**
   * The served domain the stream is for (its 'to': the primary domain or a virtual host);
   * set when the stream opens.
   */
  domain?: string;
  /**
   * Set by SASL success: the account key (accountKey(): the normalised localpart on the
   * primary domain, "local@domain" on a virtual host).
   */
  username?: string;
  /** Set by resource binding; `jid` is then the full JID. */
  resource?: string;
  jid?: Jid;
  readonly authenticated: boolean;
  readonly bound: boolean;

  /** The last available presence the client broadcast; undefined while unavailable. */
  presence?: XmlElement;
  /** Priority of that presence (RFC 6121 §4.7.2.3), 0 when unavailable. */
  priority: number;
  /** The client requested the roster: it is an "interested resource" (RFC 6121 §2.1.6). */
  rosterRequested: boolean;
  /** Full or bare JIDs this session sent directed presence to (they get its unavailable presence). */
  readonly directedPresence: Set<string>;

  /** Per-module state (ModuleContext.sessionState keeps it typed). */
  readonly data: Map<string | symbol, unknown>;

  /**
   * Queues a stanza for the client, through the outbound stanza filters. Never throws; an
   * ended session drops it; a session without a stream (hibernated) hands it to whoever
   * holds it (stream management).
   */
  send(stanza: XmlElement): void;
  /**
   * Resolves once little of what was written waits for the client (at once when that is so
   * already, when the session has no stream, or when it ends). Whoever sends many stanzas
   * in a row (an offline backlog, an archive page) awaits it between them, so a client that
   * reads is never cut off for a full send buffer (limits.maxSendBufferBytes).
   */
  whenWritable(): Promise<void>;
  /** Closes the stream, with a stream error when one is given; the session ends with it. */
  close(error?: StreamError): void;
  /** The session has ended: it takes no more stanzas. */
  readonly closed: boolean;
  /** A stream is attached to the session now (false while hibernated). */
  readonly attached: boolean;
  /** In a cluster: the node holding the session, when it is another one than this. */
  readonly node?: string;
}

/** Is the session available for delivery of stanzas addressed to the bare JID (RFC 6121 §8.5.2.1.1)? */
export function isAvailable(s: ClientSession): boolean {
  return s.bound && s.presence !== undefined && !s.closed;
}
