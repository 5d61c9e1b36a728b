/**
 * External components (XEP-0114): gateways into other networks and services on their own
 * domain connect to `componentPort` (loopback by default), prove their shared secret, and
 * from then on the router sends them every stanza for their domain; what they send goes
 * through the router like any local traffic (the `from` must be at their domain). Connected
 * components are listed in the server's disco#items. Removing a component with the CLI
 * disconnects it within a second. After the secret, a component passes `component/authorize`
 * (api.ts), where a gateway licence can be required. Stanzas for registered components not
 * attached here (on another node of a cluster, or not connected) go through routing.ts.
 */
import net from "node:net";
import { z } from "zod";
import type { CommandDefinition } from "../../core/commands.js";
import { DomainRateLimits, DomainRateSchema, DomainRatesSchema } from "../../core/domain-rates.js";
import { StanzaError, StreamError } from "../../core/errors.js";
import { normalizeDomain, tryParseJid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { setPreparedTo } from "../../core/written-address.js";
import type { XmlElement } from "../../core/xml/element.js";
import { SocketTransport } from "../../transports/tcp/socket-transport.js";
import type { DiscoApi } from "../disco/index.js";
import type { ComponentAuthorizeEvent, ComponentRefusal, ComponentsApi } from "./api.js";
import { componentCommands } from "./commands.js";
import { componentsConfigSection } from "./config.js";
import { ComponentRegistry, componentKey, openSecret } from "./registry.js";
import { ComponentRoutes } from "./routing.js";
import { ComponentStream } from "./stream.js";

export type { ComponentAuthorizeEvent, ComponentLinkInfo, ComponentRefusal, ComponentsApi } from "./api.js";

/** The stream error of a refused component: policy-violation with the text and the application condition. */
function refusalError(r: ComponentRefusal): StreamError {
  return new StreamError("policy-violation", r.text, r.condition);
}

export const ComponentsOptions = z.object({
  /** Address the component port listens on (components run beside the server). */
  bind: z.string().default("127.0.0.1"),
  /** How often the registry is checked for removed components. */
  pollIntervalMs: z.number().int().min(50).max(60_000).default(1000),
  /** Largest stanza a component may send (gateways relay big ones). */
  maxStanzaBytes: z
    .number()
    .int()
    .min(10_000)
    .default(1024 * 1024),
  /**
   * What one component may send; above it its stream stops reading until the rate is back
   * under the limit (nothing is dropped). 0: unlimited.
   */
  rate: DomainRateSchema.prefault({}),
  /** Other limits for some components (a busy gateway), by domain; unset keys keep `rate`'s. */
  rates: DomainRatesSchema,
});
export type ComponentsOptions = z.infer<typeof ComponentsOptions>;

export default defineModule<ComponentsOptions>({
  name: "components",
  description: "External components: gateways and services on their own domain (XEP-0114)",
  xeps: [{ xep: "0114", version: "1.6", status: "complete" }],
  options: ComponentsOptions,
  dependencies: ["disco"],
  commands: componentCommands as CommandDefinition<never>[],
  config: componentsConfigSection,
  async setup(ctx) {
    const { config, log, router, options } = ctx;
    const registry = new ComponentRegistry(ctx.storage);
    const key = componentKey(config.dataDir);
    /** Authenticated components by domain. */
    const connected = new Map<string, { stream: ComponentStream; unroute: () => void }>();
    const open = new Set<ComponentStream>();
    const limits = {
      ...config.limits,
      maxStanzaBytes: Math.max(options.maxStanzaBytes, config.limits.maxStanzaBytes),
      bytesPerSecond: 0,
    };

    const rates = new DomainRateLimits(options.rate, options.rates, (domain, what, pauseMs) =>
      log.info(
        { domain, over: what, pauseMs, rate: rates.rateOf(domain) },
        "component input throttled: the component sends faster than its limit",
      ),
    );

    const deps = {
      limits,
      maxSendBufferBytes: config.limits.maxSendBufferBytes,
      log,
      rates,
      normalizeDomain(raw: string) {
        try {
          const domain = normalizeDomain(raw);
          return router.isLocalDomain(domain) ? undefined : domain;
        } catch {
          return undefined;
        }
      },
      async authorize(stream: ComponentStream) {
        let refusal: ComponentRefusal | undefined;
        const ev: ComponentAuthorizeEvent = {
          domain: stream.domain!,
          address: stream.remoteAddress,
          get refusal() {
            return refusal;
          },
          refuse(r) {
            refusal = r;
          },
        };
        await ctx.fire("component/authorize", ev);
        const r = refusal as ComponentRefusal | undefined;
        if (!r) return undefined;
        stats.refused++;
        log.info(
          { domain: stream.domain, address: stream.remoteAddress, reason: r.text },
          "component refused",
        );
        return refusalError(r);
      },
      async secretOf(domain: string) {
        const record = await registry.get(domain);
        if (!record) return undefined;
        const secret = openSecret(key, record.sealedSecret);
        if (secret === undefined)
          log.warn({ domain }, "a component secret was sealed with another data directory's key");
        return secret;
      },
      async authenticated(stream: ComponentStream) {
        const domain = stream.domain!;
        if (connected.has(domain) || router.routeOf(domain)) return false;
        // In a cluster one node at a time serves a component's domain: the one holding its claim.
        if (!(await routes.claim(domain))) return false;
        if (stream.closed || connected.has(domain)) {
          if (!connected.has(domain)) routes.release(domain);
          return false;
        }
        routes.registeredNow(domain);
        const unroute = router.addRoute(domain, {
          kind: "component",
          deliver(stanza) {
            stream.send(stanza);
          },
        });
        connected.set(domain, { stream, unroute });
        log.info({ domain, address: stream.remoteAddress }, "component connected");
        ctx
          .fire("component/attached", { domain })
          .catch((err) => log.error({ err }, "component/attached failed"));
        return true;
      },
      stanza(stream: ComponentStream, stanza: XmlElement) {
        const from = stanza.attrs.from === undefined ? undefined : tryParseJid(stanza.attrs.from);
        const to = stanza.attrs.to === undefined ? undefined : tryParseJid(stanza.attrs.to);
        // A component speaks for its own domain only (a gateway's users are local@its.domain).
        if (!from || from.domain !== stream.domain) {
          stats.spoofed++;
          throw new StreamError(
            "invalid-from",
            `stanzas from this component must come from ${stream.domain}`,
          );
        }
        if (!to) {
          router.bounce(stanza, new StanzaError("jid-malformed", "a stanza needs a valid 'to'"), from);
          return;
        }
        stanza.attrs.from = from.toString();
        setPreparedTo(stanza, to);
        return router.deliver(stanza, from, to);
      },
      closed(stream: ComponentStream, reason: string) {
        open.delete(stream);
        if (stream.authenticated && stream.domain !== undefined) {
          const t = totals.get(stream.domain) ?? { in: 0, out: 0 };
          t.in += stream.stanzasIn;
          t.out += stream.stanzasOut;
          totals.set(stream.domain, t);
        }
        const domain = stream.domain;
        const entry = domain === undefined ? undefined : connected.get(domain);
        if (entry?.stream === stream) {
          entry.unroute();
          connected.delete(domain!);
          routes.release(domain!);
          log.info({ domain, reason }, "component disconnected");
        }
      },
    };
    // Registered components not attached here: on another node of a cluster, or not connected.
    const routes = new ComponentRoutes({
      nodes: ctx.nodes,
      router,
      log,
      registered: async () => (await registry.list()).map((r) => r.domain),
      attachedHere: (domain) => connected.has(domain),
    });
    await routes.refresh();
    ctx.onUnload(router.addRemoteRoute(routes.route));
    ctx.onUnload(() => routes.stop());
    const stats = { spoofed: 0, refused: 0 };
    /** Stanzas of earlier connections, by domain (a counter does not go down when a link drops). */
    const totals = new Map<string, { in: number; out: number }>();

    let server: net.Server | undefined;
    ctx.listen({
      name: "components",
      async start(): Promise<Record<string, number>> {
        const port = config.componentPort;
        if (port <= 0) return {};
        server = net.createServer({ noDelay: true }, (socket) => {
          open.add(new ComponentStream(new SocketTransport(socket, undefined, false), deps));
        });
        const s = server;
        await new Promise<void>((resolve, reject) => {
          s.once("error", reject);
          s.listen({ port, host: options.bind }, () => {
            s.off("error", reject);
            resolve();
          });
        });
        s.on("error", (err) => log.error({ err }, "component listener error"));
        return { componentPort: (s.address() as net.AddressInfo).port };
      },
      async stop() {
        for (const stream of [...open]) stream.close(new StreamError("system-shutdown"));
        const s = server;
        server = undefined;
        if (s) await new Promise<void>((r) => s.close(() => r()));
      },
    });

    // Removed from the registry (by the CLI or the API): disconnected at the next poll.
    let polling = false;
    ctx.setInterval(() => {
      if (polling) return;
      polling = true;
      (async () => {
        // One read of the registry serves both: the routes and the removals.
        await routes.refresh();
        for (const [domain, { stream }] of connected) {
          if (!routes.isRegistered(domain))
            stream.close(new StreamError("not-authorized", "this component is no longer accepted"));
        }
      })()
        .catch((err) => log.error({ err }, "checking the component registry failed"))
        .finally(() => {
          polling = false;
        });
    }, options.pollIntervalMs);

    ctx.provide<ComponentsApi>({
      links: () =>
        [...connected.values()].map(({ stream }) => ({
          domain: stream.domain!,
          address: stream.remoteAddress,
          since: stream.authenticatedAt,
          stanzasIn: stream.stanzasIn,
          stanzasOut: stream.stanzasOut,
        })),
      detach(domain, refusal) {
        const entry = connected.get(domain);
        if (!entry) return false;
        entry.stream.close(refusalError(refusal));
        return true;
      },
    });

    const disco = ctx.api<DiscoApi>("disco");
    if (disco)
      ctx.onUnload(
        disco.addItems("host", () =>
          [...new Set([...connected.keys(), ...routes.attached()])].sort().map((jid) => ({ jid })),
        ),
      );

    ctx.metric({
      name: "switchboard_components_connected",
      help: "Components connected (XEP-0114)",
      type: "gauge",
      collect: () => connected.size,
    });
    ctx.metric({
      name: "switchboard_component_stanzas_total",
      help: "Stanzas exchanged with components, by domain and direction",
      type: "counter",
      labelNames: ["domain", "direction"],
      collect: () => {
        const sums = new Map([...totals].map(([d, t]) => [d, { ...t }]));
        for (const { stream } of connected.values()) {
          const t = sums.get(stream.domain!) ?? { in: 0, out: 0 };
          t.in += stream.stanzasIn;
          t.out += stream.stanzasOut;
          sums.set(stream.domain!, t);
        }
        return [...sums].flatMap(([domain, t]) => [
          [{ domain, direction: "in" }, t.in] as const,
          [{ domain, direction: "out" }, t.out] as const,
        ]);
      },
    });
    ctx.metric({
      name: "switchboard_component_throttled_total",
      help: "Times a component's input was paused for sending faster than its rate limit, by domain",
      type: "counter",
      labelNames: ["domain"],
      collect: () => rates.throttledCounts().map(([domain, n]) => [{ domain }, n] as const),
    });
    ctx.metric({
      name: "switchboard_component_refused_total",
      help: "Components that proved their secret but were refused by the policy (e.g. no gateway licence)",
      type: "counter",
      collect: () => stats.refused,
    });
    ctx.metric({
      name: "switchboard_component_spoofed_total",
      help: "Stanzas refused because a component sent them from another domain",
      type: "counter",
      collect: () => stats.spoofed,
    });
  },
});
