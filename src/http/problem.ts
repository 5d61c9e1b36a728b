/**
 * RFC 9457 problem details: every error the HTTP listener returns is an
 * `application/problem+json` document with `type`, `title`, `status`, `detail`
 * and `instance`, plus extension members where they help the caller (the field
 * paths of a validation error, the methods a path allows). Problem types are
 * relative URIs under /problems/ that resolve to a short description served by
 * this same listener.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { commandErrorOf } from "../core/commands.js";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** The problem types of this server: slug → what the document at /problems/<slug> says. */
export const PROBLEM_TYPES = {
  "validation-error":
    "The request's input did not pass validation; `errors` lists each field path and message.",
  "authentication-required":
    "The request needs credentials: an API token (Authorization: Bearer sbt_…) or a console session.",
  "invalid-credentials": "The token, user name or password is not valid.",
  "token-revoked": "The API token was revoked; create a new one with `switchboard token create`.",
  forbidden: "The credentials are valid but do not allow this request.",
  "csrf-failed":
    "A state-changing browser request must carry the session's CSRF token (form field `_csrf` or header X-CSRF-Token).",
  "not-found": "Nothing exists at this path, or the named object does not exist.",
  "method-not-allowed": "The path exists but not with this method; `allow` lists the methods it accepts.",
  conflict: "The request conflicts with the current state (e.g. a name that is already taken).",
  "too-many-requests": "Too many attempts; wait `retryAfter` seconds.",
  "payload-too-large": "The request body is larger than the server accepts.",
  "unsupported-media-type": "The request body's content type is not accepted here.",
  "bad-request": "The request could not be read (malformed JSON, bad query string).",
  "internal-error": "The server failed; the event is logged with the request id given here.",
  "service-unavailable": "The server cannot serve the request now (e.g. its storage does not answer).",
} as const;

export type ProblemType = keyof typeof PROBLEM_TYPES;

const TITLES: Record<ProblemType, string> = {
  "validation-error": "Invalid input",
  "authentication-required": "Authentication required",
  "invalid-credentials": "Invalid credentials",
  "token-revoked": "Token revoked",
  forbidden: "Forbidden",
  "csrf-failed": "CSRF check failed",
  "not-found": "Not found",
  "method-not-allowed": "Method not allowed",
  conflict: "Conflict",
  "too-many-requests": "Too many requests",
  "payload-too-large": "Payload too large",
  "unsupported-media-type": "Unsupported media type",
  "bad-request": "Bad request",
  "internal-error": "Internal server error",
  "service-unavailable": "Service unavailable",
};

/** One invalid field: `path` is the dotted field path ("stage.0", "" for the whole input). */
export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Throw from a route (or hook) to answer with a problem document. */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly problemType: ProblemType,
    detail: string,
    /** Extension members, e.g. `{ errors: FieldError[] }`. */
    readonly extensions: Record<string, unknown> = {},
    /** Response headers that belong with it (WWW-Authenticate, Allow, Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = "ProblemError";
  }
}

export function problemTypeUri(type: ProblemType): string {
  return `/problems/${type}`;
}

/** The default problem type of an HTTP status. */
export function typeForStatus(status: number): ProblemType {
  switch (status) {
    case 400:
      return "bad-request";
    case 401:
      return "authentication-required";
    case 403:
      return "forbidden";
    case 404:
      return "not-found";
    case 405:
      return "method-not-allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload-too-large";
    case 415:
      return "unsupported-media-type";
    case 422:
      return "validation-error";
    case 429:
      return "too-many-requests";
    case 503:
      return "service-unavailable";
    default:
      return status >= 500 ? "internal-error" : "bad-request";
  }
}

export function problemDocument(
  request: FastifyRequest,
  status: number,
  type: ProblemType,
  detail: string | undefined,
  extensions: Record<string, unknown> = {},
): ProblemDocument {
  return {
    type: problemTypeUri(type),
    title: TITLES[type],
    status,
    ...(detail !== undefined ? { detail } : {}),
    instance: request.url.split("?")[0],
    ...extensions,
  };
}

