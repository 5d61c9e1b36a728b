/** What modules see of a client connection. The c2s layer implements it. */
import type { StreamError } from "./errors.js";
import type { UserAgent } from "./features.js";
import type { Jid } from "./jid.js";
import type { XmlElement } from "./xml/element.js";

export type TransportKind = "tcp" | "tls" | "websocket";

export interface ClientSession {
  /** The stream id, unique per connection. */
  readonly id: string;
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  readonly connectedAt: number;
  /** True once TLS protects the stream (STARTTLS, direct TLS or wss). */
  readonly secure: boolean;
  /** The id of the current stream (it changes at each stream restart); proofs bind to it. */
  readonly streamId: string;
  /** TLS channel-binding data of this connection ("tls-exporter", "tls-server-end-point", "tls-unique"). */
  channelBinding(type: string): Buffer | undefined;
  /** The channel-binding types this connection can provide, best first (empty without TLS). */
  channelBindingTypes(): string[];

  /** What the client said of itself in a SASL2 <user-agent/>, unverified. */
  userAgent?: UserAgent;
  /** Set by SASL success (normalised localpart). */
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

  /** Per-module state, keyed by module name. */
  readonly data: Map<string, unknown>;

  /** Queues a stanza for the client. Never throws; a closed session drops it. */
  send(stanza: XmlElement): void;
  /** Closes the stream, with a stream error when one is given. */
  close(error?: StreamError): void;
  readonly closed: boolean;
}

/** Is the session available for delivery of stanzas addressed to the bare JID (RFC 6121 §8.5.2.1.1)? */
export function isAvailable(s: ClientSession): boolean {
  return s.bound && s.presence !== undefined && !s.closed;
}
