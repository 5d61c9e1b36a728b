/**
 * What the console pages need from the server, and the per-request helpers every console
 * page uses: the signed-in admin, the command context with the actor "console:<account>",
 * and rendering in the console layout.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CommandResult } from "../../core/commands.js";
import type { AccessPolicy, CutoffPreview } from "../../licensing/index.js";
import type { AdminAuth, AdminPrincipal } from "../admin-auth.js";
import type { NavLink } from "../assets/layout.js";
import { mountedRoute, type PageOptions, sendAreaPage } from "../assets/respond.js";
import { ProblemError } from "../problem.js";
import type { SessionStore } from "../sessions.js";
import { type CommandRunner, consoleCommand } from "./commands.js";

export interface ConsoleDeps extends CommandRunner {
  sessions: SessionStore;
  /** Console login and the admin check made on every console request. */
  auth: AdminAuth;
  /**
   * What a policy would cut off among this server's live sessions now (for the policy
   * editor's preview); absent: the preview uses today's accounts only.
   */
  previewCutoff?: (policy: AccessPolicy) => CutoffPreview;
  /** Messages received per minute, recently; undefined while not yet measured. */
  messagesPerMinute?: () => number | undefined;
}

export const CONSOLE = "/console";

export const CONSOLE_NAV: readonly NavLink[] = [
  { id: "dashboard", href: `${CONSOLE}`, label: "Dashboard" },
  { id: "applications", href: `${CONSOLE}/applications`, label: "Applications" },
  { id: "apps", href: `${CONSOLE}/apps`, label: "Apps & keys" },
  { id: "licences", href: `${CONSOLE}/licences`, label: "Licences" },
  { id: "links", href: `${CONSOLE}/links`, label: "Links" },
  { id: "policy", href: `${CONSOLE}/policy`, label: "Policy" },
  { id: "notices", href: `${CONSOLE}/notices`, label: "Notices" },
  { id: "accounts", href: `${CONSOLE}/accounts`, label: "Accounts" },
  { id: "mail", href: `${CONSOLE}/mail`, label: "Mail" },
  { id: "audit", href: `${CONSOLE}/audit`, label: "Audit log" },
];

/** The admin signed in on this request (the guard has checked it), or undefined. */
export function adminOf(request: FastifyRequest): AdminPrincipal | undefined {
  return request.admin;
}

export class ConsoleEnv {
  constructor(readonly deps: ConsoleDeps) {}

  /** Runs an admin command (validated by its own schema) as the signed-in admin. */
  run(request: FastifyRequest, name: string, raw: Record<string, unknown> = {}): Promise<CommandResult> {
    const admin = adminOf(request);
    if (!admin) throw new ProblemError(401, "authentication-required", "log in to the console first");
    return consoleCommand(this.deps, admin.actor, name, raw);
  }

  /** Runs a read-only command and returns its structured data. */
  async data<T>(request: FastifyRequest, name: string, raw: Record<string, unknown> = {}): Promise<T> {
    return (await this.run(request, name, raw)).data as T;
  }

  now(): number {
    return this.deps.clock.now();
  }

  page(request: FastifyRequest, reply: FastifyReply, opts: PageOptions): FastifyReply {
    const admin = adminOf(request);
    return sendAreaPage(
      request,
      reply,
      {
        area: "console",
        nav: admin ? CONSOLE_NAV : [],
        ...(admin ? { user: { label: admin.name, logoutAction: `${CONSOLE}/logout` } } : {}),
      },
      opts,
    );
  }
}

/** "2027-01-15T00:00" from a datetime-local input (which the console labels UTC) as an ISO instant. */
export function utcInstant(value: string): string {
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v)) return `${v}:00Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(v)) return `${v}Z`;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return `${v}T00:00:00Z`;
  return v;
}

/** An instant as the value of a datetime-local input, in UTC. */
export function utcInputValue(at: number | undefined): string {
  return at === undefined ? "" : new Date(at).toISOString().slice(0, 16);
}

/** A console path as a route of the console plugin, which Fastify mounts under /console. */
export function route(path: string): string {
  return mountedRoute(CONSOLE, path);
}

/** Whether any of the texts contains the query, ignoring case (the console's list searches). */
export function matchesQuery(q: string, ...texts: (string | undefined)[]): boolean {
  const needle = q.toLowerCase();
  return texts.some((t) => t?.toLowerCase().includes(needle));
}
