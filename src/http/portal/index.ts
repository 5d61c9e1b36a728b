/**
 * The publisher portal (/portal): an HttpPlugin. The start page and the account pages
 * (sign up, confirm, log in, reset) are open; everything else needs a signed-in portal
 * account — others are sent to the login page, scripts get a 401 problem.
 */
import type { FastifyInstance } from "fastify";
import { Programme } from "../../programme/index.js";
import { errorBody, installPageErrors } from "../assets/errors.js";
import { layout } from "../assets/layout.js";
import { redirect, wantsHtml } from "../assets/respond.js";
import type { HttpContext, HttpPlugin } from "../context.js";
import { ProblemError } from "../problem.js";
import { defaultPublicUrl } from "../server.js";
import { registerAccount } from "./account.js";
import { registerApplications } from "./applications.js";
import { registerApps } from "./apps.js";
import { registerAuth } from "./auth.js";
import { registerDocuments } from "./documents.js";
import { PORTAL, type PortalDeps, PortalEnv, translateError } from "./env.js";
import { registerHome } from "./home.js";
import { registerNotices } from "./notices.js";

/** Routes anyone may reach (relative to /portal). */
const PUBLIC_ROUTES = new Set([
  "/",
  "/signup",
  "/verify",
  "/verify/resend",
  "/login",
  "/logout",
  "/reset",
  "/terms",
  "/guide",
  "/guide/sdk",
  "/guide/files/*",
]);

function installGuard(app: FastifyInstance, env: PortalEnv): void {
  app.decorateRequest("portalAccount", undefined);
  app.addHook("preHandler", async (request, reply) => {
    request.portalAccount = await env.accountOf(request);
    const url = request.routeOptions.url ?? "";
    const relative = url.startsWith(PORTAL) ? url.slice(PORTAL.length) || "/" : url;
    if (request.portalAccount || PUBLIC_ROUTES.has(relative) || request.is404) return;
    if (!wantsHtml(request))
      throw new ProblemError(401, "authentication-required", "log in to the portal first");
    const next = request.method === "GET" ? request.url : PORTAL;
    return redirect(request, reply, `${PORTAL}/login?next=${encodeURIComponent(next)}`, {
      kind: "info",
      text: "Please log in to continue.",
    });
  });
}

export interface PortalOptions {
  /**
   * The server's programme (accounts, applications, notices, mail outbox). Without it the
   * plugin makes one over the server's storage and runs its mail worker while the HTTP
   * server runs.
   */
  programme?: (ctx: HttpContext) => Programme;
}

export function portalPages(options: PortalOptions = {}): HttpPlugin {
  return {
    name: "portal",
    prefix: PORTAL,
    links: [
      {
        id: "portal",
        href: PORTAL,
        label: "Publisher portal",
        description: "for makers of client apps: apply for a licence, manage the app's keys, read notices",
      },
    ],
    register(app, ctx) {
      const { services } = ctx;
      let programme: Programme;
      if (options.programme) {
        programme = options.programme(ctx);
      } else {
        const own = new Programme({
          storage: services.storage,
          clock: services.clock,
          config: ctx.config,
          log: services.log.child({ component: "programme" }),
          // The listener's own URL (its real port) once it listens; the configuration's before.
          publicUrl: () =>
            ctx.publicUrl ||
            (ctx.config.http.publicUrl ??
              defaultPublicUrl(ctx.secure, ctx.config.domain, ctx.config.bind, ctx.config.httpPort)),
        });
        app.addHook("onReady", async () => own.start());
        app.addHook("onClose", async () => own.stop());
        programme = own;
      }
      const deps: PortalDeps = {
        config: ctx.config,
        storage: services.storage,
        clock: services.clock,
        sessions: ctx.sessions,
        programme,
        runCommand: (words, input, actor) => ctx.runCommand(words, input, actor),
        logins: ctx.logins,
        loginRefused: () => ctx.metrics.webLoginFailures.inc({ face: "portal" }),
      };
      const env = new PortalEnv(deps);
      installPageErrors(
        app,
        async (request, opts) =>
          layout({
            title: opts.title,
            area: "portal",
            nav: [],
            ...(request.portalAccount
              ? { user: { label: request.portalAccount.email, logoutAction: `${PORTAL}/logout` } }
              : {}),
            ...(request.session ? { csrfToken: request.session.csrfToken } : {}),
            body: errorBody(opts, PORTAL),
          }),
        translateError,
      );
      installGuard(app, env);
      registerHome(app, env);
      registerDocuments(app, env);
      registerAuth(app, env);
      registerAccount(app, env);
      registerApplications(app, env);
      registerApps(app, env);
      registerNotices(app, env);
    },
  };
}
