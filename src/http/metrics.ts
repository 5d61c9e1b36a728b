/**
 * Prometheus metrics (prom-client) at GET /metrics: process and event-loop figures
 * (default metrics), client connections and sessions, stanzas in and out, routing, SASL
 * and web login failures, storage latency and HTTP requests, and every metric the modules
 * declare (core/metrics.ts: the licensing module's sessions by client, proofs, refusals…).
 * Most values are read from counters the server keeps anyway, at scrape time, so the hot
 * paths pay nothing for them.
 *
 * Access: with `http.metrics.token` set, a request must send `Authorization: Bearer
 * <token>`; otherwise only loopback clients are served, unless `http.metrics.public`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import type { MetricDefinition } from "../core/metrics.js";
import type { CoreServices } from "../core/services.js";
import type { HttpPlugin } from "./context.js";
import { ProblemError } from "./problem.js";
import type { StorageTiming } from "./storage-timing.js";

let processRegistry: Registry | undefined;

/** Process-wide default metrics, collected once however many servers run in the process (tests). */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface MetricsSources {
  services: CoreServices;
  /** The open client streams (before and after authentication). */
  connections(): Iterable<{ readonly transportKind: string }>;
  storageTiming?: StorageTiming;
}

/** Sets a counter to an externally kept total (prom-client counters only go up through inc). */
function setCounter<L extends string>(
  c: Counter<L>,
  values: Iterable<[Partial<Record<L, string>>, number]>,
): void {
  c.reset();
  for (const [labels, v] of values) c.inc(labels, v);
}

export class ServerMetrics {
  readonly registry = new Registry();
  /** HTTP requests by method, route pattern and status (counted by the HTTP server). */
  readonly httpRequests: Counter<"method" | "route" | "status">;
  /** Failed web logins by face ("console", "portal"); the portal pages count theirs here too. */
  readonly webLoginFailures: Counter<"face">;

