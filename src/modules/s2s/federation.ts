/**
 * The federation manager: inbound streams, outbound links per (our domain, remote domain)
 * with their queues, the authorization step, bounces, idle closing, reconnection with backoff
 * and the counters behind /metrics.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type tls from "node:tls";
import type { Logger } from "pino";
import type { DomainRateLimits } from "../../core/domain-rates.js";
import { StanzaError, type StanzaErrorCondition, StreamError } from "../../core/errors.js";
import type { Jid } from "../../core/jid.js";
import type { Router } from "../../core/router.js";
import type { TransportLimits } from "../../core/stream/transport.js";
import { serialize, type XmlElement } from "../../core/xml/element.js";
import type { S2SAuthMethod, S2SDirection, S2SLinkInfo, S2SRefusal } from "./api.js";
import type { FederationPolicy } from "./config.js";
import { type DialbackOutcome, type InboundDeps, InboundStream, policyError } from "./inbound.js";
import { type OutboundDeps, OutboundStream } from "./outbound.js";
import type { TargetResolver } from "./resolve.js";

export interface FederationOptions {
  maxQueuedStanzas: number;
  maxQueuedBytes: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  connectAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  requireTls: boolean;
  /** Bytes written to a link and not yet taken by the remote above which stanzas wait in the queue. */
  sendBufferBytes: number;
  /** How long a link may stay above sendBufferBytes before it is closed and its queue bounced. */
  stalledMs: number;
}

export interface FederationDeps {
  router: Router;
  log: Logger;
  limits: TransportLimits;
  /** Each remote domain's allowance of stanzas and bytes in (all its inbound streams together). */
  rates: DomainRateLimits;
  /** What our domains may send each remote domain (all links to it together). */
  outboundRates: DomainRateLimits;
  options: FederationOptions;
  policy: FederationPolicy;
  resolver: TargetResolver;
  dialbackSecret: Buffer;
  wrapServerTls: InboundDeps["wrapTls"];
  certificateAuthenticates: InboundDeps["certificateAuthenticates"];
  clientTls(local: string, remote: string): tls.ConnectionOptions;
  authorize(
    domain: string,
    localDomain: string,
    direction: S2SDirection,
    method: S2SAuthMethod | undefined,
  ): Promise<S2SRefusal | undefined>;
}

/** How often a congested link's send buffer is looked at again. */
const PUMP_POLL_MS = 50;

type HoldReason = "rate" | "congested";

interface Queued {
  stanza: XmlElement;
  bytes: number;
}

/** Stanzas for one remote domain from one of ours: the stream that carries them, or the queue while there is none. */
class OutboundLink {
  readonly queue: Queued[] = [];
  queuedBytes = 0;
  stream: OutboundStream | undefined;
  authorizing = false;
  attempts = 0;
  retryTimer: NodeJS.Timeout | undefined;
  lastActivity = Date.now();
  /** Over the outbound rate: the queue waits until then. */
  heldUntil = 0;
  /** Since when the remote has left more than sendBufferBytes unread (0: it has not). */
  congestedSince = 0;
  /** Why the queue waits on a ready link (undefined: it does not). */
  held: HoldReason | undefined;
  /** The next try to write the queue on a ready link. */
  pumpTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly localDomain: string,
    readonly remoteDomain: string,
  ) {}

  get ready(): boolean {
    return this.stream?.phase === "ready";
  }
}

function counter<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

export class Federation {
  readonly inbound = new Set<InboundStream>();
  private readonly links = new Map<string, OutboundLink>();
  readonly stats = {
    stanzasIn: new Map<string, number>(),
    stanzasOut: new Map<string, number>(),
    spoofed: new Map<string, number>(),
    refused: new Map<string, number>(),
    bounced: new Map<StanzaErrorCondition, number>(),
    authenticated: new Map<string, number>(),
    /** Stanzas that waited on a ready link, by "domain\nreason" (rate, congested). */
    held: new Map<string, number>(),
    /** Links closed because the remote stopped reading, by domain. */
    stalled: new Map<string, number>(),
  };
  private readonly inboundDeps: InboundDeps;
  private readonly outboundDeps: OutboundDeps;
  private stopped = false;

