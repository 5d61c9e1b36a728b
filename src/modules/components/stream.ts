/**
 * One component connection (XEP-0114, jabber:component:accept) over a stream transport:
 * the component opens a stream to its domain, proves the shared secret with
 * <handshake>hex(SHA-1(stream id + secret))</handshake>, and from then on exchanges
 * stanzas for its domain. Elements are handled one at a time, in order.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { DomainRateLimits } from "../../core/domain-rates.js";
import { StreamError } from "../../core/errors.js";
import { isStanza } from "../../core/router.js";
import type { TransportLimits, TransportSink } from "../../core/stream/transport.js";
import { serialize, type XmlElement, x } from "../../core/xml/element.js";
import { NS_COMPONENT } from "../../core/xml/namespaces.js";
import type { SocketTransport } from "../../transports/tcp/socket-transport.js";

export interface ComponentStreamDeps {
  limits: TransportLimits;
  /** Bytes written to the component and not yet read, past which it is disconnected (limits.maxSendBufferBytes). */
  maxSendBufferBytes: number;
  /** The per-component rate limits (stanzas and bytes), charged once the stream is authenticated. */
  rates: DomainRateLimits;
  /** The normalised domain, or undefined when it is not a valid domain. */
  normalizeDomain(domain: string): string | undefined;
  /** The component's secret, when the domain is registered. */
  secretOf(domain: string): Promise<string | undefined>;
  /** The stream proved its secret: may it attach (undefined) or why not (the policy)? */
  authorize(stream: ComponentStream): Promise<StreamError | undefined>;
  /** The stream proved its secret: take it into service; false when the domain is already connected (here or, in a cluster, on another node). */
  authenticated(stream: ComponentStream): boolean | Promise<boolean>;
  /** A stanza from the authenticated component. */
  stanza(stream: ComponentStream, stanza: XmlElement): void | Promise<void>;
  closed(stream: ComponentStream, reason: string): void;
  log: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class ComponentStream implements TransportSink {
  readonly id = randomBytes(12).toString("hex");
  readonly connectedAt = Date.now();
  /** When the handshake succeeded. */
  authenticatedAt = 0;
  /** The component's domain, from its stream header. */
  domain: string | undefined;
  authenticated = false;
  closed = false;
  stanzasIn = 0;
  stanzasOut = 0;
  private headerSent = false;
  private readonly queue: XmlElement[] = [];
  private busy = false;
  private cleanedUp = false;
  private reason = "disconnected";

  constructor(
    readonly transport: SocketTransport,
    private readonly deps: ComponentStreamDeps,
  ) {
    transport.start(this, deps.limits);
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  /** Writes a stanza to the component. */
  send(stanza: XmlElement): void {
    if (this.closed) return;
    this.stanzasOut++;
    this.transport.write(serialize(stanza));
    if (this.transport.backlogBytes > this.deps.maxSendBufferBytes) this.abandon();
  }

  /**
   * A component that stops reading must not make the server's memory grow: it is cut off
   * once, without a stream error (that would go into the same full buffer); stanzas for its
   * domain then get service-unavailable until it connects again.
   */
  private abandon(): void {
    this.deps.log.warn(
      { domain: this.domain, unread: this.transport.queuedBytes, limit: this.deps.maxSendBufferBytes },
      "component disconnected: it stopped reading what the server sends it",
    );
    this.reason = "stopped reading";
    this.closed = true;
    this.transport.destroy();
    this.cleanup();
  }

  streamStart(attrs: Record<string, string>): void {
    if (this.closed) return;
    if (this.headerSent) {
      this.close(new StreamError("not-authorized", "a component stream is not restarted"));
      return;
    }
    const domain = attrs.to === undefined ? undefined : this.deps.normalizeDomain(attrs.to);
    this.domain = domain;
    this.transport.openStream({ id: this.id, from: domain ?? "invalid", xmlns: NS_COMPONENT });
    this.headerSent = true;
    if (attrs.xmlns !== NS_COMPONENT) {
      this.close(new StreamError("invalid-namespace", "this port serves jabber:component:accept streams"));
    } else if (domain === undefined) {
      this.close(new StreamError("host-unknown", "name the component's domain in 'to'"));
    }
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
        await this.handle(el);
      } catch (err) {
        if (err instanceof StreamError) this.close(err);
        else {
          this.deps.log.warn({ err, domain: this.domain }, "error while handling component input");
          this.close(new StreamError("internal-server-error"));
        }
      }
    }
    this.busy = false;
  }

  private async handle(el: XmlElement): Promise<void> {
    if (!this.authenticated) {
      if (el.name !== "handshake") throw new StreamError("not-authorized", "send <handshake/> first");
      return this.handshake(el.text().trim().toLowerCase());
    }
    if (isStanza(el)) {
      this.stanzasIn++;
      const wait = this.deps.rates.admit(this.domain!, this.transport);
      if (wait) {
        await wait;
        if (this.closed) return;
      }
      return this.deps.stanza(this, el);
    }
    throw new StreamError("unsupported-stanza-type", `<${el.name}/> on a component stream`);
  }

  private async handshake(digest: string): Promise<void> {
    const domain = this.domain;
    const secret = domain === undefined ? undefined : await this.deps.secretOf(domain);
    if (this.closed) return;
    // An unknown domain fails the same way as a wrong secret: nothing tells which domains exist.
    const expected = createHash("sha1")
      .update(this.id + (secret ?? randomBytes(16).toString("hex")))
      .digest("hex");
    const ok =
      secret !== undefined &&
      digest.length === expected.length &&
      timingSafeEqual(Buffer.from(digest), Buffer.from(expected));
    if (!ok) {
      this.deps.log.warn({ domain, address: this.remoteAddress }, "component handshake refused");
      throw new StreamError("not-authorized", "handshake refused");
    }
    const refused = await this.deps.authorize(this);
    if (this.closed) return;
    if (refused) throw refused;
    if (!(await this.deps.authenticated(this))) {
      throw new StreamError("conflict", `a component for ${domain} is already connected`);
    }
    this.authenticated = true;
    this.authenticatedAt = Date.now();
    this.transport.meterInput((n) => this.deps.rates.bytes(domain!, n));
    this.transport.write(serialize(x("handshake")));
  }

  streamEnd(): void {
    this.reason = "closed";
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
      this.reason = error.condition;
      if (!this.headerSent) {
        this.transport.openStream({ id: this.id, from: this.domain ?? "invalid", xmlns: NS_COMPONENT });
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
    this.deps.closed(this, this.reason);
  }
}
