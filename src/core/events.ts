/** The typed event map of the server: every hook a module can register for. */
import type { StreamError } from "./errors.js";
import type { Jid } from "./jid.js";
import type { ClientSession } from "./session.js";
import type { XmlElement } from "./xml/element.js";

export type StanzaKind = "message" | "presence" | "iq";

/** A stanza sent by a local client, before routing. `to` is undefined when the stanza had no 'to'. */
export interface ClientStanzaEvent {
  stanza: XmlElement;
  session: ClientSession;
  from: Jid;
  to: Jid | undefined;
}

/** A stanza addressed to this server, one of its accounts, or one of their resources. */
export interface StanzaEvent {
  stanza: XmlElement;
  from: Jid;
  to: Jid;
  /** The local session the stanza came from, when it came from one. */
  origin?: ClientSession;
}

export interface SessionEvent {
  session: ClientSession;
}

export interface SessionEndedEvent {
  session: ClientSession;
  /** Why the stream ended: a stream error condition, "closed" or "disconnected". */
  reason: string;
}

/** The SASL failure conditions a login may be refused with (RFC 6120 §6.5). */
export type SaslRefusalCondition =
  | "account-disabled"
  | "credentials-expired"
  | "not-authorized"
  | "temporary-auth-failure";

/**
 * A login refused in the SASL exchange itself: a <failure/> with a human text, which
 * mainstream clients show their users (a stream error's text most of them do not show),
 * then, when `streamError` is given, the stream closed with it (its application condition
 * stays machine-readable for clients that read stream errors).
 */
export interface SaslRefusal {
  condition: SaslRefusalCondition;
  text: string;
  /** An application element for the failure; only SASL2 (XEP-0388) carries one. */
  element?: XmlElement;
  /** Closes the stream after the failure; without it the client may try again on the stream. */
  streamError?: StreamError;
}

export interface PreAuthEvent {
  session: ClientSession;
  /** The SASL mechanism the client chose. */
  mechanism: string;
  /** The account named in the initial response, not yet verified (undefined if none could be read). */
  claimedUsername: string | undefined;
  /** Refuses this attempt with a SASL failure before the mechanism starts (the first refusal counts). */
  refuse(refusal: SaslRefusal): void;
}

export interface AuthenticatedEvent {
  session: ClientSession;
  username: string;
  /** Refuses the login with a SASL failure instead of success (the first refusal counts). */
  refuse(refusal: SaslRefusal): void;
}

/**
 * Event names: `pre-<kind>` for stanzas from local clients; `<kind>/host`,
 * `<kind>/bare`, `<kind>/full` for stanzas to local addresses. A handler
 * returning true claims the stanza. Modules may add events of their own by
 * augmenting this interface (TypeScript declaration merging) in their folder.
 */
export interface ServerEvents {
  "pre-message": ClientStanzaEvent;
  "pre-presence": ClientStanzaEvent;
  "pre-iq": ClientStanzaEvent;
  "message/host": StanzaEvent;
  "message/bare": StanzaEvent;
  "message/full": StanzaEvent;
  "presence/host": StanzaEvent;
  "presence/bare": StanzaEvent;
  "presence/full": StanzaEvent;
  "iq/host": StanzaEvent;
  "iq/bare": StanzaEvent;
  "iq/full": StanzaEvent;
  /** A stream was opened (before any negotiation). */
  "c2s/opened": SessionEvent;
  /** The client started SASL; a handler may refuse the attempt (`refuse`) or close the session. */
  "c2s/pre-sasl": PreAuthEvent;
  /**
   * An IQ on a stream that is not authenticated yet (e.g. in-band registration, XEP-0077).
   * The claiming handler answers through `session.send`; unclaimed, the stream is closed.
   */
  "c2s/unauthenticated-iq": { session: ClientSession; stanza: XmlElement };
  /** SASL succeeded; a handler may still refuse the login (`refuse`) or close the session. */
  "c2s/authenticated": AuthenticatedEvent;
  /** A resource was bound: the session can send and receive stanzas. */
  "session/bound": SessionEvent;
  /**
   * A bound session became available: its initial presence with non-negative priority has been
   * processed (fired by the presence module; offline delivery waits for it, XEP-0160).
   */
  "session/available": SessionEvent;
  /**
   * The connection of a bound session was lost (not closed by either side). A handler that
   * returns true keeps the session alive without a stream (it must then end or re-attach it
   * itself: stream management). Synchronous: the answer decides at once.
   */
  "session/stream-lost": SessionEndedEvent;
  /** A bound session ended (after its unavailable presence was handled). */
  "session/ended": SessionEndedEvent;
  "account/created": { username: string };
  "account/deleted": { username: string };
  "server/started": Record<string, never>;
  "server/stopping": Record<string, never>;
}