/** Answers with a problem document. */
export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  err: Pick<ProblemError, "status" | "problemType" | "message" | "extensions" | "headers">,
): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply
    .code(err.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemDocument(request, err.status, err.problemType, err.message, err.extensions));
}

/** The problem for an error thrown anywhere in a request: ours, a command's, Fastify's, or a bug. */
export function problemFromError(err: unknown, request: FastifyRequest): ProblemError {
  if (err instanceof ProblemError) return err;
  const refused = commandErrorOf(err);
  if (refused) return new ProblemError(refused.status, typeForStatus(refused.status), refused.message);
  const fe = err as Partial<FastifyError> & { statusCode?: number };
  const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
  if (status === 429) {
    // @fastify/rate-limit has already set Retry-After.
    return new ProblemError(429, "too-many-requests", fe.message ?? "rate limit exceeded");
  }
  if (status >= 400 && status < 500) {
    if (fe.validation) {
      const errors: FieldError[] = fe.validation.map((v) => ({
        path: (v.instancePath ?? "").replace(/^\//, "").replaceAll("/", "."),
        message: v.message ?? "invalid",
      }));
      return new ProblemError(400, "validation-error", fe.message ?? "invalid input", { errors });
    }
    return new ProblemError(status, typeForStatus(status), fe.message ?? "bad request");
  }
  return new ProblemError(500, "internal-error", `internal error (request ${request.id})`);
}

/** Patterns of the registered routes, to tell a 405 from a 404. */
class RouteIndex {
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];
  private readonly byUrl = new Map<string, Set<string>>();

  add(url: string, methods: string | string[]): void {
    let set = this.byUrl.get(url);
    if (!set) {
      set = new Set();
      this.byUrl.set(url, set);
      const source = url
        .split("/")
        .map((part) =>
          part === "*"
            ? ".*"
            : part.startsWith(":")
              ? "[^/]+"
              : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\\\*$/, ".*"),
        )
        .join("/");
      this.routes.push({ pattern: new RegExp(`^${source}/?$`), methods: set });
    }
    for (const m of Array.isArray(methods) ? methods : [methods]) set.add(m.toUpperCase());
  }

  /** Methods some route accepts for this path (empty when no route matches it). */
  allowed(path: string): string[] {
    const out = new Set<string>();
    for (const r of this.routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m);
    return [...out].sort();
  }
}

/**
 * Makes every error of the instance a problem document: thrown errors, unknown
 * paths (404) and known paths with the wrong method (405 with Allow). Also serves
 * the descriptions of the problem types at /problems/<type>.
 */
export function installProblemHandling(app: FastifyInstance): void {
  const index = new RouteIndex();
  app.addHook("onRoute", (route) => index.add(route.url, route.method));

  app.setErrorHandler((err, request, reply) => {
    const problem = problemFromError(err, request);
    if (problem.status >= 500) request.log.error({ err }, "request failed");
    return sendProblem(request, reply, problem);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0]!;
    const allowed = index.allowed(path);
    if (allowed.length > 0) {
      return sendProblem(
        request,
        reply,
        new ProblemError(
          405,
          "method-not-allowed",
          `${request.method} is not allowed on ${path}`,
          { allow: allowed },
          { allow: allowed.join(", ") },
        ),
      );
    }
    return sendProblem(request, reply, new ProblemError(404, "not-found", `nothing at ${path}`));
  });

  app.get<{ Params: { type: string } }>("/problems/:type", async (request, reply) => {
    const type = request.params.type;
    if (!Object.hasOwn(PROBLEM_TYPES, type))
      throw new ProblemError(404, "not-found", `no problem type ${type}`);
    const t = type as ProblemType;
    return reply
      .type("application/json")
      .send({ type: problemTypeUri(t), title: TITLES[t], description: PROBLEM_TYPES[t] });
  });
}
