/**
 * One inbound server-to-server stream (RFC 6120, jabber:server): the peer opens it to one of
 * our domains, upgrades it with STARTTLS (or came in over direct TLS, XEP-0368), and then
 * authenticates its domain with SASL EXTERNAL when its certificate is valid for that domain,
 * or with Server Dialback (XEP-0220) otherwise; several sender domains may be authenticated on
 * one stream (multiplexing). Every stanza must come from an authenticated domain and go to one
 * of ours. The same stream answers `<db:verify/>` requests for keys this server generated.
 * Elements are handled one at a time, in order.
 */
import { randomBytes } from "node:crypto";
import type net from "node:net";
import type tls from "node:tls";
import type { DomainRateLimits } from "../../core/domain-rates.js";
import type { StanzaErrorCondition } from "../../core/errors.js";
import { StreamError } from "../../core/errors.js";
import { type Jid, tryParseJid } from "../../core/jid.js";
import { isStanza } from "../../core/router.js";
import type { TransportLimits, TransportSink } from "../../core/stream/transport.js";
import { setPreparedTo } from "../../core/written-address.js";
import { escapeAttr, serialize, type XmlElement, x } from "../../core/xml/element.js";
import {
  NS_DIALBACK,
  NS_DIALBACK_FEATURE,
  NS_SASL,
  NS_SERVER,
  NS_STANZAS,
  NS_STREAM,
  NS_TLS,
} from "../../core/xml/namespaces.js";
import type { SocketTransport } from "../../transports/tcp/socket-transport.js";
import type { S2SAuthMethod, S2SRefusal } from "./api.js";

export type DialbackOutcome = "valid" | "invalid" | StanzaErrorCondition;

export interface InboundDeps {
  limits: TransportLimits;
  requireTls: boolean;
  idleTimeoutMs: number;
  /** The served domain `raw` names (normalised), or undefined. */
  servedDomain(raw: string): string | undefined;
  /** Stanzas from peers may be addressed to this domain (served, or a service or component here). */
  acceptsStanzasFor(domain: string): boolean;
  /** Wraps the plain socket for STARTTLS (server side, asking for the peer's certificate). */
  wrapTls(raw: net.Socket): tls.TLSSocket;
  /** Does the peer's certificate authenticate `domain`? */
  certificateAuthenticates(socket: tls.TLSSocket, domain: string): boolean;
  /** The policy's answer for a remote domain: undefined when admitted. */
  authorize(domain: string, localDomain: string, method: S2SAuthMethod): Promise<S2SRefusal | undefined>;
  /** Is `key` the one this server generated for the stream `streamId` from `originating` to `receiving`? */
  isOwnKey(receiving: string, originating: string, streamId: string, key: string): boolean;
  /** Asks `remoteDomain`'s authoritative server whether it issued `key` for this stream. */
  verifyDialback(
    localDomain: string,
    remoteDomain: string,
    streamId: string,
    key: string,
  ): Promise<DialbackOutcome>;
  /** A remote domain authenticated on this stream. */
  authenticated(stream: InboundStream, domain: string, method: S2SAuthMethod): void;
  /** Each remote domain's allowance of stanzas and bytes, shared by all its streams. */
  rates: DomainRateLimits;
  stanza(stream: InboundStream, stanza: XmlElement, from: Jid, to: Jid): void | Promise<void>;
  /** A stanza claimed a sender domain this stream did not authenticate. */
  spoofed(stream: InboundStream, claimed: string): void;
  closed(stream: InboundStream): void;
  log: {
    debug(obj: object, msg: string): void;
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
}

export class InboundStream implements TransportSink {
  id = randomBytes(12).toString("hex");
  readonly connectedAt = Date.now();
  /** Our domain the peer opened the stream to. */
  localDomain: string | undefined;
  /** The domain the peer names in its header's 'from'. */
  declaredFrom: string | undefined;
  /** Authenticated sender domains → how. */
  readonly domains = new Map<string, { method: S2SAuthMethod; since: number }>();
  certificateVerified = false;
  stanzasIn = 0;
  closed = false;
  closeReason = "disconnected";
  private headerSent = false;
  private tlsSocket: tls.TLSSocket | undefined;
  private readonly queue: XmlElement[] = [];
  private busy = false;
  private cleanedUp = false;

