/**
 * The client stream engine (RFC 6120), whatever transport carries it: stream opening,
 * feature negotiation (STARTTLS where the transport can, module-supplied pre-authentication
 * steps such as the licence proof, SASL and SASL2, resource binding), then stanzas handed
 * to the router in arrival order, with the stream's limits and its close. The engine never
 * sees bytes or framing: the transport parses and frames (transport.ts).
 *
 * Each stream serves one session (local-session.ts), created when the stream opens. When the
 * connection is lost under a bound session, `session/stream-lost` lets a module keep the
 * session (stream management); otherwise the session ends with the stream.
 */
import { randomBytes } from "node:crypto";
import { StanzaError, StreamError } from "../errors.js";
import { type Jid, JidError, normalizeDomain } from "../jid.js";
import { isStanza, type Router } from "../router.js";
import { serialize, type XmlElement, x } from "../xml/element.js";
import { NS_BIND, NS_CLIENT, NS_SASL, NS_SASL2, NS_SESSION, NS_TLS } from "../xml/namespaces.js";
import { LocalClientSession, type SessionHost, type SessionStream } from "./local-session.js";
import { SaslNegotiator } from "./sasl.js";
import { Sasl2Negotiator } from "./sasl2.js";
import type { StreamServices } from "./services.js";
import { SERVER_LANGUAGE, type StreamTransport, type TransportSink } from "./transport.js";

type Phase = "pre-tls" | "pre-auth" | "post-auth" | "bound";

let streamCounter = 0;

function newStreamId(): string {
  return randomBytes(9).toString("base64url") + (++streamCounter).toString(36);
}

/** How long a stream the server closed waits for the client's closing before ending the connection. */
const LINGER_MS = 2_000;
/**
 * Elements read and waiting for the handler at which the connection stops being read, until
 * half of them are handled: a handler that waits (a full archive) slows the sender there
 * instead of its input piling up here.
 */
const HOLD_INPUT_AT = 32;
/** How often a bulk sender waiting for the client to read looks at the send buffer again. */
const WRITABLE_POLL_MS = 10;
/** A language tag (BCP 47 shape, as xml:lang takes it); anything else is not copied onto stanzas. */
const LANGUAGE_TAG = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/;

export class ClientStream implements SessionStream, TransportSink {
  /** Unique per connection (the first stream's id). */
  readonly id = newStreamId();
  readonly connectedAt: number;
  /** The session this stream serves; another one after a resumption (adopt). */
  session: LocalClientSession;
  closed = false;

  private phase: Phase;
  private headerSent = false;
  private currentStreamId = this.id;
  /**
   * The stream's language for the client's stanzas without one (RFC 6120 §4.7.4, §8.1.5): the
   * one its header declared, else the server's, which the response header announced.
   */
  private lang = SERVER_LANGUAGE;
  /** Elements waiting while an earlier one is still being handled (keeps per-session order). */
  private queue: XmlElement[] = [];
  private busy = false;
  /** The transport was told to stop reading (holdInput). */
  private inputHeld = false;
  private closing = false;
  private authTimer?: NodeJS.Timeout;
  /** Until authentication succeeds; then released (an idle session should not keep them). */
  private sasl: SaslNegotiator | undefined;
  /** XEP-0388, when the configuration offers it; released with `sasl`. */
  private sasl2: Sasl2Negotiator | undefined;
  private endReason = "disconnected";
  /** The connection went away without a clean close by either side. */
  private lost = true;
  private cleanupDone = false;

  constructor(
    private readonly svc: StreamServices,
    readonly transport: StreamTransport,
    sessionHost: SessionHost,
    private readonly onClosed: (stream: ClientStream) => void,
  ) {
    this.connectedAt = svc.clock.now();
    this.phase = transport.canStartTls ? "pre-tls" : "pre-auth";
    this.session = new LocalClientSession(sessionHost, this);
    const limits = svc.config.limits;
    this.sasl = new SaslNegotiator(svc, this);
    this.sasl2 = svc.config.sasl2 ? new Sasl2Negotiator(svc, this, this.sasl) : undefined;
    this.authTimer = setTimeout(() => {
      if (this.phase !== "bound")
        this.close(new StreamError("connection-timeout", "authentication took too long"));
    }, limits.authTimeoutSeconds * 1000);
    this.authTimer.unref();
    transport.start(this, limits);
  }