  constructor(sources: MetricsSources) {
    const r = [this.registry];
    const svc = sources.services;

    new Gauge({
      name: "switchboard_c2s_connections",
      help: "Open client connections, by transport",
      labelNames: ["transport"],
      registers: r,
      collect() {
        const by = new Map<string, number>();
        for (const c of sources.connections()) by.set(c.transportKind, (by.get(c.transportKind) ?? 0) + 1);
        this.reset();
        for (const t of ["tcp", "tls"]) this.set({ transport: t }, by.get(t) ?? 0);
        for (const [t, n] of by) if (t !== "tcp" && t !== "tls") this.set({ transport: t }, n);
      },
    });
    new Gauge({
      name: "switchboard_sessions",
      help: "Bound client sessions",
      registers: r,
      collect() {
        this.set(svc.sessions.count);
      },
    });
    new Gauge({
      name: "switchboard_online_accounts",
      help: "Accounts with at least one bound session",
      registers: r,
      collect() {
        let n = 0;
        for (const _ of svc.sessions.accounts()) n++;
        this.set(n);
      },
    });
    const counters = svc.counters;
    new Counter({
      name: "switchboard_stanzas_received_total",
      help: "Stanzas received from clients, by kind",
      labelNames: ["kind"],
      registers: r,
      collect() {
        setCounter(
          this,
          Object.entries(counters.stanzasIn).map(([kind, n]) => [{ kind }, n]),
        );
      },
    });
    new Counter({
      name: "switchboard_stanzas_sent_total",
      help: "Stanzas sent to clients, by kind",
      labelNames: ["kind"],
      registers: r,
      collect() {
        setCounter(
          this,
          Object.entries(counters.stanzasOut).map(([kind, n]) => [{ kind }, n]),
        );
      },
    });
    new Counter({
      name: "switchboard_routed_stanzas_total",
      help: "Stanzas routed, by destination (local addresses or other domains)",
      labelNames: ["destination"],
      registers: r,
      collect() {
        const st = svc.router.stats;
        setCounter(this, [
          [{ destination: "local" }, st.routedLocal],
          [{ destination: "remote" }, st.routedRemote],
        ]);
      },
    });
    new Counter({
      name: "switchboard_stanza_errors_total",
      help: "Error stanzas the router generated (bounces)",
      registers: r,
      collect() {
        setCounter(this, [[{}, svc.router.stats.errors]]);
      },
    });
    new Counter({
      name: "switchboard_storage_full_refusals_total",
      help: "Stanzas refused with resource-constraint because a write they needed found the storage full",
      registers: r,
      collect() {
        setCounter(this, [[{}, svc.router.stats.storageFull]]);
      },
    });
    new Counter({
      name: "switchboard_storage_unavailable_refusals_total",
      help: "Stanzas refused with internal-server-error (type wait) because the storage they needed could not be reached",
      registers: r,
      collect() {
        setCounter(this, [[{}, svc.router.stats.storageUnavailable]]);
      },
    });
    new Counter({
      name: "switchboard_auth_failures_total",
      help: "Failed SASL authentications of client streams, by condition",
      labelNames: ["condition"],
      registers: r,
      collect() {
        setCounter(
          this,
          Object.entries(counters.authFailures).map(([condition, n]) => [{ condition }, n]),
        );
      },
    });
    this.webLoginFailures = new Counter({
      name: "switchboard_web_login_failures_total",
      help: "Refused password logins to the web console (form and JSON) and the portal: wrong credentials, throttled, or an account that may not log in",
      labelNames: ["face"],
      registers: r,
    });

    if (sources.storageTiming) this.registry.registerMetric(sources.storageTiming as unknown as Metric);
    for (const def of svc.metrics.list()) declaredMetric(def, r);

    this.httpRequests = new Counter({
      name: "switchboard_http_requests_total",
      help: "HTTP requests, by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      registers: r,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: process metrics, then the server's. */
  async text(): Promise<string> {
    return (await processMetrics().metrics()) + "\n" + (await this.registry.metrics());
  }
}

/** A metric a module or core part declared (core/metrics.ts), read at scrape time. */
function declaredMetric(def: MetricDefinition, registers: Registry[]): void {
  const labelNames = [...(def.labelNames ?? [])];
  const fill = (m: Gauge<string> | Counter<string>) => {
    m.reset();
    const values = def.collect();
    if (typeof values === "number") {
      if (m instanceof Gauge) m.set(values);
      else m.inc(values);
      return;
    }
    for (const [labels, v] of values) {
      if (m instanceof Gauge) m.set({ ...labels }, v);
      else m.inc({ ...labels }, v);
    }
  };
  const options = {
    name: def.name,
    help: def.help,
    labelNames,
    registers,
    collect(this: Gauge<string> | Counter<string>) {
      fill(this);
    },
  };
  if (def.type === "gauge") new Gauge(options);
  else new Counter(options);
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

function isLoopback(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");
}

/** Throws the problem that refuses this scrape, if any. */
function checkScrapeAccess(
  request: FastifyRequest,
  access: { token?: string | undefined; public: boolean },
): void {
  if (access.token !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
    const challenge = { "www-authenticate": 'Bearer realm="metrics"' };
    if (!m)
      throw new ProblemError(
        401,
        "authentication-required",
        "/metrics requires its bearer token",
        {},
        challenge,
      );
    if (!timingSafeEqual(digest(m[1]!), digest(access.token)))
      throw new ProblemError(401, "invalid-credentials", "wrong metrics token", {}, challenge);
    return;
  }
  if (!access.public && !isLoopback(request.ip)) {
    throw new ProblemError(
      403,
      "forbidden",
      "/metrics is served to loopback clients only; set http.metrics.token or http.metrics.public",
    );
  }
}

/** GET /metrics. */
export function metricsEndpoint(): HttpPlugin {
  return {
    name: "metrics",
    register(app, ctx) {
      app.get("/metrics", async (request, reply) => {
        checkScrapeAccess(request, ctx.config.http.metrics);
        return reply.type(ctx.metrics.contentType).send(await ctx.metrics.text());
      });
    },
  };
}
