/**
 * The HTTP(S) listener: one Fastify instance on `httpPort` carrying the admin API, the
 * metrics, the portal and console pages and, later, XMPP over WebSocket, each an
 * HttpPlugin (see context.ts). HTTPS with the server's certificate when one is configured
 * (`tls.certFile`/`keyFile`; `http.tls` overrides), plain HTTP otherwise. Started and
 * stopped by SwitchboardServer.
 */

import net from "node:net";
import type { SecureContext, Server as TlsServer } from "node:tls";
import cookie from "@fastify/cookie";
import formbody from "@fastify/formbody";
import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import type { CommandDefinition } from "../core/commands.js";
import type { CoreServices } from "../core/services.js";
import { hostForUrl, listenOnAddresses } from "../transports/listen.js";
import { AdminAuth } from "./admin-auth.js";
import { AdminStore } from "./admin-store.js";
import { findCommand, runCommand } from "./api/run.js";
import type { HttpContext, HttpPlugin } from "./context.js";
import { Live } from "./live.js";
import { LoginThrottle } from "./login-throttle.js";
import { ServerMetrics } from "./metrics.js";
import { installProblemHandling, ProblemError } from "./problem.js";
import { SessionStore } from "./sessions.js";
import type { StorageTiming } from "./storage-timing.js";

export interface HttpServerOptions {
  services: CoreServices;
  /** The open client streams, for metrics. */
  streams: { readonly open: Iterable<{ readonly transportKind: string }> };
  /** The admin commands offered (local-only ones are left out). */
  commands: readonly CommandDefinition<never>[];
  /** The certificate served over HTTPS. */
  tls?:
    | {
        certPem: string;
        keyPem: string;
        selfSigned: boolean;
        /** Each served domain's certificate for the name the client asks for (SNI). */
        SNICallback?: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
        /** Told when the certificates were reloaded (certPem and keyPem then read the new ones). */
        onChange?: (listener: () => void) => void;
      }
    | undefined;
  storageTiming?: StorageTiming;
}

/** Sent with every response; pages may set a stricter or looser Content-Security-Policy themselves. */
const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
};
const DEFAULT_CSP =
  "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const PRUNE_INTERVAL_MS = 10 * 60_000;

export class HttpServer {
  readonly app: FastifyInstance;
  readonly context: HttpContext;
  private readonly plugins: HttpPlugin[] = [];
  private prepared?: Promise<void>;
  private pruneTimer?: NodeJS.Timeout;
  private port?: number;
  private baseUrl = "";
  /** The addresses listening, the first one Fastify's own server's. */
  private bound: string[] = [];
  /** Listeners on the further addresses of `bind`, handing their connections to Fastify's server. */
  private readonly extraListeners: net.Server[] = [];

  constructor(private readonly opts: HttpServerOptions) {
    const { services } = opts;
    const { config, storage, clock, log } = services;
    const secure = useHttps(config.http.tls, opts.tls);
    this.app = Fastify({
      loggerInstance: log.child({ component: "http" }),
      // Requests are counted in metrics; logging each one would drown the server's log.
      logController: new LogController({ disableRequestLogging: true }),
      trustProxy: config.http.trustProxy,
      ...(secure && opts.tls
        ? {
            https: {
              cert: opts.tls.certPem,
              key: opts.tls.keyPem,
              minVersion: "TLSv1.2" as const,
              ...(opts.tls.SNICallback ? { SNICallback: opts.tls.SNICallback } : {}),
            },
          }
        : {}),
    }) as unknown as FastifyInstance;
    const certificates = opts.tls;
    if (secure && certificates?.onChange) {
      // A client without SNI gets the server's own context: renewed with the files.
      certificates.onChange(() =>
        (this.app.server as unknown as TlsServer).setSecureContext({
          cert: certificates.certPem,
          key: certificates.keyPem,
          minVersion: "TLSv1.2",
        }),
      );
    }

    const sessions = new SessionStore({
      storage,
      clock,
      idleMs: config.http.sessionIdleMinutes * 60_000,
      maxMs: config.http.sessionMaxHours * 3_600_000,
    });
    const adminStore = new AdminStore(storage, clock);
    const metrics = new ServerMetrics({
      services,
      connections: () => opts.streams.open,
      ...(opts.storageTiming ? { storageTiming: opts.storageTiming } : {}),
    });
    // One budget of failed password logins per address for every web face (console and portal).
    const logins = new LoginThrottle(config.limits, clock);
    const auth = new AdminAuth({
      store: adminStore,
      sessions,
      storage,
      clock,
      throttle: logins,
      loginRefused: () => metrics.webLoginFailures.inc({ face: "console" }),
      scramIterations: config.scramIterations,
      domains: config,
    });
    const live = new Live(services.sessions, services.apis);
    const commands = opts.commands.filter((c) => !c.local);
    const self = this;
    this.context = {
      config,
      services,
      live,
      sessions,
      auth,
      adminStore,
      metrics,
      logins,
      commands,
      get publicUrl() {
        return self.baseUrl;
      },
      secure,
      get links() {
        return self.plugins.flatMap((p) => p.links ?? []);
      },
      runCommand: (words, input, actor) => {
        const def = findCommand(commands, words);
        if (!def) throw new ProblemError(404, "not-found", `no command ${words.join(" ")}`);
        return runCommand({ config, storage, clock, live }, def, input, actor);
      },
    };
  }

