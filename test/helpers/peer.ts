/**
 * What a test does with a logged-in client, whichever library drives it
 * (@xmpp/client in this process, slixmpp in a child process).
 */
import { Inbox, QUIET_MS, WAIT_MS } from "./inbox.js";
import { bare, type Element, is, NS, newId, xml } from "./stanza.js";

export interface Peer {
  /** For messages: "alice/a1 (@xmpp/client)". */
  readonly label: string;
  /** The full JID the server bound. */
  readonly jid: string;
  readonly bareJid: string;
  /** The SASL mechanism used to log in. */
  readonly mechanism: string;
  /** Every stanza received, in order. */
  readonly stanzas: Inbox<Element>;
  /** Stream error conditions received. */
  readonly streamErrors: Inbox<string>;
  /** The next received stanza (not yet taken) that matches; waits for it. */
  next(match: (el: Element) => boolean, what: string, timeoutMs?: number): Promise<Element>;
  /** Fails if a matching stanza (not yet taken) arrives within `ms`. */
  none(match: (el: Element) => boolean, what: string, ms?: number): Promise<void>;
  /** Sends a stanza as is. */
  send(stanza: Element): Promise<void>;
  /** Sends an IQ (an id is added when missing) and returns the reply, result or error. */
  iq(stanza: Element, timeoutMs?: number): Promise<Element>;
  /**
   * A round trip to the server (an IQ ping): the server handles a session's
   * stanzas in order, so everything sent before has been processed on return.
   */
  sync(): Promise<void>;
  /** Closes the stream cleanly and waits for the connection to end. */
  close(): Promise<void>;
  /** Resolves when the connection has ended (for any reason). */
  readonly ended: Promise<void>;
}

/** Shared plumbing: inboxes, IQ matching by id. */
export abstract class BasePeer implements Peer {
  readonly stanzas: Inbox<Element>;
  readonly streamErrors: Inbox<string>;
  jid = "";
  mechanism = "";
  private endedResolve!: () => void;
  readonly ended = new Promise<void>((r) => {
    this.endedResolve = r;
  });

  constructor(readonly label: string) {
    this.stanzas = new Inbox<Element>(label, (el) => el.toString());
    this.streamErrors = new Inbox<string>(label, (c) => `<stream:error><${c}/></stream:error>`);
  }

  get bareJid(): string {
    return bare(this.jid);
  }

  protected markEnded(reason: string): void {
    this.stanzas.close(reason);
    this.endedResolve();
  }

  abstract send(stanza: Element): Promise<void>;
  abstract close(): Promise<void>;

  async iq(stanza: Element, timeoutMs = WAIT_MS): Promise<Element> {
    stanza.attrs.id ??= newId("iq");
    const id = stanza.attrs.id;
    await this.send(stanza);
    return this.stanzas.next(
      is.iqReply(id),
      `the reply to <iq id='${id}'> ${stanza.toString().slice(0, 200)}`,
      timeoutMs,
    );
  }

  async sync(): Promise<void> {
    const domain = this.bareJid.split("@")[1] || "localhost";
    await this.iq(xml("iq", { type: "get", to: domain }, xml("ping", { xmlns: NS.ping })));
  }

  /** Shorthands for this.stanzas.next / none. */
  next(match: (el: Element) => boolean, what: string, timeoutMs = WAIT_MS): Promise<Element> {
    return this.stanzas.next(match, what, timeoutMs);
  }

  none(match: (el: Element) => boolean, what: string, ms = QUIET_MS): Promise<void> {
    return this.stanzas.none(match, what, ms);
  }
}
