/**
 * Cookie sessions for the browser faces (portal and console), with CSRF protection.
 *
 * How pages use them (the request is a FastifyRequest, `ctx.sessions` the SessionStore):
 * - `request.session` is the session of the request's cookie, or undefined (loaded before
 *   any route runs; expired or unknown cookies count as none).
 * - `await ctx.sessions.ensure(request, reply)` returns the session, creating an anonymous
 *   one if needed. A page with a form calls it (even before login: login and sign-up forms
 *   are state-changing too) and renders `session.csrfToken` in a hidden field named
 *   `_csrf` (CSRF_FIELD), or sends it as the `X-CSRF-Token` header (CSRF_HEADER) from htmx
 *   (`hx-headers='{"X-CSRF-Token": "…"}'` on <body>).
 * - `await ctx.sessions.start(request, reply, { kind: "portal", id })` after a successful
 *   login: a new session id (the old session is deleted: no session fixation) and a new CSRF
 *   token. `await ctx.sessions.end(request, reply)` logs out. `endFor(user)` ends every
 *   session of a user (password reset, role revoked).
 * - `session.get(name)` / `session.set(name, value)` / `session.delete(name)`: small JSON
 *   values kept with the session (e.g. flash messages); saved before the response is sent.
 *
 * Every POST/PUT/PATCH/DELETE must carry the session's CSRF token, except requests that
 * authenticate with a valid API token in `Authorization: Bearer` (no ambient credential to
 * abuse; an unknown or revoked token does not replace the CSRF token) and routes registered
 * with `config: { csrf: false }`. A missing or wrong token gets a 403 problem
 * (`/problems/csrf-failed`).
 *
 * Cookie `sb_session`: HttpOnly, SameSite=Lax, Path=/, Secure when the request came over
 * HTTPS, no Max-Age (it ends with the browser). Stored in `documents("http-sessions")` under
 * the SHA-256 of the cookie value, so the database never holds a usable session id. A
 * session ends after `http.sessionIdleMinutes` without use or `http.sessionMaxHours` after
 * it began.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Clock } from "../core/clock.js";
import type { DocumentStore, Storage } from "../core/storage/types.js";
import { ProblemError } from "./problem.js";

export const SESSION_COOKIE = "sb_session";
export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "x-csrf-token";
export const SESSION_STORE = "http-sessions";

/** Who is logged in: a console admin (an XMPP account) or a portal publisher user. */
export interface SessionUser {
  kind: "console" | "portal";
  id: string;
}

interface StoredSession {
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  user?: SessionUser;
  data: Record<string, unknown>;
}

/** lastSeenAt is written back at most this often, so reading pages costs no write each time. */
const TOUCH_INTERVAL_MS = 60_000;

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

declare module "fastify" {
  interface FastifyRequest {
    /** The session of the request's cookie (see src/http/sessions.ts). */
    session: HttpSession | undefined;
  }
  interface FastifyContextConfig {
    /** false: this state-changing route does not check the CSRF token (it authenticates otherwise). */
    csrf?: boolean;
  }
}

export class HttpSession {
  /** Set when data or lastSeenAt changed and must be written back. */
  dirty = false;

  constructor(
    /** SHA-256 of the cookie value: the storage key. */
    readonly key: string,
    private readonly record: StoredSession,
  ) {}

  get csrfToken(): string {
    return this.record.csrf;
  }

  get user(): SessionUser | undefined {
    return this.record.user;
  }

  get createdAt(): number {
    return this.record.createdAt;
  }

  get<T = unknown>(name: string): T | undefined {
    return this.record.data[name] as T | undefined;
  }

  set(name: string, value: unknown): void {
    this.record.data[name] = value;
    this.dirty = true;
  }

  delete(name: string): void {
    if (!(name in this.record.data)) return;
    delete this.record.data[name];
    this.dirty = true;
  }

  /** The stored form (for the store). */
  toRecord(): StoredSession {
    return this.record;
  }

  touch(now: number): void {
    if (now - this.record.lastSeenAt >= TOUCH_INTERVAL_MS) {
      this.record.lastSeenAt = now;
      this.dirty = true;
    }
  }
}