  /** Adds a plugin; only before the server is prepared (listen or ready). */
  register(plugin: HttpPlugin): this {
    if (this.prepared) throw new Error(`HTTP plugin ${plugin.name} registered after the server started`);
    this.plugins.push(plugin);
    return this;
  }

  /** Installs the shared behaviour and every plugin; idempotent. */
  ready(): Promise<void> {
    this.prepared ??= this.prepare();
    return this.prepared;
  }

  private async prepare(): Promise<void> {
    const app = this.app;
    const ctx = this.context;
    installProblemHandling(app);
    await app.register(cookie);
    await app.register(formbody);
    await app.register(rateLimit, { global: false });
    ctx.sessions.install(app, (request) => ctx.auth.hasValidToken(request));
    app.decorateRequest("admin", undefined);
    app.addHook("onSend", async (request, reply, payload) => {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(k)) reply.header(k, v);
      if (!reply.hasHeader("content-security-policy")) reply.header("content-security-policy", DEFAULT_CSP);
      if (request.protocol === "https" && !reply.hasHeader("strict-transport-security"))
        reply.header("strict-transport-security", "max-age=31536000");
      return payload;
    });
    app.addHook("onResponse", async (request, reply) => {
      ctx.metrics.httpRequests.inc({
        method: request.method,
        route: request.routeOptions.url ?? "unmatched",
        status: String(reply.statusCode),
      });
    });
    for (const plugin of this.plugins) {
      await app.register(
        async (scope) => plugin.register(scope, ctx),
        plugin.prefix ? { prefix: plugin.prefix } : {},
      );
    }
    await app.ready();
    this.pruneTimer = setInterval(() => {
      ctx.sessions.prune().catch((err) => app.log.warn({ err }, "pruning HTTP sessions failed"));
    }, PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  /**
   * Listens on `httpPort` at every `bind` address; returns the port (useful when 0 asked for
   * a free one in tests). Fastify's server listens on the first address; the others accept
   * connections and hand them to it, so every request (and WebSocket upgrade) is served the same.
   */
  async listen(port: number): Promise<number> {
    await this.ready();
    const { config, log } = this.opts.services;
    const listening = await listenOnAddresses(
      config.bind,
      port,
      async (host, p) => {
        if (!this.app.server.listening) {
          await this.app.listen({ port: p, host });
          return (this.app.server.address() as net.AddressInfo).port;
        }
        const extra = net.createServer((socket) => this.app.server.emit("connection", socket));
        await new Promise<void>((resolve, reject) => {
          extra.once("error", reject);
          extra.listen({ port: p, host }, () => {
            extra.off("error", reject);
            resolve();
          });
        });
        this.extraListeners.push(extra);
        return p;
      },
      log,
      "HTTP",
    );
    this.port = listening.port;
    this.bound = listening.addresses;
    const base =
      config.http.publicUrl ?? defaultPublicUrl(this.context.secure, config.domain, this.bound, this.port);
    this.baseUrl = base.replace(/\/+$/, "");
    return this.port;
  }

  /** The URL of the listener as bound (scheme, first listen address, port). */
  get url(): string | undefined {
    if (this.port === undefined) return undefined;
    return `${this.context.secure ? "https" : "http"}://${hostForUrl(this.bound[0]!)}:${this.port}`;
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    // A listener's close waits for the connections it accepted, which Fastify's own close ends.
    const extras = this.extraListeners.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())));
    await this.app.close();
    await Promise.all(extras);
  }
}

/** HTTPS when asked ("on"), or by default when a real certificate is configured (not the self-signed one). */
function useHttps(mode: "auto" | "on" | "off", tls: { selfSigned: boolean } | undefined): boolean {
  if (!tls || mode === "off") return false;
  return mode === "on" || !tls.selfSigned;
}

/** The URL people reach a listener at when `http.publicUrl` is not configured. */
export function defaultPublicUrl(
  secure: boolean,
  domain: string,
  bind: readonly string[],
  port: number,
): string {
  const scheme = secure ? "https" : "http";
  const standard = (secure && port === 443) || (!secure && port === 80);
  // Served on loopback, the domain name would not reach it: the first listen address does.
  const first = bind[0] ?? "";
  const host = first === "127.0.0.1" || first === "::1" ? hostForUrl(first) : domain;
  return `${scheme}://${host}${standard ? "" : `:${port}`}`;
}
