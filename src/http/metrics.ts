/**
 * Prometheus metrics (prom-client) at GET /metrics: process and event-loop figures
 * (default metrics), client connections and sessions, sessions by client app, version
 * and verification (from the licensing module's record of each session, when it is
 * loaded), stanzas in and out, routing, SASL and web login failures, licence refusals by
 * reason, storage latency and HTTP requests. Most values are read from counters the
 * server keeps anyway, at scrape time, so the hot paths pay nothing for them.
 *
 * Access: with `http.metrics.token` set, a request must send `Authorization: Bearer
 * <token>`; otherwise only loopback clients are served, unless `http.metrics.public`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import type { C2SCounters } from "../c2s/counters.js";
import type { ServerServices } from "../core/module.js";
import type { TransportKind } from "../core/session.js";
import { licensingApi } from "../modules/licensing/index.js";
import { supportShare } from "../modules/licensing/stats-evaluate.js";
import { type ObservedClient, observedClient, statusOf } from "../modules/licensing/stats-model.js";
import type { HttpPlugin } from "./context.js";
import { ProblemError } from "./problem.js";
import type { StorageTiming } from "./storage-timing.js";

/** Most app/version series exported; the rest are summed under app="other" (client names can be anything). */
const MAX_CLIENT_SERIES = 200;
const MAX_LABEL_LENGTH = 64;

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
  services: ServerServices & { counters: C2SCounters };
  /** The open client connections (before and after authentication). */
  connections(): Iterable<{ transport: TransportKind }>;
  storageTiming?: StorageTiming;
}

function label(v: string | undefined): string {
  if (v === undefined) return "";
  return v.length > MAX_LABEL_LENGTH ? v.slice(0, MAX_LABEL_LENGTH) : v;
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
        for (const c of sources.connections()) by.set(c.transport, (by.get(c.transport) ?? 0) + 1);
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
    new Gauge({
      name: "switchboard_client_sessions",
      help: "Bound sessions by client app, version and verification (licensing module)",
      labelNames: ["app", "version", "verification"],
      registers: r,
      collect() {
        this.reset();
        if (!licensingApi(svc.apis)) return;
        const rows = new Map<string, { app: string; version: string; verification: string; n: number }>();
        for (const s of svc.sessions.all()) {
          if (s.closed) continue;
          const c = observedClient(s);
          const app = label(c.clientId);
          const version = label(c.version);
          const verification = statusOf(c);
          const key = `${app}\u0000${version}\u0000${verification}`;
          const row = rows.get(key);
          if (row) row.n++;
          else rows.set(key, { app, version, verification, n: 1 });
        }
        const sorted = [...rows.values()].sort((a, b) => b.n - a.n);
        const other = new Map<string, number>();
        sorted.forEach((row, i) => {
          if (i < MAX_CLIENT_SERIES)
            this.set({ app: row.app, version: row.version, verification: row.verification }, row.n);
          else other.set(row.verification, (other.get(row.verification) ?? 0) + row.n);
        });
        for (const [verification, n] of other) this.set({ app: "other", version: "", verification }, n);
      },
    });
    new Gauge({
      name: "switchboard_online_accounts_supported",
      help: "Online accounts whose every session runs a licensed client at or above its minimum version (licensing module)",
      registers: r,
      collect() {
        this.reset();
        const api = licensingApi(svc.apis);
        if (!api) return;
        const byAccount = new Map<string, ObservedClient[]>();
        for (const s of svc.sessions.all()) {
          if (s.closed || s.username === undefined) continue;
          const list = byAccount.get(s.username);
          if (list) list.push(observedClient(s));
          else byAccount.set(s.username, [observedClient(s)]);
        }
        const snap = api.snapshot();
        this.set(supportShare(byAccount, snap, snap.policy, svc.clock.now()).supportedAccounts);
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
      help: "Failed logins to the web console and portal",
      labelNames: ["face"],
      registers: r,
    });

    new Counter({
      name: "switchboard_licence_refusals_total",
      help: "Clients refused by the licensing policy, by reason; stage=login (before the session) or live (closed later)",
      labelNames: ["reason", "stage"],
      registers: r,
      collect() {
        this.reset();
        const api = licensingApi(svc.apis);
        if (!api) return;
        const c = api.counters();
        const login = new Map<string, number>(Object.entries(c.proofsRefused) as [string, number][]);
        login.set("unlicensed-client", (login.get("unlicensed-client") ?? 0) + c.unlicensedRefused);
        for (const [reason, n] of login) this.inc({ reason, stage: "login" }, n);
        for (const [reason, n] of Object.entries(c.sessionsClosed))
          this.inc({ reason, stage: "live" }, n ?? 0);
      },
    });
    new Counter({
      name: "switchboard_licence_proofs_total",
      help: "Licence proofs received, by result",
      labelNames: ["result"],
      registers: r,
      collect() {
        this.reset();
        const api = licensingApi(svc.apis);
        if (!api) return;
        const c = api.counters();
        const refused = Object.values(c.proofsRefused).reduce((a, b) => a + (b ?? 0), 0);
        this.inc({ result: "accepted" }, c.proofsAccepted);
        this.inc({ result: "refused" }, refused);
        this.inc({ result: "rate_limited" }, c.proofsRateLimited);
      },
    });
    new Counter({
      name: "switchboard_licence_tickets_total",
      help: "Licence tickets: issued after signed proofs, accepted in place of a signature, refused (expired or replaced key)",
      labelNames: ["event"],
      registers: r,
      collect() {
        const c = licensingApi(svc.apis)?.counters();
        setCounter(
          this,
          c
            ? [
                [{ event: "issued" }, c.ticketsIssued],
                [{ event: "accepted" }, c.ticketProofsAccepted],
                [{ event: "refused" }, c.ticketsRefused],
              ]
            : [],
        );
      },
    });
    new Gauge({
      name: "switchboard_licence_key_addresses",
      help: "Distinct client addresses each app key proved its licence from in the current window (modules.licensing.keyAddressWindowMinutes); a sudden rise suggests an extracted key",
      labelNames: ["client_id", "key_id"],
      registers: r,
      collect() {
        this.reset();
        const api = licensingApi(svc.apis);
        if (!api) return;
        for (const f of api.keyAddresses()) this.set({ client_id: f.clientId, key_id: f.keyId }, f.addresses);
      },
    });
    new Counter({
      name: "switchboard_licence_key_address_alerts_total",
      help: "Times an app key passed modules.licensing.keyAddressAlert distinct addresses in one window",
      registers: r,
      collect() {
        const c = licensingApi(svc.apis)?.counters();
        setCounter(this, c ? [[{}, c.keyAddressAlerts]] : []);
      },
    });
    new Counter({
      name: "switchboard_licence_warnings_total",
      help: "Warning headlines sent to accounts on unlicensed clients (warn mode)",
      registers: r,
      collect() {
        this.reset();
        const api = licensingApi(svc.apis);
        if (api) this.inc(api.counters().warningsSent);
      },
    });

    if (sources.storageTiming) this.registry.registerMetric(sources.storageTiming as unknown as Metric);

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
