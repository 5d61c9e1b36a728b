/**
 * What a part of the web layer (the admin API, metrics, the portal and console pages,
 * later XMPP over WebSocket) is given, and how it plugs in.
 *
 * A part is an HttpPlugin: `register(app, ctx)` adds its routes and hooks to its own
 * encapsulated Fastify scope (under `prefix` when given). Plugins are passed to
 * `SwitchboardServer.start(config, { http: { plugins } })` (the standard list is
 * `standardHttpPlugins` in src/http/index.ts) or to `HttpServer.register()` before it
 * listens. Every scope inherits the server-wide behaviour: problem details for errors,
 * cookies (@fastify/cookie), form bodies (@fastify/formbody), `request.session` and the
 * CSRF check, opt-in rate limits (`config: { rateLimit: { max, timeWindow } }` on a route,
 * @fastify/rate-limit), and security headers.
 */
import type { FastifyInstance } from "fastify";
import type { CommandDefinition, CommandResult } from "../core/commands.js";
import type { ServerConfig } from "../core/config.js";
import type { CoreServices } from "../core/services.js";
import type { AdminAuth } from "./admin-auth.js";
import type { AdminStore } from "./admin-store.js";
import type { LandingLink } from "./landing.js";
import type { Live } from "./live.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { ServerMetrics } from "./metrics.js";
import type { SessionStore } from "./sessions.js";

export interface HttpContext {
  readonly config: ServerConfig;
  /** The server's services (storage, clock, log, sessions, router, module APIs, …). */
  readonly services: CoreServices;
  /** Live sessions of accounts: list, kick, disconnect. */
  readonly live: Live;
  /** Browser sessions and CSRF tokens (see sessions.ts). */
  readonly sessions: SessionStore;
  /** Admin authentication: API tokens and console logins (see admin-auth.ts). */
  readonly auth: AdminAuth;
  readonly adminStore: AdminStore;
  /** The metrics registry; plugins may add metrics of their own to `metrics.registry`. */
  readonly metrics: ServerMetrics;
  /**
   * Failed password logins on the web, by address (shared by every face: a client spraying
   * passwords over the portal and the console uses one budget) and by console account.
   */
  readonly logins: LoginThrottle;
  /** Every admin command the web faces offer (the CLI's, without the local-only ones). */
  readonly commands: readonly CommandDefinition<never>[];
  /** The base URL users reach this listener at (links in mails), without a trailing slash. */
  readonly publicUrl: string;
  /** True when the listener serves HTTPS. */
  readonly secure: boolean;
  /** The links the registered plugins offer people (for the landing page). */
  readonly links: readonly LandingLink[];
  /**
   * Runs an admin command exactly as the API does: `words` like ["licence", "suspend"],
   * input validated by the command's schema (throws ProblemError 400 with `errors`), the
   * live server available, `actor` recorded ("console:<account>"). A refusal throws
   * CommandError (status 400/404/409).
   */
  runCommand(words: readonly string[], input: Record<string, unknown>, actor: string): Promise<CommandResult>;
}

declare module "../core/module.js" {
  interface ModuleContributions {
    /** Routes a module serves on the HTTP listener (e.g. XMPP over WebSocket). */
    http: HttpPlugin;
  }
}

export interface HttpPlugin {
  /** For logs and errors. */
  readonly name: string;
  /** URL prefix of every route of the plugin, e.g. "/portal". */
  readonly prefix?: string;
  /** What the plugin offers people, listed on the landing page (`GET /`). */
  readonly links?: readonly LandingLink[];
  register(app: FastifyInstance, ctx: HttpContext): void | Promise<void>;
}
