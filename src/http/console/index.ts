/**
 * The admin console (/console): an HttpPlugin. Every page but the login page is for
 * accounts holding the admin role (checked on each request); others are sent to the login
 * page, or refused (403) when logged in to the portal or no longer an admin. Scripts and
 * API clients get RFC 9457 problems instead of pages.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { MessageRate } from "../../core/message-rate.js";
import type { AccessPolicy, CutoffPreview, LicensingSnapshot } from "../../licensing/index.js";
import { observedClient, previewCutoff, type SessionEntry } from "../../licensing/index.js";
import { licensingApi } from "../../modules/licensing/index.js";
import { errorBody, installPageErrors } from "../assets/errors.js";
import { layout } from "../assets/layout.js";
import { redirect, wantsHtml } from "../assets/respond.js";
import type { HttpContext, HttpPlugin } from "../context.js";
import { ProblemError } from "../problem.js";
import { registerAccounts } from "./accounts.js";
import { AdoptionHistory } from "./adoption.js";
import { registerApplications } from "./applications.js";
import { registerApps } from "./apps.js";
import { registerAudit } from "./audit.js";
import { registerDashboard } from "./dashboard.js";
import { CONSOLE, CONSOLE_NAV, type ConsoleDeps, ConsoleEnv } from "./env.js";
import { registerLicences } from "./licences.js";
import { registerLinks } from "./links.js";
import { registerLogin } from "./login.js";
import { registerMail } from "./mail.js";
import { registerNotices } from "./notices.js";
import { registerPolicy } from "./policy.js";

/** Routes anyone may reach (relative to /console). */
const PUBLIC_ROUTES = new Set(["/login", "/logout"]);

/**
 * What the licensing rules would cut off among the bound sessions now (in a cluster, every
 * node's: what their nodes told the directory of their clients), under `policy`, against the
 * registry snapshot enforcement applies (the statistics' own evaluation).
 */
function livePreview(ctx: HttpContext, snapshot: () => LicensingSnapshot) {
  return (policy: AccessPolicy): CutoffPreview => {
    const { sessions } = ctx.services;
    const entries: SessionEntry[] = [];
    for (const s of sessions.all()) {
      if (s.username !== undefined && !s.closed)
        entries.push({ account: s.username, client: observedClient(s) });
    }
    for (const p of sessions.peers?.all() ?? []) {
      entries.push({ account: p.username, client: { verified: false, ...p.client } });
    }
    return previewCutoff(entries, snapshot(), policy, ctx.services.clock.now());
  };
}

export function consoleDeps(ctx: HttpContext, rate: MessageRate): ConsoleDeps {
  const { services } = ctx;
  const licensing = licensingApi(services.apis);
  return {
    config: ctx.config,
    storage: services.storage,
    clock: services.clock,
    live: ctx.live,
    commands: ctx.commands,
    runCommand: (words, input, actor) => ctx.runCommand(words, input, actor),
    sessions: ctx.sessions,
    auth: ctx.auth,
    // Live sessions only carry client records when the licensing module is loaded.
    ...(licensing ? { previewCutoff: livePreview(ctx, () => licensing.snapshot()) } : {}),
    messagesPerMinute: () => rate.perMinute(),
  };
}

function installGuard(app: FastifyInstance, env: ConsoleEnv): void {
  app.addHook("preHandler", async (request: FastifyRequest, reply) => {
    const url = request.routeOptions.url ?? "";
    const relative = url.startsWith(CONSOLE) ? url.slice(CONSOLE.length) || "/" : url;
    if (PUBLIC_ROUTES.has(relative) || request.is404) return;
    const admin = await env.deps.auth.adminOf(request);
    if (admin) {
      request.admin = admin;
      return;
    }
    const user = request.session?.user;
    if (!wantsHtml(request) || user?.kind === "portal" || user?.kind === "console") {
      if (user?.kind === "portal") {
        throw new ProblemError(
          403,
          "forbidden",
          "The console is for the network's administrators; you are logged in to the publisher portal.",
        );
      }
      if (user?.kind === "console") {
        throw new ProblemError(403, "forbidden", `${user.id} no longer holds the admin role.`);
      }
      await env.deps.auth.authenticate(request); // throws the 401/403 problem
      return;
    }
    const next = request.method === "GET" ? request.url : CONSOLE;
    return redirect(request, reply, `${CONSOLE}/login?next=${encodeURIComponent(next)}`, {
      kind: "info",
      text: "Please log in to continue.",
    });
  });
}

export function consolePages(options: { deps?: (ctx: HttpContext) => ConsoleDeps } = {}): HttpPlugin {
  return {
    name: "console",
    prefix: CONSOLE,
    links: [
      {
        id: "console",
        href: CONSOLE,
        label: "Admin console",
        description: "for the network's administrators: accounts, licences, policy, notices, mail",
      },
    ],
    register(app, ctx) {
      const rate = new MessageRate(
        () => ctx.services.counters.stanzasIn.message,
        () => ctx.services.clock.now(),
      );
      const deps = options.deps ? options.deps(ctx) : consoleDeps(ctx, rate);
      const env = new ConsoleEnv(deps);
      rate.start();
      app.addHook("onClose", async () => rate.stop());
      installPageErrors(app, async (request, opts) =>
        layout({
          title: opts.title,
          area: "console",
          nav: request.admin ? CONSOLE_NAV : [],
          ...(request.admin
            ? { user: { label: request.admin.name, logoutAction: `${CONSOLE}/logout` } }
            : {}),
          ...(request.session ? { csrfToken: request.session.csrfToken } : {}),
          body: errorBody(opts, request.admin ? CONSOLE : `${CONSOLE}/login`),
        }),
      );
      installGuard(app, env);
      registerLogin(app, env);
      registerDashboard(app, env, new AdoptionHistory(deps.storage, deps.clock));
      registerApplications(app, env);
      registerApps(app, env);
      registerLicences(app, env);
      registerLinks(app, env);
      registerPolicy(app, env);
      registerNotices(app, env);
      registerAccounts(app, env);
      registerMail(app, env);
      registerAudit(app, env);
    },
  };
}
