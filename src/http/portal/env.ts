/**
 * What the publisher portal pages need, and the per-request helpers they share: the
 * signed-in portal account (checked on every request: it must exist, be confirmed and
 * enabled, and the session must be newer than its last password change), the publisher it
 * acts for, and rendering in the portal layout.
 */

import type { FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import type { Clock } from "../../core/clock.js";
import type { ServerConfig } from "../../core/config.js";
import type { Storage } from "../../core/storage/types.js";
import type { Programme } from "../../programme/index.js";
import type { PortalAccountView } from "../../programme/model.js";
import { RateLimited } from "../../programme/rate-limits.js";
import type { NavLink } from "../assets/layout.js";
import { mountedRoute, type PageOptions, sendAreaPage } from "../assets/respond.js";
import type { HttpContext } from "../context.js";
import type { LoginThrottle } from "../login-throttle.js";
import { ProblemError } from "../problem.js";
import type { SessionStore } from "../sessions.js";

export const PORTAL = "/portal";

export interface PortalDeps {
  config: ServerConfig;
  storage: Storage;
  clock: Clock;
  sessions: SessionStore;
  programme: Programme;
  /** Runs an admin command as the server does (key registration goes through `app key add`). */
  runCommand: HttpContext["runCommand"];
  /** The web's failed-login budget per address, shared with the console. */
  logins: LoginThrottle;
  /** Called for every refused portal login, for the metrics. */
  loginRefused: () => void;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The portal account signed in on this request (set by the portal's guard). */
    portalAccount: PortalAccountView | undefined;
  }
}

const NAV_IN: readonly NavLink[] = [
  { id: "home", href: PORTAL, label: "Overview" },
  { id: "applications", href: `${PORTAL}/applications`, label: "Applications" },
  { id: "apply", href: `${PORTAL}/apply`, label: "Apply" },
  { id: "notices", href: `${PORTAL}/notices`, label: "Notices" },
  { id: "account", href: `${PORTAL}/account`, label: "Account" },
];

const NAV_OUT: readonly NavLink[] = [
  { id: "login", href: `${PORTAL}/login`, label: "Log in" },
  { id: "signup", href: `${PORTAL}/signup`, label: "Sign up" },
];

/** A portal path as a route of the portal plugin, which Fastify mounts under /portal. */
export function route(path: string): string {
  return mountedRoute(PORTAL, path);
}

/** The programme's rate limits as a 429 problem (page or document) with Retry-After. */
export function translateError(err: unknown): unknown {
  if (err instanceof RateLimited) {
    const seconds = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
    return new ProblemError(
      429,
      "too-many-requests",
      `Too many attempts. Please wait ${count(Math.ceil(seconds / 60), "minute")} and try again.`,
      { retryAfter: seconds },
      { "retry-after": String(seconds) },
    );
  }
  return err;
}

export class PortalEnv {
  constructor(readonly deps: PortalDeps) {}

  /** The account behind the request's session, if it may still act. */
  async accountOf(request: FastifyRequest): Promise<PortalAccountView | undefined> {
    const session = request.session;
    const user = session?.user;
    if (!session || user?.kind !== "portal") return undefined;
    const account = await this.deps.programme.accounts.get(user.id);
    if (!account || account.disabled || !account.emailVerified) return undefined;
    // A password reset or change ends the sessions opened before it.
    if (session.createdAt < account.passwordChangedAt) return undefined;
    return account;
  }

  /** The signed-in account (the guard has checked it). */
  account(request: FastifyRequest): PortalAccountView {
    const a = request.portalAccount;
    if (!a) throw new ProblemError(401, "authentication-required", "log in to the portal first");
    return a;
  }

  actor(request: FastifyRequest): string {
    return `portal:${this.account(request).id}`;
  }

  page(request: FastifyRequest, reply: FastifyReply, opts: PageOptions): FastifyReply {
    const account = request.portalAccount;
    return sendAreaPage(
      request,
      reply,
      {
        area: "portal",
        nav: account ? NAV_IN : NAV_OUT,
        ...(account ? { user: { label: account.email, logoutAction: `${PORTAL}/logout` } } : {}),
      },
      opts,
    );
  }
}