  constructor(
    readonly transport: SocketTransport,
    private readonly deps: InboundDeps,
    directTls: boolean,
  ) {
    if (directTls) this.tlsSocket = transport.currentSocket as tls.TLSSocket;
    transport.start(this, deps.limits);
    transport.setIdleTimeout(deps.idleTimeoutMs, () => this.close(new StreamError("connection-timeout")));
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  streamStart(attrs: Record<string, string>): void {
    if (this.closed) return;
    if (this.headerSent) this.id = randomBytes(12).toString("hex");
    const local = attrs.to === undefined ? undefined : this.deps.servedDomain(attrs.to);
    this.localDomain = local ?? this.localDomain;
    this.declaredFrom = attrs.from?.toLowerCase();
    let header =
      `<?xml version='1.0'?><stream:stream xmlns='${NS_SERVER}' xmlns:stream='${NS_STREAM}'` +
      ` xmlns:db='${NS_DIALBACK}' id='${this.id}' from='${escapeAttr(local ?? attrs.to ?? "invalid")}'`;
    if (this.declaredFrom !== undefined) header += ` to='${escapeAttr(this.declaredFrom)}'`;
    this.transport.write(`${header} version='1.0' xml:lang='en'>`);
    this.headerSent = true;
    if (attrs.xmlns !== NS_SERVER) {
      this.close(new StreamError("invalid-namespace", "this port serves jabber:server streams"));
      return;
    }
    if (local === undefined) {
      this.close(new StreamError("host-unknown", `${attrs.to ?? "(none)"} is not served here`));
      return;
    }
    if (attrs.version === undefined || !/^1\.\d+$/.test(attrs.version)) {
      // Streams without version 1.0 cannot negotiate TLS (RFC 6120 §4.7.5).
      this.close(new StreamError("unsupported-version", "XMPP 1.0 streams with TLS only"));
      return;
    }
    this.sendFeatures();
  }

  private sendFeatures(): void {
    const features = x("stream:features");
    if (!this.secure) {
      const starttls = features.c("starttls", { xmlns: NS_TLS });
      if (this.deps.requireTls) starttls.c("required");
    }
    if (this.secure || !this.deps.requireTls) {
      if (this.domains.size === 0) {
        const from = this.declaredFrom;
        this.certificateVerified =
          this.tlsSocket !== undefined &&
          from !== undefined &&
          this.deps.certificateAuthenticates(this.tlsSocket, from);
        if (this.certificateVerified)
          features.c("mechanisms", { xmlns: NS_SASL }).c("mechanism").t("EXTERNAL");
      }
      features.c("dialback", { xmlns: NS_DIALBACK_FEATURE }).c("errors");
    }
    this.send(features);
  }

  private send(el: XmlElement): void {
    if (!this.closed) this.transport.write(serialize(el));
  }

  element(el: XmlElement): void {
    if (this.closed) return;
    this.queue.push(el);
    if (!this.busy) void this.drain();
  }

  private async drain(): Promise<void> {
    this.busy = true;
    while (this.queue.length > 0 && !this.closed) {
      const el = this.queue.shift()!;
      try {
        const r = this.handle(el);
        if (r) await r;
      } catch (err) {
        if (err instanceof StreamError) this.close(err);
        else {
          this.deps.log.warn({ err, from: this.declaredFrom }, "error while handling server-to-server input");
          this.close(new StreamError("internal-server-error"));
        }
      }
    }
    this.busy = false;
  }

  private handle(el: XmlElement): void | Promise<void> {
    if (isStanza(el)) return this.handleStanza(el);
    const ns = el.attrs.xmlns;
    if (ns === NS_TLS && el.name === "starttls") return this.startTls();
    if (!this.secure && this.deps.requireTls)
      throw new StreamError("policy-violation", "TLS is required before anything else");
    if (ns === NS_DIALBACK && el.name === "verify") return this.answerVerify(el);
    if (ns === NS_DIALBACK && el.name === "result") return this.dialback(el);
    if (ns === NS_SASL && el.name === "auth") return this.saslExternal(el);
    throw new StreamError("unsupported-stanza-type", `<${el.name}/> on a server-to-server stream`);
  }

  private startTls(): void {
    if (this.secure) throw new StreamError("policy-violation", "TLS is already in place");
    this.send(x("proceed", { xmlns: NS_TLS }));
    this.transport.upgradeTls(
      (raw) => this.deps.wrapTls(raw),
      "secure",
      (socket) => {
        this.tlsSocket = socket;
      },
    );
  }

  private async saslExternal(el: XmlElement): Promise<void> {
    const failure = (condition: string) => this.send(x("failure", { xmlns: NS_SASL }, x(condition)));
    const from = this.declaredFrom;
    if (
      el.attrs.mechanism !== "EXTERNAL" ||
      !this.certificateVerified ||
      from === undefined ||
      this.domains.size > 0
    ) {
      failure("invalid-mechanism");
      return;
    }
    const text = el.text().trim();
    const authzid =
      text === "" || text === "=" ? from : Buffer.from(text, "base64").toString("utf8").toLowerCase();
    if (authzid !== from) {
      failure("invalid-authzid");
      return;
    }
    const refusal = await this.deps.authorize(from, this.localDomain!, "sasl-external");
    if (this.closed) return;
    if (refusal) throw policyError(refusal);
    this.send(x("success", { xmlns: NS_SASL }));
    this.transport.restartStream();
    this.admit(from, "sasl-external");
  }

  private admit(domain: string, method: S2SAuthMethod): void {
    // The bytes of a stream count against the first domain it authenticated (its own; the
    // others a peer multiplexes on it are usually its subdomains).
    if (this.domains.size === 0) this.transport.meterInput((n) => this.deps.rates.bytes(domain, n));
    this.domains.set(domain, { method, since: Date.now() });
    this.deps.authenticated(this, domain, method);
  }

  /** A dialback request (XEP-0220 step 3): the peer claims `from` for stanzas to `to`. */
  private async dialback(el: XmlElement): Promise<void> {
    const from = el.attrs.from?.toLowerCase();
    const to = el.attrs.to?.toLowerCase();
    const key = el.text().trim();
    if (el.attrs.type !== undefined || !from || !to || key === "") {
      throw new StreamError("bad-format", "a dialback request names 'from' and 'to' and carries a key");
    }
    const answer = (attrs: Record<string, string>, error?: StanzaErrorCondition) =>
      this.send(
        x(
          "db:result",
          { from: to, to: from, ...attrs },
          error && x("error", { type: "cancel" }, x(error, { xmlns: NS_STANZAS })),
        ),
      );
    const local = this.deps.servedDomain(to);
    if (local === undefined) {
      answer({ type: "error" }, "item-not-found");
      return;
    }
    if (this.domains.has(from)) {
      answer({ type: "valid" });
      return;
    }
    const refusal = await this.deps.authorize(from, local, "dialback");
    if (this.closed) return;
    if (refusal) throw policyError(refusal);
    const outcome = await this.deps.verifyDialback(local, from, this.id, key);
    if (this.closed) return;
    if (outcome === "valid") {
      answer({ type: "valid" });
      this.admit(from, "dialback");
    } else if (outcome === "invalid") {
      this.deps.log.warn(
        { from, address: this.remoteAddress },
        "dialback key refused by the authoritative server",
      );
      answer({ type: "invalid" });
      if (this.domains.size === 0) this.close();
    } else {
      answer({ type: "error" }, outcome);
    }
  }

  /** We are the authoritative server (XEP-0220 step 4): did we generate this key? */
  private answerVerify(el: XmlElement): void {
    const receiving = el.attrs.from?.toLowerCase();
    const originating = el.attrs.to?.toLowerCase();
    const id = el.attrs.id;
    if (!receiving || !originating || id === undefined) {
      throw new StreamError("bad-format", "a verification names 'from', 'to' and 'id'");
    }
    const reply: Record<string, string> = { from: originating, to: receiving, id };
    if (this.deps.servedDomain(originating) === undefined) {
      this.send(
        x(
          "db:verify",
          { ...reply, type: "error" },
          x("error", { type: "cancel" }, x("item-not-found", { xmlns: NS_STANZAS })),
        ),
      );
      return;
    }
    const valid = this.deps.isOwnKey(receiving, originating, id, el.text().trim());
    this.send(x("db:verify", { ...reply, type: valid ? "valid" : "invalid" }));
  }

  private handleStanza(stanza: XmlElement): void | Promise<void> {
    const from = stanza.attrs.from === undefined ? undefined : tryParseJid(stanza.attrs.from);
    if (!from || !this.domains.has(from.domain)) {
      const claimed = from?.domain ?? stanza.attrs.from ?? "(none)";
      this.deps.spoofed(this, claimed);
      throw new StreamError("invalid-from", `${claimed} is not authenticated on this stream`);
    }
    const to = stanza.attrs.to === undefined ? undefined : tryParseJid(stanza.attrs.to);
    if (!to) throw new StreamError("improper-addressing", "a stanza from a server names a valid 'to'");
    if (!this.deps.acceptsStanzasFor(to.domain)) {
      throw new StreamError("host-unknown", `${to.domain} is not served here`);
    }
    this.stanzasIn++;
    stanza.attrs.from = from.toString();
    setPreparedTo(stanza, to);
    const wait = this.deps.rates.admit(from.domain, this.transport);
    if (!wait) return this.deps.stanza(this, stanza, from, to);
    return wait.then(() => (this.closed ? undefined : this.deps.stanza(this, stanza, from, to)));
  }

  streamEnd(): void {
    this.closeReason = "closed";
    this.close();
  }

  error(err: StreamError): void {
    this.close(err);
  }

  connectionClosed(): void {
    this.cleanup();
  }

  close(error?: StreamError): void {
    if (this.closed) return;
    if (error) {
      this.closeReason = error.condition;
      if (!this.headerSent) {
        this.transport.write(
          `<?xml version='1.0'?><stream:stream xmlns='${NS_SERVER}' xmlns:stream='${NS_STREAM}' id='${this.id}' version='1.0'>`,
        );
        this.headerSent = true;
      }
      this.transport.write(serialize(error.toElement()));
    }
    this.transport.closeStream();
    this.closed = true;
    this.transport.end();
    this.cleanup();
  }

  private cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    this.closed = true;
    this.queue.length = 0;
    this.deps.closed(this);
  }
}

export function policyError(refusal: S2SRefusal): StreamError {
  return new StreamError("policy-violation", refusal.text, refusal.condition);
}
