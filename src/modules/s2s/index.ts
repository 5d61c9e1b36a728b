/**
 * Federation (RFC 6120 server-to-server): a listener on `s2sPort` (STARTTLS) and `s2sTlsPort`
 * (direct TLS, XEP-0368) for other servers' streams, and a remote route that carries stanzas
 * for other domains over outbound streams (resolved with the static host map, DNS SRV, then
 * A/AAAA). Peers authenticate with SASL EXTERNAL when their certificate is valid for their
 * domain and with Server Dialback (XEP-0220) otherwise. Every link passes the `s2s/authorize`
 * step (the federation policy); other modules list and close links through api.ts.
 */
import net from "node:net";
import tls from "node:tls";
import { z } from "zod";
import { DomainRateLimits, DomainRateSchema, DomainRatesSchema } from "../../core/domain-rates.js";
import { StreamError } from "../../core/errors.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { sharedSecret } from "../../core/storage/shared-secret.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_FEDERATION } from "../../core/xml/namespaces.js";
import { listenOnAddresses } from "../../transports/listen.js";
import { SocketTransport } from "../../transports/tcp/socket-transport.js";
import { loadTls, SERVED_CERTIFICATES, selectAlpn, type TlsMaterial } from "../../transports/tls.js";
import type { S2SApi, S2SAuthMethod, S2SAuthorizeEvent, S2SDirection, S2SRefusal } from "./api.js";
import { s2sConfigSection } from "./config.js";
import { PeerContexts } from "./contexts.js";
import { Federation } from "./federation.js";
import { ownedLinks } from "./owned-links.js";
import { PeerTrust } from "./peer-tls.js";
import { TargetResolver } from "./resolve.js";

export type { S2SApi } from "./api.js";

export const S2SOptions = z.object({
  /**
   * Stanzas waiting for one remote domain while its link is set up; more are bounced. A first
   * burst to a domain (a room's fan-out, many users at once) can be thousands of small
   * stanzas; maxQueuedBytes bounds what they hold.
   */
  maxQueuedStanzas: z.number().int().min(1).default(10_000),
  /** Bytes waiting for one remote domain while its link is set up. */
  maxQueuedBytes: z
    .number()
    .int()
    .min(10_000)
    .default(1024 * 1024),
  /** Seconds to reach and authenticate with a remote server before its queue is bounced. */
  connectTimeoutSeconds: z.number().positive().default(30),
  /** Attempts to connect (with backoff) before the queued stanzas are bounced. */
  connectAttempts: z.number().int().min(1).default(3),
  /** First delay between attempts; it doubles per failed attempt up to maxBackoffSeconds. */
  backoffSeconds: z.number().min(0).default(1),
  maxBackoffSeconds: z.number().min(0).default(60),
  /**
   * Bytes written to a link that the remote has not taken yet, above which stanzas for it
   * wait in its queue (maxQueuedStanzas, maxQueuedBytes) instead of our memory.
   */
  // As large as a client's (limits.maxSendBufferBytes): writes are counted here until the
  // end of the event-loop turn, and one turn may fan a room's message out to a whole domain.
  sendBufferBytes: z
    .number()
    .int()
    .min(65_536)
    .default(8 * 1024 * 1024),
  /** Seconds a remote may leave more than sendBufferBytes unread before the link is closed and its queue bounced. */
  stalledSeconds: z.number().positive().default(60),
  /** Seconds without traffic after which a link is closed (reopened when needed). */
  idleTimeoutSeconds: z.number().positive().default(600),
  /** Refuse streams without TLS (RFC 6120 §13.7; off only for loopback experiments). */
  requireTls: z.boolean().default(true),
  /** DNS servers for SRV and address lookups ("IP" or "IP:PORT"); the system's when empty. */
  dnsServers: z.array(z.string()).default([]),
  /** Largest stanza accepted from a peer. */
  maxStanzaBytes: z
    .number()
    .int()
    .min(10_000)
    .default(512 * 1024),
  /**
   * What one remote domain may send, all its streams together; above it its streams stop
   * reading until the rate is back under the limit (nothing is dropped). 0: unlimited.
   */
  domainRate: DomainRateSchema.prefault({}),
  /** Other limits for some remote domains (a busy peer, a gateway), by domain; unset keys keep `domainRate`'s. */
  domainRates: DomainRatesSchema,
  /**
   * What our domains may send one remote domain, all links to it together (unlimited by
   * default); above it stanzas wait in the domain's queue and go out at the rate.
   */
  outboundRate: DomainRateSchema.extend({
    stanzasPerSecond: z.number().min(0).default(0),
    bytesPerSecond: z.number().int().min(0).default(0),
  }).prefault({}),
  /** Other outbound limits for some remote domains, by domain; unset keys keep `outboundRate`'s. */
  outboundRates: DomainRatesSchema,
});
export type S2SOptions = z.infer<typeof S2SOptions>;