  constructor(private readonly deps: FederationDeps) {
    const { router, log, options } = deps;
    const ours = (raw: string): string | undefined => {
      const d = raw.toLowerCase();
      return router.isLocalDomain(d) || router.routeOf(d) !== undefined ? d : undefined;
    };
    this.inboundDeps = {
      limits: deps.limits,
      rates: deps.rates,
      requireTls: options.requireTls,
      idleTimeoutMs: options.idleTimeoutMs,
      servedDomain: ours,
      acceptsStanzasFor: (d) => ours(d) !== undefined,
      wrapTls: deps.wrapServerTls,
      certificateAuthenticates: deps.certificateAuthenticates,
      authorize: async (domain, localDomain, method) => {
        const refusal = await deps.authorize(domain, localDomain, "in", method);
        if (refusal) counter(this.stats.refused, `${domain}\nin`);
        return refusal;
      },
      isOwnKey: (receiving, originating, streamId, key) => {
        const expected = Buffer.from(this.dialbackKey(receiving, originating, streamId));
        const given = Buffer.from(key);
        return expected.length === given.length && timingSafeEqual(expected, given);
      },
      verifyDialback: (localDomain, remoteDomain, streamId, key) =>
        this.verifyDialback(localDomain, remoteDomain, streamId, key),
      authenticated: (stream, domain, method) => {
        counter(this.stats.authenticated, `${domain}\n${method}\nin`);
        log.info(
          { remote: domain, local: stream.localDomain, method, address: stream.remoteAddress },
          "server-to-server stream in authenticated",
        );
      },
      stanza: (_stream, stanza, from, to) => {
        counter(this.stats.stanzasIn, from.domain);
        return router.deliver(stanza, from, to);
      },
      spoofed: (stream, claimed) => {
        const domain = [...stream.domains.keys()][0] ?? stream.declaredFrom ?? "unauthenticated";
        counter(this.stats.spoofed, domain);
        log.warn(
          { remote: domain, claimed, address: stream.remoteAddress },
          "spoofed 'from' on a server-to-server stream",
        );
      },
      closed: (stream) => {
        this.inbound.delete(stream);
      },
      log,
    };
    this.outboundDeps = {
      limits: deps.limits,
      requireTls: options.requireTls,
      connectTimeoutMs: options.connectTimeoutMs,
      clientTls: deps.clientTls,
      certificateAuthenticates: deps.certificateAuthenticates,
      dialbackKey: (receiving, originating, streamId) => this.dialbackKey(receiving, originating, streamId),
      ready: (stream) => this.streamReady(stream),
      ended: (stream, failure, detail) => this.streamEnded(stream, failure, detail),
      log,
    };
  }

  /** XEP-0220 §2.4: HMAC-SHA256 keyed with the hex SHA-256 of the secret, over "receiving originating stream-id". */
  dialbackKey(receiving: string, originating: string, streamId: string): string {
    const k = createHash("sha256").update(this.deps.dialbackSecret).digest("hex");
    return createHmac("sha256", k).update(`${receiving} ${originating} ${streamId}`).digest("hex");
  }

  accept(transport: ConstructorParameters<typeof InboundStream>[0], directTls: boolean): void {
    if (this.stopped) {
      transport.destroy();
      return;
    }
    this.inbound.add(new InboundStream(transport, this.inboundDeps, directTls));
  }

  /** The router's remote route: a stanza from one of our domains to `to` (a domain not served here). */
  send(stanza: XmlElement, to: Jid): void {
    const fromAttr = stanza.attrs.from;
    const at = fromAttr === undefined ? -1 : fromAttr.indexOf("@");
    const slash = fromAttr === undefined ? -1 : fromAttr.indexOf("/", at + 1);
    const localDomain = fromAttr?.slice(at + 1, slash < 0 ? undefined : slash) ?? this.deps.router.domain;
    const link = this.linkFor(localDomain, to.domain);
    if (link.ready) {
      if (link.queue.length === 0 && this.hold(link) === undefined) {
        this.write(link, stanza);
        return;
      }
      counter(this.stats.held, `${link.remoteDomain}\n${link.held ?? "congested"}`);
    }
    const bytes = Buffer.byteLength(serialize(stanza));
    const { maxQueuedStanzas, maxQueuedBytes } = this.deps.options;
    if (link.queue.length >= maxQueuedStanzas || link.queuedBytes + bytes > maxQueuedBytes) {
      this.bounce(stanza, "resource-constraint", `too many stanzas waiting for ${to.domain}`);
      return;
    }
    link.queue.push({ stanza, bytes });
    link.queuedBytes += bytes;
    if (link.ready) this.schedulePump(link);
    else if (!link.stream && !link.authorizing && !link.retryTimer) void this.start(link);
  }

  private write(link: OutboundLink, stanza: XmlElement): void {
    link.lastActivity = Date.now();
    counter(this.stats.stanzasOut, link.remoteDomain);
    const bytes = link.stream!.send(stanza);
    const { outboundRates } = this.deps;
    const waitMs = Math.max(
      outboundRates.stanza(link.remoteDomain),
      outboundRates.bytes(link.remoteDomain, bytes),
    );
    if (waitMs > 0) link.heldUntil = Date.now() + waitMs;
  }

