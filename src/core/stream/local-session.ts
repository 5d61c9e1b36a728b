/**
 * A client session held by this process. It is created with the stream that opens it and
 * serves stanzas through whichever stream is attached: when its stream is lost, a module
 * may keep it (stream management hibernates it, taking what is sent meanwhile) and later
 * attach another stream to it (resumption). Otherwise it ends with its stream.
 */
import { randomBytes } from "node:crypto";
import { StreamError } from "../errors.js";
import type { UserAgent } from "../features.js";
import type { Jid } from "../jid.js";
import type { ClientSession } from "../session.js";
import type { XmlElement } from "../xml/element.js";

/** The stream side a session needs: implemented by ClientStream. */
export interface SessionStream {
  readonly id: string;
  readonly transportKind: string;
  readonly remoteAddress: string;
  readonly connectedAt: number;
  readonly secure: boolean;
  readonly streamId: string;
  readonly closed: boolean;
  channelBinding(type: string): Buffer | undefined;
  channelBindingTypes(): string[];
  /** Writes a stanza that already passed the outbound filters. */
  writeStanza(stanza: XmlElement): void;
  /** Resolves once little of what was written waits for the client (see ClientSession.whenWritable). */
  whenWritable(): Promise<void>;
  close(error?: StreamError): void;
  /**
   * The connection is dead though the transport has not noticed (a module found out, e.g. an
   * unanswered XEP-0198 request): it is destroyed and ends like a lost connection, so a
   * module may keep the session (`session/stream-lost`).
   */
  drop(reason: string): void;
}

/** What a session needs from the server. */
export interface SessionHost {
  /** The outbound filter chain: the stanza to write, or undefined when a filter took it. */
  filterOutbound(session: ClientSession, stanza: XmlElement): XmlElement | undefined;
  /** The session ended: unbind it and tell the modules (`session/ended`). */
  sessionEnded(session: LocalClientSession, reason: string): void;
}

let sessionCounter = 0;

export class LocalClientSession implements ClientSession {
  readonly id = randomBytes(6).toString("base64url") + (++sessionCounter).toString(36);
  /** Made on first use: most sessions never send directed presence (an empty set is ~150 bytes). */
  get directedPresence(): Set<string> {
    this.#directedPresence ??= new Set();
    return this.#directedPresence;
  }
  #directedPresence: Set<string> | undefined;
  readonly data = new Map<string | symbol, unknown>();
  userAgent?: UserAgent;
  domain?: string;
  username?: string;
  resource?: string;
  jid?: Jid;
  authenticated = false;
  bound = false;
  presence?: XmlElement;
  priority = 0;
  rosterRequested = false;
  private ended = false;
  private current: SessionStream | undefined;
  /** The connection facts of the last stream, kept while hibernated. */
  private last: SessionStream;
  /** Where stanzas go while no stream is attached (set by whoever keeps the session). */
  private onDetachedSend: ((stanza: XmlElement) => void) | undefined;

  constructor(
    private readonly host: SessionHost,
    stream: SessionStream,
  ) {
    this.current = stream;
    this.last = stream;
  }

  get stream(): SessionStream | undefined {
    return this.current;
  }
  get attached(): boolean {
    return this.current !== undefined;
  }
  get closed(): boolean {
    return this.ended;
  }
  get transport(): string {
    return this.last.transportKind;
  }
  get remoteAddress(): string {
    return this.last.remoteAddress;
  }
  get connectedAt(): number {
    return this.last.connectedAt;
  }
  get secure(): boolean {
    return this.last.secure;
  }
  get streamId(): string {
    return this.last.streamId;
  }
  channelBinding(type: string): Buffer | undefined {
    return this.current?.channelBinding(type);
  }
  channelBindingTypes(): string[] {
    return this.current?.channelBindingTypes() ?? [];
  }

  send(stanza: XmlElement): void {
    if (this.ended) return;
    const out = this.host.filterOutbound(this, stanza);
    if (out === undefined) return;
    const stream = this.current;
    if (stream && !stream.closed) stream.writeStanza(out);
    else this.onDetachedSend?.(out);
  }

  whenWritable(): Promise<void> {
    return this.current && !this.current.closed ? this.current.whenWritable() : Promise.resolve();
  }

  close(error?: StreamError): void {
    if (this.ended) return;
    if (this.current && !this.current.closed) this.current.close(error);
    else this.end(error?.condition ?? "closed");
  }

  /**
   * Keeps the session without its stream; stanzas sent to it meanwhile go to `onSend`.
   * Called by a module that claimed `session/stream-lost`.
   */
  detach(onSend: (stanza: XmlElement) => void): void {
    this.current = undefined;
    this.onDetachedSend = onSend;
  }

