/**
 * The versioned JSON admin API under /api/v1, generated from the command definitions:
 * `GET /api/v1/<words>` with query parameters for commands that only read
 * (`GET /api/v1/licence/list?app=com.example.chat`), `POST /api/v1/<words>` with a JSON
 * body for those that change state (`POST /api/v1/user/add {"name":…,"password":…}`).
 * Answers `{ message, data }`, or a problem document. Also: the OpenAPI document, a
 * health check, and console login/logout for browser clients.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CommandDefinition } from "../../core/commands.js";
import type { HttpContext, HttpPlugin } from "../context.js";
import { ProblemError, sendProblem } from "../problem.js";
import { API_PREFIX, openApiDocument, outputSchema, outputSchemaName, outputSchemaPath } from "./openapi.js";
import { rawInput, runCommand, unknownFields } from "./run.js";

function commandRoute(ctx: HttpContext, def: CommandDefinition<never>) {
  return async (request: FastifyRequest) => {
    const raw = rawInput(def.mutates ? request.body : request.query);
    const unknown = unknownFields(def, raw);
    if (unknown.length > 0) {
      throw new ProblemError(
        400,
        "validation-error",
        unknown.map((e) => `${e.path}: ${e.message}`).join("; "),
        { errors: unknown },
      );
    }
    const admin = request.admin!;
    const { config, storage, clock } = ctx.services;
    const result = await runCommand({ config, storage, clock, live: ctx.live }, def, raw, admin.actor);
    return { message: result.message, ...(result.data !== undefined ? { data: result.data } : {}) };
  };
}

function sessionView(request: FastifyRequest) {
  const s = request.session;
  return { user: s?.user ?? null, ...(s ? { csrfToken: s.csrfToken } : {}) };
}

async function login(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply) {
  // JSON only: a cross-site form cannot send it, so this route needs no CSRF token.
  if (!/^application\/json\b/i.test(request.headers["content-type"] ?? "")) {
    throw new ProblemError(415, "unsupported-media-type", "send the credentials as application/json");
  }
  const body = (request.body ?? {}) as Record<string, unknown>;
  const errors = ["username", "password"]
    .filter((k) => typeof body[k] !== "string" || body[k] === "")
    .map((path) => ({ path, message: "expected a non-empty string" }));
  if (errors.length > 0)
    throw new ProblemError(400, "validation-error", "username and password are required", { errors });
  const result = await ctx.auth.loginConsole(
    request,
    reply,
    body.username as string,
    body.password as string,
  );
  if (!result.ok) {
    const retry = result.retryAfterSeconds;
    return sendProblem(
      request,
      reply,
      new ProblemError(
        result.status,
        result.status === 429 ? "too-many-requests" : "invalid-credentials",
        result.message,
        retry !== undefined ? { retryAfter: retry } : {},
        retry !== undefined ? { "retry-after": String(retry) } : {},
      ),
    );
  }
  return sessionView(request);
}

export function adminApi(): HttpPlugin {
  return {
    name: "admin-api",
    prefix: API_PREFIX,
    links: [
      {
        id: "api",
        href: `${API_PREFIX}/openapi.json`,
        label: "Admin API",
        description: "the OpenAPI document of the JSON API (an API token or a console login is needed)",
      },
      {
        id: "status",
        href: `${API_PREFIX}/health`,
        label: "Server status",
        description: "health check: storage answering, uptime, sessions",
      },
    ],
    register(app, ctx) {
      for (const def of ctx.commands) {
        app.route({
          method: def.mutates ? "POST" : "GET",
          url: `/${def.name.join("/")}`,
          preValidation: ctx.auth.requireAdmin,
          handler: commandRoute(ctx, def),
        });
      }

      let document: unknown;
      app.get("/openapi.json", async () => {
        document ??= openApiDocument(ctx.commands, ctx.publicUrl || undefined);
        return document;
      });

      // The layout of every command's --json output (and its API answer's data), beside the
      // OpenAPI document, which refers to them.
      const schemas = new Map(
        ctx.commands.flatMap((def) => {
          const schema = outputSchema(def);
          return schema ? [[outputSchemaName(def), schema] as const] : [];
        }),
      );
      app.get("/schemas", async () => ({
        schemas: ctx.commands
          .filter((def) => schemas.has(outputSchemaName(def)))
          .map((def) => ({ command: def.name.join(" "), href: outputSchemaPath(def) })),
      }));
      app.get<{ Params: { name: string } }>("/schemas/:name", async (request) => {
        const name = request.params.name.replace(/\.json$/, "");
        const schema = schemas.get(name);
        if (!schema) throw new ProblemError(404, "not-found", `no output schema ${request.params.name}`);
        return schema;
      });

      app.get("/health", async (request, reply) => {
        const { storage, clock, config, sessions } = ctx.services;
        try {
          await storage.documents("http-sessions").count({ prefix: "\u0000" });
        } catch (err) {
          request.log.error({ err }, "health check: storage failed");
          throw new ProblemError(503, "service-unavailable", "storage does not answer");
        }
        return reply.send({
          status: "ok",
          domain: config.domain,
          uptimeSeconds: Math.round((clock.now() - started) / 1000),
          sessions: sessions.count,
        });
      });
      const started = ctx.services.clock.now();

      app.get("/session", async (request) => sessionView(request));
      app.post(
        "/session/login",
        { config: { csrf: false, rateLimit: { max: 30, timeWindow: "1 minute" } } },
        (request, reply) => login(ctx, request, reply),
      );
      app.post("/session/logout", async (request, reply) => {
        await ctx.sessions.end(request, reply);
        return reply.code(204).send();
      });
    },
  };
}