  // ---- what the session and the negotiators read ----

  get transportKind(): string {
    return this.transport.kind;
  }
  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }
  get secure(): boolean {
    return this.transport.secure;
  }
  /** The id of the current stream (changes at each restart); pre-auth proofs bind to it. */
  get streamId(): string {
    return this.currentStreamId;
  }
  get bound(): boolean {
    return this.phase === "bound";
  }
  channelBinding(type: string): Buffer | undefined {
    return this.transport.channelBinding(type);
  }
  channelBindingTypes(): string[] {
    return this.transport.channelBindingTypes();
  }

  // ---- output ----

  private write(data: string): void {
    if (this.closed) return;
    this.transport.write(data);
    // What the client had time to read and did not: this turn's own writes leave together.
    if (this.transport.backlogBytes > this.svc.config.limits.maxSendBufferBytes) this.abandon();
  }

  /** A negotiation element (features, SASL, bind result…). */
  send(el: XmlElement): void {
    this.write(serialize(el));
  }

  /**
   * Resolves once at most a quarter of limits.maxSendBufferBytes waits for the client (or the
   * stream closed), so a bulk sender leaves the rest of the buffer for everything else.
   */
  whenWritable(): Promise<void> {
    const enough = this.svc.config.limits.maxSendBufferBytes / 4;
    if (this.closed || this.transport.queuedBytes <= enough) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || this.transport.queuedBytes <= enough) resolve();
        else setTimeout(check, WRITABLE_POLL_MS);
      };
      setTimeout(check, WRITABLE_POLL_MS);
    });
  }

  writeStanza(stanza: XmlElement): void {
    if (this.closed) return;
    if (isStanza(stanza)) this.svc.counters.stanzasOut[stanza.name]++;
    this.write(serialize(stanza));
  }

  /**
   * The client does not read its stream: drop it at once. Nothing more is written (a stream
   * error would only join the queue it does not read), the queued output is discarded with
   * the connection, and the stream ends like a lost connection.
   */
  private abandon(): void {
    if (this.closed) return;
    this.svc.log.info(
      {
        session: this.session.id,
        jid: this.session.jid?.toString(),
        queuedBytes: this.transport.queuedBytes,
      },
      "client does not read its stream: disconnected",
    );
    this.endReason = "resource-constraint";
    this.closed = true;
    this.transport.destroy();
    this.cleanup();
  }

  // ---- stream level (TransportSink) ----

  private openStream(): void {
    this.transport.openStream({
      id: this.currentStreamId,
      from: this.session.domain ?? this.svc.domain,
      xmlns: NS_CLIENT,
      version: "1.0",
    });
    this.headerSent = true;
  }

  streamStart(attrs: Record<string, string>): void {
    if (this.closed) return;
    if (this.headerSent && this.phase !== "bound") {
      // A restart (after TLS or SASL) gets a fresh stream id.
      this.currentStreamId = newStreamId();
    }
    const lang = attrs["xml:lang"];
    if (lang !== undefined && LANGUAGE_TAG.test(lang)) this.lang = lang;
    // The stream's 'to' selects the served domain; it stays the same across restarts.
    const to = servedDomainOf(attrs.to, this.svc.router);
    const host = this.session.domain;
    if (host === undefined && to !== undefined) this.session.domain = to;
    this.openStream();
    if (attrs.xmlns !== undefined && attrs.xmlns !== NS_CLIENT) {
      this.close(new StreamError("invalid-namespace", "this port serves jabber:client streams"));
      return;
    }
    if (to === undefined || (host !== undefined && to !== host)) {
      const served = host ?? this.svc.router.servedDomains().join(", ");
      this.close(new StreamError("host-unknown", `this server serves ${served}`));
      return;
    }
    if (attrs.version === undefined || !/^1\.\d+$/.test(attrs.version)) {
      this.close(new StreamError("unsupported-version", "XMPP 1.0 streams only"));
      return;
    }
    if (this.phase === "bound") {
      this.close(new StreamError("not-authorized", "stream restart after binding"));
      return;
    }
    void this.sendFeatures();
  }

  private async sendFeatures(): Promise<void> {
    const features = x("stream:features");
    const svc = this.svc;
    const allowPlaintext = svc.config.allowPlaintext;
    if (this.phase === "pre-tls") {
      const starttls = features.c("starttls", { xmlns: NS_TLS });
      if (!allowPlaintext) starttls.c("required");
    }
    if (this.phase === "pre-auth" || (this.phase === "pre-tls" && allowPlaintext)) {
      if (this.sasl) features.append(...this.sasl.features());
      if (this.sasl2) features.append(await this.sasl2.feature());
      for (const p of svc.streamFeatures.forStage("pre-auth"))
        features.append(...asArray(await p.offer(this.session)));
    } else if (this.phase === "post-auth") {
      features.c("bind", { xmlns: NS_BIND });
      features.c("session", { xmlns: NS_SESSION }).c("optional");
      for (const p of svc.streamFeatures.forStage("post-auth"))
        features.append(...asArray(await p.offer(this.session)));
    }
    if (this.closed) return;
    this.send(features);
  }

  streamEnd(): void {
    if (this.closed) {
      // The client's answer to our closing: the connection may go now.
      this.lingering?.();
      return;
    }
    this.endReason = "closed";
    this.lost = false;
    this.close();
  }

  error(err: StreamError): void {
    this.close(err);
  }

  /** The transport reports the connection gone. */
  connectionClosed(): void {
    this.cleanup();
  }

  /**
   * Closes the stream: optional stream error, our closing, then the connection. Idempotent.
   * `resumable`: the server sends the client elsewhere (a cluster node draining), and its
   * session ends as if the connection were lost — a module may keep it for resumption.
   */
  close(error?: StreamError, opts?: { resumable?: boolean }): void {
    if (this.closed || this.closing) return;
    // Writes below may find the send buffer full and abandon the stream instead.
    this.closing = true;
    this.lost = opts?.resumable === true;
    if (error) {
      this.endReason = error.condition;
      if (!this.headerSent) this.openStream();
      this.write(serialize(error.toElement()));
      this.svc.log.debug(
        { session: this.session.id, condition: error.condition, text: error.text },
        "stream error",
      );
    }
    if (this.closed) return;
    this.transport.closeStream();
    this.closed = true;
    if (opts?.resumable) {
      // A client sent elsewhere answers with its own closing before it follows (RFC 6120 §4.4):
      // ending the connection at once makes that write fail, and some clients then give up.
      const end = () => {
        clearTimeout(timer);
        this.lingering = undefined;
        this.transport.end();
      };
      const timer = setTimeout(end, LINGER_MS);
      timer.unref();
      this.lingering = end;
    } else this.transport.end();
    this.cleanup();
  }
  /** Ends the connection of a stream closed by the server that waits for the client's closing. */
  private lingering: (() => void) | undefined;

  private cleanup(): void {
    if (this.cleanupDone) return;
    this.cleanupDone = true;
    this.closed = true;
    this.stopAuthTimer();
    this.sasl?.dispose();
    this.queue.length = 0;
    const session = this.session;
    if (session.stream === this) {
      // Only a lost connection may leave a bound session alive (a module keeps it).
      const kept =
        this.lost &&
        session.bound &&
        this.svc.hooks.fire("session/stream-lost", { session, reason: this.endReason }) === true;
      if (!kept) session.end(this.endReason);
    }
    this.onClosed(this);
  }

  // ---- elements ----

  element(el: XmlElement): void {
    if (this.closed) return;
    this.queue.push(el);
    if (!this.busy) this.drain();
    else if (this.queue.length >= HOLD_INPUT_AT && !this.inputHeld && this.transport.holdInput) {
      this.inputHeld = true;
      this.transport.holdInput(true);
    }
  }

  /** Handles queued elements in order; continues asynchronously when a handler is async. */
  private drain(): void {
    this.busy = true;
    while (this.queue.length > 0 && !this.closed) {
      const el = this.queue.shift()!;
      if (this.inputHeld && this.queue.length <= HOLD_INPUT_AT / 2) {
        this.inputHeld = false;
        this.transport.holdInput?.(false);
      }
      let r: void | Promise<void>;
      try {
        r = this.handle(el);
      } catch (err) {
        this.internalError(err);
        continue;
      }
      if (r) {
        r.catch((err) => this.internalError(err)).finally(() => this.drain());
        return;
      }
    }
    // A drained queue keeps the room it grew to (17 slots after one element, about 150 bytes
    // an idle stream would hold for life); a fresh empty array has none.
    if (this.queue.length === 0) this.queue = [];
    this.busy = false;
  }

  private internalError(err: unknown): void {
    if (err instanceof StreamError) {
      this.close(err);
      return;
    }
    this.svc.log.error({ err, session: this.session.id }, "error while handling client input");
    this.close(new StreamError("internal-server-error"));
  }

  private handle(el: XmlElement): void | Promise<void> {
    const svc = this.svc;
    if (this.phase === "bound") {
      if (isStanza(el)) {
        svc.counters.stanzasIn[el.name]++;
        // RFC 6120 §4.7.4: a stanza without xml:lang is in the language of the client's stream.
        if (el.attrs["xml:lang"] === undefined) el.attrs["xml:lang"] = this.lang;
        const session = this.session;
        const passed = svc.filters.run("inbound", session, el);
        if (passed === undefined) return;
        return svc.router.fromClient(session, passed as typeof el);
      }
      const p = svc.streamFeatures.handlerFor("post-auth", el.attrs.xmlns);
      if (p) return p.handle!(this.session, el);
      throw (
        svc.streamFeatures.outOfStageError("post-auth", this.session, el) ??
        new StreamError("unsupported-stanza-type", `<${el.name}/> in ${el.attrs.xmlns ?? NS_CLIENT}`)
      );
    }
    const ns = el.attrs.xmlns;
    if (ns === NS_TLS && el.name === "starttls") return this.startTls();
    if (this.phase === "pre-tls" && !svc.config.allowPlaintext) {
      throw (
        svc.streamFeatures.outOfStageError("pre-tls", this.session, el) ??
        new StreamError("policy-violation", "TLS is required: use STARTTLS first")
      );
    }
    if (this.phase === "pre-auth" || this.phase === "pre-tls") {
      if (ns === NS_SASL && this.sasl) return this.sasl.handle(el);
      if (ns === NS_SASL2 && this.sasl2) return this.sasl2.handle(el);
      const p = svc.streamFeatures.handlerFor("pre-auth", ns);
      if (p) return p.handle!(this.session, el);
      if (isStanza(el) && el.name === "iq") return this.handleUnauthenticatedIq(el);
      throw new StreamError("not-authorized", "authenticate first");
    }
    // post-auth, not yet bound
    if (isStanza(el) && el.name === "iq") return this.handleBindPhaseIq(el);
    const p = svc.streamFeatures.handlerFor("post-auth", ns);
    if (p) return p.handle!(this.session, el);
    throw (
      svc.streamFeatures.outOfStageError("post-auth", this.session, el) ??
      new StreamError("not-authorized", "bind a resource first")
    );
  }

  private startTls(): void {
    if (this.phase !== "pre-tls" || !this.transport.canStartTls) {
      this.send(x("failure", { xmlns: NS_TLS }));
      this.close();
      return;
    }
    this.send(x("proceed", { xmlns: NS_TLS }));
    this.transport.startTls(() => {
      this.phase = "pre-auth";
    });
  }

  /**
   * Called by SASL on success. After RFC 6120 SASL the client restarts the stream; after
   * SASL2 it does not, and the post-authentication features follow at once.
   */
  completeAuthentication(username: string, { restart }: { restart: boolean }): void {
    this.authenticated(username);
    if (restart) this.transport.restartStream();
    else void this.sendFeatures();
  }

  /** SASL succeeded: the session has its account (SASL2 may bind or resume before answering). */
  authenticated(username: string): void {
    this.session.username = username;
    this.session.authenticated = true;
    this.phase = "post-auth";
    // The exchange that called this still holds its negotiator until it has answered.
    this.sasl = undefined;
    this.sasl2 = undefined;
  }

  /** After SASL2 without Bind 2 or resumption: the post-authentication features. */
  offerPostAuthFeatures(): void {
    void this.sendFeatures();
  }

  /**
   * Binds a resource to this stream's authenticated session (RFC 6120 bind IQ, XEP-0386 Bind 2).
   * The caller fires `session/bound` once its answer is written. StanzaError when refused.
   */
  async bindResource(requested: string | undefined): Promise<Jid | undefined> {
    const jid = await this.svc.sessions.bind(this.session, requested);
    if (this.closed) {
      this.svc.sessions.unbind(this.session);
      return undefined;
    }
    this.session.bound = true;
    this.phase = "bound";
    this.stopAuthTimer();
    this.armIdleTimeout();
    return jid;
  }

  /**
   * This stream takes over another session (stream management resumption): the session
   * it opened is dropped unbound, and the resumed one is served from now on.
   */
  adopt(session: LocalClientSession): void {
    const own = this.session;
    this.session = session;
    session.attach(this);
    this.phase = "bound";
    this.stopAuthTimer();
    own.end("resumed elsewhere");
    this.armIdleTimeout();
  }

  /** A cleared timer is still an object (and its callback): an idle session keeps neither. */
  private stopAuthTimer(): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  private armIdleTimeout(): void {
    const idle = this.svc.config.limits.idleTimeoutSeconds;
    // Idle: the connection counts as lost (a kept session may be resumed on another one).
    this.transport.setIdleTimeout(idle * 1000, () => this.drop("connection-timeout"));
  }

  /** The connection is dead: nothing more is written, and the stream ends as a lost one. */
  drop(reason: string): void {
    if (this.closed) return;
    this.endReason = reason;
    this.lost = true;
    this.transport.destroy();
    this.cleanup();
  }

  private async handleUnauthenticatedIq(iq: XmlElement): Promise<void> {
    const claimed = await this.svc.hooks.fireAsync("c2s/unauthenticated-iq", {
      session: this.session,
      stanza: iq,
    });
    if (!claimed) throw new StreamError("not-authorized", "authenticate first");
  }

  private async handleBindPhaseIq(iq: XmlElement): Promise<void> {
    const type = iq.attrs.type;
    const payload = iq.firstElement();
    const reply = (children?: XmlElement) =>
      this.writeStanza(x("iq", { type: "result", id: iq.attrs.id }, children));
    const fail = (err: StanzaError) =>
      this.writeStanza(x("iq", { type: "error", id: iq.attrs.id }, payload, err.toElement()));
    if (type === "set" && payload?.name === "bind" && payload.attrs.xmlns === NS_BIND) {
      let jid: Jid | undefined;
      try {
        if (iq.attrs.id === undefined) throw new StanzaError("bad-request", "IQ without id");
        jid = await this.bindResource(payload.getChildText("resource"));
      } catch (err) {
        if (err instanceof StanzaError) return fail(err);
        throw err;
      }
      if (!jid) return;
      reply(x("bind", { xmlns: NS_BIND }, x("jid", null, jid.toString())));
      await this.svc.hooks.fireAsync("session/bound", { session: this.session });
      return;
    }
    if (type === "set" && payload?.name === "session" && payload.attrs.xmlns === NS_SESSION) {
      reply();
      return;
    }
    throw new StreamError("not-authorized", "bind a resource first");
  }
}

function asArray(v: XmlElement | XmlElement[] | undefined): XmlElement[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** The served domain a stream header's 'to' names, normalised; undefined when it names none. */
function servedDomainOf(to: string | undefined, router: Router): string | undefined {
  if (to === undefined) return undefined;
  let domain: string;
  try {
    domain = normalizeDomain(to);
  } catch (err) {
    if (err instanceof JidError) return undefined;
    throw err;
  }
  return router.isLocalDomain(domain) ? domain : undefined;
}