  /**
   * Why the next stanza cannot go on the link now, if it cannot: the domain is over its
   * outbound rate, or the remote leaves more than sendBufferBytes unread (a peer that stops
   * reading must not make our memory grow: the stanzas wait in the bounded queue instead).
   */
  private hold(link: OutboundLink): HoldReason | undefined {
    const now = Date.now();
    link.held = undefined;
    if (link.heldUntil > now) link.held = "rate";
    else if (link.stream!.queuedBytes > this.deps.options.sendBufferBytes) {
      if (link.congestedSince === 0) link.congestedSince = now;
      link.held = "congested";
    } else link.congestedSince = 0;
    return link.held;
  }

  /** Writes what the queue holds while the link may take it; tries again later otherwise. */
  private pump(link: OutboundLink): void {
    link.pumpTimer = undefined;
    if (!link.ready) return;
    while (link.queue.length > 0) {
      if (this.hold(link) !== undefined) {
        if (link.congestedSince > 0 && Date.now() - link.congestedSince >= this.deps.options.stalledMs) {
          this.stalled(link);
          return;
        }
        this.schedulePump(link);
        return;
      }
      const q = link.queue.shift()!;
      link.queuedBytes -= q.bytes;
      this.write(link, q.stanza);
    }
  }

  private schedulePump(link: OutboundLink): void {
    if (link.pumpTimer) return;
    // Over the rate: until the allowance is back; congested: a short poll of the send buffer.
    const delay = Math.max(link.heldUntil - Date.now(), PUMP_POLL_MS);
    link.pumpTimer = setTimeout(() => this.pump(link), delay);
    link.pumpTimer.unref();
  }

  /** The remote took nothing for stalledMs: what waits goes back to its senders, the link closes. */
  private stalled(link: OutboundLink): void {
    counter(this.stats.stalled, link.remoteDomain);
    const detail = `${link.remoteDomain} stopped reading our stream`;
    this.deps.log.warn(
      {
        remote: link.remoteDomain,
        local: link.localDomain,
        unread: link.stream!.queuedBytes,
        queued: link.queue.length,
      },
      "server-to-server link closed: the remote server stopped reading",
    );
    this.bounceQueue(link, "remote-server-timeout", detail);
    link.stream!.close(new StreamError("connection-timeout", detail));
  }

  private linkFor(localDomain: string, remoteDomain: string): OutboundLink {
    const key = `${localDomain}\n${remoteDomain}`;
    let link = this.links.get(key);
    if (!link) {
      link = new OutboundLink(localDomain, remoteDomain);
      this.links.set(key, link);
    }
    return link;
  }

  /** Authorizes the remote domain, then connects. */
  private async start(link: OutboundLink): Promise<void> {
    link.authorizing = true;
    let refusal: S2SRefusal | undefined;
    try {
      refusal = await this.deps.authorize(link.remoteDomain, link.localDomain, "out", undefined);
    } catch (err) {
      this.deps.log.error({ err }, "s2s authorization failed");
      refusal = { text: "the federation policy could not be checked" };
    }
    link.authorizing = false;
    if (refusal) {
      counter(this.stats.refused, `${link.remoteDomain}\nout`);
      this.bounceQueue(link, "policy-violation", refusal.text);
      this.forget(link);
      return;
    }
    this.connect(link);
  }

  private connect(link: OutboundLink): void {
    if (this.stopped || link.stream) return;
    link.retryTimer = undefined;
    const stream = new OutboundStream(link.localDomain, link.remoteDomain, this.outboundDeps);
    link.stream = stream;
    this.deps.resolver
      .resolve(link.remoteDomain)
      .catch(() => [])
      .then((targets) => stream.connect(targets))
      .catch((err) => this.deps.log.error({ err }, "s2s connect failed"));
  }

  private linkOf(stream: OutboundStream): OutboundLink | undefined {
    const link = this.links.get(`${stream.localDomain}\n${stream.remoteDomain}`);
    return link?.stream === stream ? link : undefined;
  }

  private streamReady(stream: OutboundStream): void {
    const link = this.linkOf(stream);
    if (!link) {
      stream.close();
      return;
    }
    counter(this.stats.authenticated, `${link.remoteDomain}\n${stream.method}\nout`);
    this.deps.log.info(
      {
        remote: link.remoteDomain,
        local: link.localDomain,
        method: stream.method,
        certificateVerified: stream.certificateVerified,
        address: stream.address,
      },
      "server-to-server stream out authenticated",
    );
    link.attempts = 0;
    this.pump(link);
  }

