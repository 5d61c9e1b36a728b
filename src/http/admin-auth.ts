/**
 * Admin authentication over HTTP, two ways:
 * - an API token: `Authorization: Bearer sbt_…` (created with `switchboard token create`);
 *   the actor recorded in audit logs is `api:<token name>`;
 * - a console session: an XMPP account holding the admin role logged in with its XMPP
 *   password (checked against its stored SCRAM credentials); the actor is
 *   `console:<account>`. The role and the account are checked again on every request,
 *   so revoking the role or disabling the account takes effect at once.
 *
 * For pages (src/http/console): `await ctx.auth.adminOf(request)` → the principal or
 * undefined (to redirect to the login page); `ctx.auth.requireAdmin` as a preHandler → 401
 * or 403 problem when not an admin; `await ctx.auth.loginConsole(request, reply, name,
 * password)` → `{ ok: true, principal }` (a new session cookie is set) or `{ ok: false,
 * status: 401 | 429, message, retryAfterSeconds? }` to show on the form.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { accountName } from "../commands/account-names.js";
import type { Clock } from "../core/clock.js";
import { CommandError } from "../core/commands.js";
import type { ServerConfig } from "../core/config.js";
import { deriveCredentials, verifyPasswordAsync } from "../core/sasl/credentials.js";
import type { ScramCredential, Storage } from "../core/storage/types.js";
import type { AdminStore } from "./admin-store.js";
import type { LoginThrottle } from "./login-throttle.js";
import { ProblemError } from "./problem.js";
import type { SessionStore } from "./sessions.js";

export interface AdminPrincipal {
  /** For audit logs and commands: "api:<token name>" or "console:<account>". */
  actor: string;
  via: "token" | "console";
  /** The token name or the account name. */
  name: string;
}

export type ConsoleLoginResult =
  | { ok: true; principal: AdminPrincipal }
  | { ok: false; status: 401 | 429; message: string; retryAfterSeconds?: number };

declare module "fastify" {
  interface FastifyRequest {
    /** Set by AdminAuth.requireAdmin on admin routes. */
    admin: AdminPrincipal | undefined;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const CHALLENGE = { "www-authenticate": 'Bearer realm="switchboard"' };
const INVALID_LOGIN = "invalid user name or password, or the account is not an administrator";

export interface AdminAuthOptions {
  store: AdminStore;
  sessions: SessionStore;
  storage: Storage;
  clock: Clock;
  /** Failed logins per address and per account (shared with the portal's login). */
  throttle: LoginThrottle;
  /** Called for every refused console login (wrong credentials or throttled), for the metrics. */
  loginRefused?: () => void;
  scramIterations: number;
  /** The served domains: a console login names "alice" on the primary domain or "alice@host". */
  domains: Pick<ServerConfig, "domain" | "hosts">;
}

export class AdminAuth {
  readonly throttle: LoginThrottle;
  /** Checked for unknown accounts, so a login takes as long whether or not the account exists. */
  private readonly decoy: ScramCredential;

  constructor(private readonly opts: AdminAuthOptions) {
    this.throttle = opts.throttle;
    this.decoy = deriveCredentials("decoy password", {
      iterations: opts.scramIterations,
      hashes: ["SHA-256"],
    })[0]!;
  }

  /**
   * Who the request acts for. Throws a 401 problem without credentials or with an unknown
   * token, a 403 problem for a revoked token or a console user who is no longer an admin.
   */
  async authenticate(request: FastifyRequest): Promise<AdminPrincipal> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const m = BEARER.exec(header);
      if (!m) {
        throw new ProblemError(
          401,
          "invalid-credentials",
          "expected Authorization: Bearer <token>",
          {},
          CHALLENGE,
        );
      }
      const check = await this.opts.store.checkToken(m[1]!);
      if (check.kind === "unknown")
        throw new ProblemError(401, "invalid-credentials", "unknown API token", {}, CHALLENGE);
      if (check.kind === "revoked")
        throw new ProblemError(403, "token-revoked", `the API token ${check.record.name} was revoked`);
      return { actor: `api:${check.record.name}`, via: "token", name: check.record.name };
    }
    const user = request.session?.user;
    if (user?.kind === "console") {
      if (await this.stillAdmin(user.id))
        return { actor: `console:${user.id}`, via: "console", name: user.id };
      throw new ProblemError(403, "forbidden", `${user.id} no longer holds the admin role`);
    }
    throw new ProblemError(
      401,
      "authentication-required",
      "an API token (Authorization: Bearer …) or a console login is required",
      {},
      CHALLENGE,
    );
  }

  /** Does the request carry a valid (known, not revoked) API token in `Authorization: Bearer`? */
  async hasValidToken(request: FastifyRequest): Promise<boolean> {
    const m = BEARER.exec(request.headers.authorization ?? "");
    return m !== null && (await this.opts.store.checkToken(m[1]!)).kind === "valid";
  }

  /** The admin behind the request, or undefined (no credentials, revoked, not an admin). */
  async adminOf(request: FastifyRequest): Promise<AdminPrincipal | undefined> {
    try {
      return await this.authenticate(request);
    } catch (err) {
      if (err instanceof ProblemError) return undefined;
      throw err;
    }
  }

  /** preHandler for admin-only routes: sets `request.admin` or answers 401/403. */
  readonly requireAdmin = async (request: FastifyRequest): Promise<void> => {
    request.admin = await this.authenticate(request);
  };

  private async stillAdmin(username: string): Promise<boolean> {
    if (!(await this.opts.store.isAdmin(username))) return false;
    const account = await this.opts.storage.accounts.get(username);
    return account !== undefined && !account.disabled;
  }

  /**
   * Console login with an XMPP account's password. On success the request gets a new
   * session (new id and CSRF token) for `{ kind: "console", id: account }`. The same
   * answer is given for a wrong password, an unknown account and a non-admin, so the
   * form cannot be used to probe accounts or roles.
   */
  async loginConsole(
    request: FastifyRequest,
    reply: FastifyReply,
    rawUsername: string,
    password: string,
  ): Promise<ConsoleLoginResult> {
    const address = request.ip;
    let username: string | undefined;
    try {
      username = accountName(rawUsername.trim(), this.opts.domains);
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
    }
    const wait = this.throttle.retryAfterMs(address, username);
    if (wait > 0) {
      this.opts.loginRefused?.();
      const retryAfterSeconds = Math.ceil(wait / 1000);
      return {
        ok: false,
        status: 429,
        message: `too many failed logins; try again in ${retryAfterSeconds} s`,
        retryAfterSeconds,
      };
    }
    const account = username === undefined ? undefined : await this.opts.storage.accounts.get(username);
    const credential =
      account?.credentials.find((c) => c.hash === "SHA-256") ?? account?.credentials[0] ?? this.decoy;
    const passwordOk = await verifyPasswordAsync(password, credential);
    const admitted =
      passwordOk &&
      account !== undefined &&
      !account.disabled &&
      credential !== this.decoy &&
      (await this.opts.store.isAdmin(account.username));
    if (!admitted || username === undefined) {
      this.throttle.failed(address, username);
      this.opts.loginRefused?.();
      request.log.info({ account: username, address }, "console login refused");
      return { ok: false, status: 401, message: INVALID_LOGIN };
    }
    this.throttle.succeeded(username);
    await this.opts.sessions.start(request, reply, { kind: "console", id: username });
    const principal: AdminPrincipal = { actor: `console:${username}`, via: "console", name: username };
    request.admin = principal;
    return { ok: true, principal };
  }
}