function hashId(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a request carries a valid API token (which may stand in for the CSRF token). */
export type BearerCheck = (request: FastifyRequest) => Promise<boolean>;

export interface SessionStoreOptions {
  storage: Storage;
  clock: Clock;
  idleMs: number;
  maxMs: number;
}

export class SessionStore {
  private readonly docs: DocumentStore<StoredSession>;

  constructor(private readonly opts: SessionStoreOptions) {
    this.docs = opts.storage.documents<StoredSession>(SESSION_STORE);
  }

  private expired(r: StoredSession, now: number): boolean {
    return now - r.lastSeenAt > this.opts.idleMs || now - r.createdAt > this.opts.maxMs;
  }

  /** The live session of a cookie value, or undefined. */
  async load(cookieValue: string): Promise<HttpSession | undefined> {
    if (cookieValue.length < 20 || cookieValue.length > 100) return undefined;
    const key = hashId(cookieValue);
    const record = await this.docs.get(key);
    if (!record) return undefined;
    const now = this.opts.clock.now();
    if (this.expired(record, now)) {
      await this.docs.delete(key);
      return undefined;
    }
    const session = new HttpSession(key, record);
    session.touch(now);
    return session;
  }

  /** A new session (after login: a new id and CSRF token), replacing the request's current one. */
  async start(request: FastifyRequest, reply: FastifyReply, user?: SessionUser): Promise<HttpSession> {
    if (request.session) await this.docs.delete(request.session.key);
    const id = randomBytes(32).toString("base64url");
    const now = this.opts.clock.now();
    const record: StoredSession = {
      csrf: randomBytes(32).toString("base64url"),
      createdAt: now,
      lastSeenAt: now,
      ...(user ? { user } : {}),
      data: {},
    };
    const session = new HttpSession(hashId(id), record);
    await this.docs.put(session.key, record);
    reply.setCookie(SESSION_COOKIE, id, {
      path: "/",
      httpOnly: true,
      sameSite: "lax",
      secure: request.protocol === "https",
    });
    request.session = session;
    return session;
  }

  /** The request's session, or a new anonymous one (for forms shown before login). */
  async ensure(request: FastifyRequest, reply: FastifyReply): Promise<HttpSession> {
    return request.session ?? this.start(request, reply);
  }

  /** Logs out: deletes the session and clears the cookie. */
  async end(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.session) await this.docs.delete(request.session.key);
    request.session = undefined;
    reply.clearCookie(SESSION_COOKIE, { path: "/" });
  }

  /** Ends every session of a user (password changed, admin role revoked); returns how many. */
  async endFor(user: SessionUser): Promise<number> {
    let n = 0;
    for (const { key, value } of await this.docs.list()) {
      if (value.user?.kind === user.kind && value.user.id === user.id) {
        if (await this.docs.delete(key)) n++;
      }
    }
    return n;
  }

  async save(session: HttpSession): Promise<void> {
    session.dirty = false;
    await this.docs.put(session.key, session.toRecord());
  }

  /** Deletes expired sessions; returns how many. */
  async prune(): Promise<number> {
    const now = this.opts.clock.now();
    let n = 0;
    for (const { key, value } of await this.docs.list()) {
      if (this.expired(value, now) && (await this.docs.delete(key))) n++;
    }
    return n;
  }

  /**
   * Loads `request.session` from the cookie before routes run, checks the CSRF token of
   * state-changing requests, and writes changed sessions back before the response goes.
   * Needs @fastify/cookie registered on the same instance first. `validBearer` tells whether
   * a request's `Authorization: Bearer` token is a valid API token (without it, none is).
   */
  install(app: FastifyInstance, validBearer: BearerCheck = async () => false): void {
    app.decorateRequest("session", undefined);
    app.addHook("onRequest", async (request) => {
      const id = request.cookies[SESSION_COOKIE];
      request.session = id ? await this.load(id) : undefined;
    });
    app.addHook("preHandler", async (request) => {
      if (SAFE_METHODS.has(request.method) || request.is404) return;
      if (request.routeOptions.config.csrf === false) return;
      if (/^Bearer\s/i.test(request.headers.authorization ?? "") && (await validBearer(request))) return;
      const header = request.headers[CSRF_HEADER];
      const body = request.body as Record<string, unknown> | undefined;
      const given =
        typeof header === "string"
          ? header
          : body && typeof body === "object" && typeof body[CSRF_FIELD] === "string"
            ? (body[CSRF_FIELD] as string)
            : undefined;
      const session = request.session;
      if (!session) throw new ProblemError(403, "csrf-failed", "no session: reload the page and try again");
      if (given === undefined)
        throw new ProblemError(
          403,
          "csrf-failed",
          `missing CSRF token (field ${CSRF_FIELD} or header X-CSRF-Token)`,
        );
      if (!sameToken(given, session.csrfToken))
        throw new ProblemError(403, "csrf-failed", "the CSRF token does not match this session");
    });
    app.addHook("onSend", async (request, _reply, payload) => {
      if (request.session?.dirty) await this.save(request.session);
      return payload;
    });
  }
}