const CONDITIONS = {
  allowlist: "not-allowlisted",
  licensed: "peering-licence-required",
} as const;

export default defineModule<S2SOptions>({
  name: "s2s",
  description: "Federation with other XMPP servers (RFC 6120 server-to-server, XEP-0220 dialback, XEP-0368)",
  xeps: [
    { xep: "0220", version: "1.1.1", status: "complete" },
    { xep: "0178", version: "1.2", status: "complete" },
    { xep: "0368", version: "1.1.0", status: "complete" },
  ],
  options: S2SOptions,
  config: s2sConfigSection,
  async setup(ctx) {
    const { config, log, router, options } = ctx;
    const policy = config.federation.policy;
    const allowlist = new Set(config.federation.allowlist);
    // The server's certificates (reloaded with it), or this module's own copy when it runs alone.
    const material = ctx.api<TlsMaterial>(SERVED_CERTIFICATES) ?? (await loadTls(config, log));
    const trust = new PeerTrust(config.s2sCa);
    const trusted = trust.pems;
    // Each served domain's certificate, chosen by the peer's SNI name (the primary's without one).
    const contexts = new PeerContexts(material, trusted);
    const SNICallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) =>
      cb(null, contexts.for(servername));
    // Peers are asked for a certificate (SASL EXTERNAL) but not refused without one (dialback).
    const peerCertificate = { requestCert: true, rejectUnauthorized: false } as const;

    // The policy the configuration names, after every other handler (a licence handler decides first).
    ctx.hook(
      "s2s/authorize",
      (ev) => {
        if (ev.decision) return true;
        if (policy === "open") ev.allow();
        else if (policy === "allowlist" && allowlist.has(ev.domain)) ev.allow();
        else
          ev.refuse({
            text:
              policy === "allowlist"
                ? `${ev.domain} is not on the federation allowlist of ${ev.localDomain}`
                : `${ev.domain} has no peering licence with ${ev.localDomain}`,
            condition: x(CONDITIONS[policy], { xmlns: NS_FEDERATION }),
          });
        return true;
      },
      -100,
    );

    const authorize = async (
      domain: string,
      localDomain: string,
      direction: S2SDirection,
      method: S2SAuthMethod | undefined,
    ): Promise<S2SRefusal | undefined> => {
      let decision: S2SAuthorizeEvent["decision"];
      const ev: S2SAuthorizeEvent = {
        domain,
        localDomain,
        direction,
        method,
        policy,
        get decision() {
          return decision;
        },
        allow() {
          decision = { allowed: true };
        },
        refuse(refusal) {
          decision = { allowed: false, refusal };
        },
      };
      await ctx.fire("s2s/authorize", ev);
      const d = decision as S2SAuthorizeEvent["decision"];
      if (d?.allowed) return undefined;
      const refusal = d?.refusal ?? { text: `federation with ${domain} is not allowed` };
      // Inbound the refusal is a stream error, outbound a bounce of what was queued: policy-violation both.
      log.info(
        {
          remote: domain,
          local: localDomain,
          direction,
          condition: "policy-violation",
          reason: refusal.text,
        },
        "server-to-server link refused",
      );
      return refusal;
    };

    const rates = new DomainRateLimits(options.domainRate, options.domainRates, (domain, what, pauseMs) =>
      log.info(
        { remote: domain, over: what, pauseMs, rate: rates.rateOf(domain) },
        "server-to-server input throttled: the remote domain sends faster than its limit",
      ),
    );
    const outboundRates = new DomainRateLimits(
      options.outboundRate,
      options.outboundRates,
      (domain, what, pauseMs) =>
        log.info(
          { remote: domain, over: what, pauseMs, rate: outboundRates.rateOf(domain) },
          "server-to-server output held: our users send a remote domain more than its outbound limit",
        ),
    );
    const federation = new Federation({
      router,
      log,
      rates,
      outboundRates,
      limits: { ...config.limits, maxStanzaBytes: options.maxStanzaBytes, bytesPerSecond: 0 },
      options: {
        maxQueuedStanzas: options.maxQueuedStanzas,
        maxQueuedBytes: options.maxQueuedBytes,
        connectTimeoutMs: options.connectTimeoutSeconds * 1000,
        idleTimeoutMs: options.idleTimeoutSeconds * 1000,
        connectAttempts: options.connectAttempts,
        backoffMs: options.backoffSeconds * 1000,
        maxBackoffMs: options.maxBackoffSeconds * 1000,
        requireTls: options.requireTls,
        sendBufferBytes: options.sendBufferBytes,
        stalledMs: options.stalledSeconds * 1000,
      },
      policy,
      resolver: new TargetResolver(config.s2sRoutes, options.dnsServers, 5000),
      dialbackSecret: await sharedSecret(ctx.storage, "dialback", config.dataDir, ctx.clock.now()),
      wrapServerTls: (raw) =>
        new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: contexts.for(config.domain),
          SNICallback,
          ...peerCertificate,
        }),
      certificateAuthenticates: (socket, domain) => trust.authenticates(socket, domain),
      // The local domain's certificate authenticates it to the peer (SASL EXTERNAL).
      clientTls: (local, remote) => ({
        servername: remote,
        secureContext: contexts.for(local),
        rejectUnauthorized: false,
      }),
      authorize,
    });

    const sendHere = (stanza: XmlElement, to: Jid) => federation.send(stanza, to);
    if (ctx.nodes) {
      // In a cluster one node holds the link to each remote domain (owned-links.ts).
      const links = ownedLinks({ nodes: ctx.nodes, router, log, sendHere });
      ctx.onUnload(router.addRemoteRoute(links));
      ctx.onUnload(() => links.stop());
    } else {
      ctx.onUnload(router.addRemoteRoute({ kind: "s2s", priority: 0, canRoute: () => true, send: sendHere }));
    }
    ctx.setInterval(
      () => federation.sweepIdle(),
      Math.min(30_000, Math.max(1000, (options.idleTimeoutSeconds * 1000) / 4)),
    );

    const servers: net.Server[] = [];
    const listenOne = (server: net.Server, host: string, port: number) =>
      new Promise<number>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port, host }, () => {
          server.off("error", reject);
          server.on("error", (err) => log.error({ err }, "server-to-server listener error"));
          servers.push(server);
          resolve((server.address() as net.AddressInfo).port);
        });
      });
    // One server per listen address (`bind`), all on the same port.
    const listen = async (make: () => net.Server, port: number) =>
      (await listenOnAddresses(config.bind, port, (host, p) => listenOne(make(), host, p), log, "s2s")).port;
    ctx.listen({
      name: "s2s",
      async start() {
        const ports: Record<string, number> = {};
        if (config.s2sPort > 0) {
          const plain = () =>
            net.createServer({ noDelay: true }, (socket) =>
              federation.accept(new SocketTransport(socket, undefined, false), false),
            );
          ports.s2sPort = await listen(plain, config.s2sPort);
        }
        if (config.s2sTlsPort > 0) {
          const direct = () => {
            const server = tls.createServer(
              {
                ...material.contextOptions,
                cert: material.certPem,
                key: material.keyPem,
                ca: trusted,
                SNICallback,
                ...peerCertificate,
                ALPNCallback: selectAlpn("xmpp-server"),
                noDelay: true,
              },
              (socket) => federation.accept(new SocketTransport(socket, undefined, true), true),
            );
            server.on("tlsClientError", (err) =>
              log.debug({ err: err.message }, "server-to-server TLS handshake failed"),
            );
            // A peer without SNI gets the server's own context: renewed with the files.
            material.onChange(() =>
              server.setSecureContext({
                ...material.contextOptions,
                cert: material.certPem,
                key: material.keyPem,
                ca: trusted,
              }),
            );
            return server;
          };
          ports.s2sTlsPort = await listen(direct, config.s2sTlsPort);
        }
        return ports;
      },
      async stop() {
        federation.stop();
        for (const s of [...federation.inbound]) s.close(new StreamError("system-shutdown"));
        await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
      },
    });

    const api: S2SApi = {
      policy,
      links: () => federation.listLinks(),
      closeLinks: (domain, refusal) => federation.closeLinks(domain, refusal),
    };
    ctx.provide(api);

    const { stats } = federation;
    ctx.metric({
      name: "switchboard_s2s_links",
      help: "Authenticated server-to-server links, by remote domain and direction",
      type: "gauge",
      labelNames: ["domain", "direction"],
      collect: () => {
        const counts = new Map<string, number>();
        for (const l of federation.listLinks()) {
          const key = `${l.domain}\n${l.direction}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        return [...counts].map(([key, n]) => {
          const [domain, direction] = key.split("\n");
          return [{ domain: domain!, direction: direction! }, n] as const;
        });
      },
    });
    ctx.metric({
      name: "switchboard_s2s_throttled_total",
      help: "Times a remote domain's input was paused for sending faster than its limit (modules.s2s.domainRate), by domain",
      type: "counter",
      labelNames: ["domain"],
      collect: () => rates.throttledCounts().map(([domain, n]) => [{ domain }, n] as const),
    });
    ctx.metric({
      name: "switchboard_s2s_held_total",
      help: "Stanzas that waited in a remote domain's queue on a ready link, by domain and reason: over modules.s2s.outboundRate (rate) or with more than sendBufferBytes unread by the remote (congested)",
      type: "counter",
      labelNames: ["domain", "reason"],
      collect: () =>
        [...stats.held].map(([key, n]) => {
          const [domain, reason] = key.split("\n");
          return [{ domain: domain!, reason: reason! }, n] as const;
        }),
    });
    ctx.metric({
      name: "switchboard_s2s_stalled_total",
      help: "Links closed because the remote server left our stanzas unread for modules.s2s.stalledSeconds, by domain",
      type: "counter",
      labelNames: ["domain"],
      collect: () => [...stats.stalled].map(([domain, n]) => [{ domain }, n] as const),
    });
    ctx.metric({
      name: "switchboard_s2s_stanzas_total",
      help: "Stanzas exchanged with other servers, by remote domain and direction",
      type: "counter",
      labelNames: ["domain", "direction"],
      collect: () => [
        ...[...stats.stanzasIn].map(([domain, n]) => [{ domain, direction: "in" }, n] as const),
        ...[...stats.stanzasOut].map(([domain, n]) => [{ domain, direction: "out" }, n] as const),
      ],
    });
    ctx.metric({
      name: "switchboard_s2s_spoofed_total",
      help: "Stanzas refused because a peer sent them from a domain its stream did not authenticate, by the stream's domain",
      type: "counter",
      labelNames: ["domain"],
      collect: () => [...stats.spoofed].map(([domain, n]) => [{ domain }, n] as const),
    });
    ctx.metric({
      name: "switchboard_s2s_refused_total",
      help: "Links refused by the federation policy, by remote domain and direction",
      type: "counter",
      labelNames: ["domain", "direction"],
      collect: () =>
        [...stats.refused].map(([key, n]) => {
          const [domain, direction] = key.split("\n");
          return [{ domain: domain!, direction: direction! }, n] as const;
        }),
    });
    ctx.metric({
      name: "switchboard_s2s_authenticated_total",
      help: "Server-to-server streams authenticated, by remote domain, method and direction",
      type: "counter",
      labelNames: ["domain", "method", "direction"],
      collect: () =>
        [...stats.authenticated].map(([key, n]) => {
          const [domain, method, direction] = key.split("\n");
          return [{ domain: domain!, method: method!, direction: direction! }, n] as const;
        }),
    });
    ctx.metric({
      name: "switchboard_s2s_bounced_total",
      help: "Stanzas for other servers returned to their senders, by error condition",
      type: "counter",
      labelNames: ["condition"],
      collect: () => [...stats.bounced].map(([condition, n]) => [{ condition }, n] as const),
    });
    ctx.metric({
      name: "switchboard_s2s_queued_stanzas",
      help: "Stanzas waiting for a link to another server",
      type: "gauge",
      collect: () => federation.queuedStanzas(),
    });
  },
});