  /** Serves the session through another stream (resumption). */
  attach(stream: SessionStream): void {
    this.current = stream;
    this.last = stream;
    this.onDetachedSend = undefined;
  }

  /** Ends the session: it is unbound and `session/ended` fires. Idempotent. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.current = undefined;
    this.onDetachedSend = undefined;
    this.host.sessionEnded(this, reason);
  }
}

/** The server side of every local session: outbound filters, and unbinding when one ends. */
export function sessionHost(deps: {
  filters: { run(direction: "outbound", session: ClientSession, stanza: XmlElement): XmlElement | undefined };
  sessions: { unbind(session: ClientSession): void };
  fireEnded(session: ClientSession, reason: string): void;
}): SessionHost {
  return {
    filterOutbound: (session, stanza) => deps.filters.run("outbound", session, stanza),
    sessionEnded(session, reason) {
      if (!session.bound) return;
      deps.sessions.unbind(session);
      deps.fireEnded(session, reason);
    },
  };
}

/**
 * What stream management needs to do with sessions, for modules: keep a session whose
 * stream was lost, and let a new stream take a kept session over.
 */
export interface SessionControl {
  /** Keeps `session` without a stream; what is sent to it meanwhile goes to `onSend`. */
  hibernate(session: ClientSession, onSend: (stanza: XmlElement) => void): void;
  /**
   * The stream now serving `current` (authenticated, not bound) takes `kept` over: `current`
   * is dropped and `kept` is served by that stream from now on. When `kept` still has a
   * stream of its own (the client came back before its old connection was found dead), that
   * stream is closed with a `conflict` stream error (XEP-0198 §5).
   */
  resume(kept: ClientSession, current: ClientSession): void;
  /** Ends a kept session (its resumption window passed). */
  end(session: ClientSession, reason: string): void;
  /**
   * The session's connection is dead though nothing closed it: it is dropped like a lost
   * connection (`session/stream-lost` fires, so the session may be kept). False when no
   * stream is attached.
   */
  drop(session: ClientSession, reason: string): boolean;
  /**
   * Binds `current` (authenticated, not bound) to `resource` without a bind request: a
   * session its client brings over from another node of the cluster. Resolves with the full
   * JID, or undefined when the stream closed meanwhile; a StanzaError when refused. The
   * caller fires `session/bound`.
   */
  bind(current: ClientSession, resource: string): Promise<Jid | undefined>;
  /**
   * Writes an element to the session's stream past the outbound filters: stream management's
   * own elements, and stanzas sent again after a resumption (they passed the filters once).
   * False when no stream is attached.
   */
  write(session: ClientSession, element: XmlElement): boolean;
}

/** The stream a session is served by, when it is held by this process. */
export interface ResumableStream extends SessionStream {
  adopt(session: LocalClientSession): void;
  bindResource(requested: string | undefined): Promise<Jid | undefined>;
}

export const sessionControl: SessionControl = {
  hibernate(session, onSend) {
    if (!(session instanceof LocalClientSession)) throw new Error("not a session of this process");
    session.detach(onSend);
  },
  resume(kept, current) {
    if (!(kept instanceof LocalClientSession) || !(current instanceof LocalClientSession))
      throw new Error("not a session of this process");
    const stream = current.stream as ResumableStream | undefined;
    if (!stream || stream.closed) throw new Error("the new stream is gone");
    const previous = kept.stream;
    stream.adopt(kept);
    // Detached first, so closing the old stream does not end the session it no longer serves.
    if (previous && previous !== stream && !previous.closed)
      previous.close(new StreamError("conflict", "Replaced by a resumed stream"));
  },
  end(session, reason) {
    if (!(session instanceof LocalClientSession)) throw new Error("not a session of this process");
    session.end(reason);
  },
  drop(session, reason) {
    if (!(session instanceof LocalClientSession)) throw new Error("not a session of this process");
    const stream = session.stream;
    if (!stream || stream.closed) return false;
    stream.drop(reason);
    return true;
  },
  async bind(current, resource) {
    if (!(current instanceof LocalClientSession)) throw new Error("not a session of this process");
    const stream = current.stream as ResumableStream | undefined;
    if (!stream || stream.closed || current.bound) return undefined;
    return stream.bindResource(resource);
  },
  write(session, element) {
    if (!(session instanceof LocalClientSession)) throw new Error("not a session of this process");
    const stream = session.stream;
    if (!stream || stream.closed) return false;
    stream.writeStanza(element);
    return true;
  },
};