  private streamEnded(
    stream: OutboundStream,
    failure: StanzaErrorCondition | undefined,
    detail: string,
  ): void {
    const link = this.linkOf(stream);
    if (!link) return;
    link.stream = undefined;
    clearTimeout(link.pumpTimer);
    link.pumpTimer = undefined;
    link.congestedSince = 0;
    if (this.stopped) {
      this.bounceQueue(link, "remote-server-timeout", "the server is shutting down");
      this.forget(link);
      return;
    }
    if (link.queue.length === 0) {
      this.forget(link);
      return;
    }
    if (failure === "policy-violation") {
      this.bounceQueue(link, failure, detail);
      this.forget(link);
      return;
    }
    if (failure !== undefined) link.attempts++;
    const { connectAttempts, backoffMs, maxBackoffMs } = this.deps.options;
    if (link.attempts >= connectAttempts) {
      this.bounceQueue(link, failure ?? "remote-server-timeout", detail);
      link.attempts = 0;
      this.forget(link);
      return;
    }
    // Reconnect: at once after a link that worked was lost, with backoff after failed attempts.
    const delay = link.attempts === 0 ? 0 : Math.min(maxBackoffMs, backoffMs * 2 ** (link.attempts - 1));
    link.retryTimer = setTimeout(() => this.connect(link), delay);
    link.retryTimer.unref();
  }

  private forget(link: OutboundLink): void {
    if (link.stream || link.queue.length > 0 || link.retryTimer) return;
    const key = `${link.localDomain}\n${link.remoteDomain}`;
    if (this.links.get(key) === link) this.links.delete(key);
  }

  /** Asks the authoritative server of `remoteDomain` about a key presented on an inbound stream. */
  private async verifyDialback(
    localDomain: string,
    remoteDomain: string,
    streamId: string,
    key: string,
  ): Promise<DialbackOutcome> {
    const link = this.linkFor(localDomain, remoteDomain);
    if (!link.stream) {
      clearTimeout(link.retryTimer);
      link.retryTimer = undefined;
      this.connect(link);
    }
    const stream = link.stream;
    if (!stream) return "remote-connection-failed" as StanzaErrorCondition;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<DialbackOutcome>((resolve) => {
      timer = setTimeout(() => resolve("remote-server-timeout"), this.deps.options.connectTimeoutMs);
    });
    try {
      return await Promise.race([stream.verify(streamId, key), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private bounceQueue(link: OutboundLink, condition: StanzaErrorCondition, text: string): void {
    const queued = link.queue.splice(0);
    link.queuedBytes = 0;
    for (const q of queued) this.bounce(q.stanza, condition, text);
  }

  private bounce(stanza: XmlElement, condition: StanzaErrorCondition, text?: string): void {
    counter(this.stats.bounced, condition);
    this.deps.router.bounce(stanza, new StanzaError(condition, text));
  }

  /** Closes idle outbound links (inbound streams time out on their own). */
  sweepIdle(): void {
    const cutoff = Date.now() - this.deps.options.idleTimeoutMs;
    for (const link of this.links.values()) {
      if (link.ready && link.queue.length === 0 && link.lastActivity < cutoff) link.stream!.close();
    }
  }

  listLinks(): S2SLinkInfo[] {
    const out: S2SLinkInfo[] = [];
    for (const s of this.inbound) {
      for (const [domain, auth] of s.domains) {
        out.push({
          domain,
          localDomain: s.localDomain!,
          direction: "in",
          method: auth.method,
          since: auth.since,
          stanzasIn: s.stanzasIn,
          stanzasOut: 0,
          address: s.remoteAddress,
          certificateVerified: s.certificateVerified,
        });
      }
    }
    for (const link of this.links.values()) {
      const s = link.stream;
      if (s?.phase !== "ready") continue;
      out.push({
        domain: link.remoteDomain,
        localDomain: link.localDomain,
        direction: "out",
        method: s.method!,
        since: s.readyAt,
        stanzasIn: 0,
        stanzasOut: s.stanzasOut,
        address: s.address,
        certificateVerified: s.certificateVerified,
      });
    }
    return out;
  }

  closeLinks(domain: string, refusal: S2SRefusal): number {
    const d = domain.toLowerCase();
    let closed = 0;
    for (const s of [...this.inbound]) {
      if (s.domains.has(d) || (s.domains.size === 0 && s.declaredFrom === d)) {
        s.close(policyError(refusal));
        closed++;
      }
    }
    for (const link of [...this.links.values()]) {
      if (link.remoteDomain !== d) continue;
      clearTimeout(link.retryTimer);
      link.retryTimer = undefined;
      this.bounceQueue(link, "policy-violation", refusal.text);
      if (link.stream) {
        if (link.stream.phase === "ready") closed++;
        link.stream.close(policyError(refusal));
      }
      this.forget(link);
    }
    return closed;
  }

  queuedStanzas(): number {
    let n = 0;
    for (const link of this.links.values()) n += link.queue.length;
    return n;
  }

  stop(): void {
    this.stopped = true;
    for (const link of [...this.links.values()]) {
      clearTimeout(link.retryTimer);
      link.retryTimer = undefined;
      this.bounceQueue(link, "remote-server-timeout", "the server is shutting down");
      link.stream?.close();
    }
  }
}
