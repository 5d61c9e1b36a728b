/**
 * Replies of the browser pages: full documents with security headers, flash messages kept
 * in the session across a redirect, redirects that htmx follows as a full navigation, and
 * form bodies read as plain string fields.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Renderable } from "../html.js";
import { documentString, type SafeHtml } from "../html.js";
import type { HttpSession } from "../sessions.js";
import { type Flash, type LayoutOptions, layout, type PageScript } from "./layout.js";

const FLASH_KEY = "flash";

/**
 * Our pages load scripts and styles from /assets only (no inline code), so this policy
 * stops injected markup from running anything even if escaping were ever missed.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

export function isHtmx(request: FastifyRequest): boolean {
  return request.headers["hx-request"] === "true";
}

/**
 * Whether an error should be a page (a browser navigating or submitting a form, or htmx)
 * rather than an RFC 9457 problem document (scripts, fetch with Accept: application/json).
 */
export function wantsHtml(request: FastifyRequest): boolean {
  if (isHtmx(request)) return true;
  const accept = request.headers.accept ?? "";
  if (/application\/(problem\+)?json/.test(accept) && !/text\/html/.test(accept)) return false;
  if (/text\/html/.test(accept)) return true;
  return (request.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
}

export function sendPage(reply: FastifyReply, page: SafeHtml, status = 200): FastifyReply {
  return reply
    .code(status)
    .type("text/html; charset=utf-8")
    .header("content-security-policy", CONTENT_SECURITY_POLICY)
    .header("x-content-type-options", "nosniff")
    .header("referrer-policy", "same-origin")
    .header("cache-control", "no-store")
    .send(documentString(page));
}

/** An HTML fragment for htmx to swap in. */
export function sendFragment(reply: FastifyReply, fragment: SafeHtml, status = 200): FastifyReply {
  return reply
    .code(status)
    .type("text/html; charset=utf-8")
    .header("x-content-type-options", "nosniff")
    .header("cache-control", "no-store")
    .send(fragment.value);
}

export function addFlash(session: HttpSession | undefined, flash: Flash): void {
  if (!session) return;
  const list = session.get<Flash[]>(FLASH_KEY) ?? [];
  session.set(FLASH_KEY, [...list, flash].slice(-5));
}

/** The flash messages waiting in the session; reading them removes them. */
export function takeFlashes(session: HttpSession | undefined): Flash[] {
  if (!session) return [];
  const list = session.get<Flash[]>(FLASH_KEY);
  if (!list) return [];
  session.delete(FLASH_KEY);
  return Array.isArray(list) ? list : [];
}

/**
 * After a successful POST: 303 to the next page (Post/Redirect/Get). For htmx the redirect
 * is an HX-Redirect header, so the browser loads the whole next page (with its flash).
 */
export function redirect(
  request: FastifyRequest,
  reply: FastifyReply,
  url: string,
  flash?: Flash,
): FastifyReply {
  if (flash) addFlash(request.session, flash);
  if (isHtmx(request)) return reply.code(200).header("hx-redirect", url).send("");
  return reply.code(303).header("location", url).send("");
}

export type FormBody = Record<string, string | string[]>;

/** The urlencoded body as fields; anything else (JSON, nothing) reads as no fields. */
export function formBody(request: FastifyRequest): FormBody {
  const body = request.body;
  if (!body || typeof body !== "object" || Array.isArray(body)) return {};
  const out: FormBody = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v === "string") out[k] = v;
    else if (Array.isArray(v)) out[k] = v.filter((x): x is string => typeof x === "string");
  }
  return out;
}

/** One text field of a form body (the first when repeated). */
export function field(body: FormBody, name: string): string {
  const v = body[name];
  return (Array.isArray(v) ? (v[0] ?? "") : (v ?? "")).trim();
}

/** A repeatable field (checkboxes) as a list. */
export function fields(body: FormBody, name: string): string[] {
  const v = body[name];
  return (v === undefined ? [] : Array.isArray(v) ? v : [v]).map((s) => s.trim()).filter((s) => s !== "");
}

/** Only local paths, so a ?next= parameter cannot send the user to another site. */
export function safeNext(next: unknown, fallback: string, prefix: string): string {
  if (typeof next !== "string") return fallback;
  if (!next.startsWith(prefix) || next.startsWith("//") || /[\\\r\n]/.test(next)) return fallback;
  return next;
}

/** What a page of the portal or the console gives to be rendered. */
export interface PageOptions {
  title: string;
  /** The nav link id of this page. */
  current?: string;
  body: Renderable;
  scripts?: PageScript[];
  flashes?: Flash[];
  status?: number;
}

/**
 * Sends a page in its area's layout, with what the request's session adds: the CSRF token
 * and the flashes kept for this page.
 */
export function sendAreaPage(
  request: FastifyRequest,
  reply: FastifyReply,
  area: Pick<LayoutOptions, "area" | "nav" | "user">,
  opts: PageOptions,
): FastifyReply {
  const page = layout({
    title: opts.title,
    area: area.area,
    nav: area.nav,
    ...(opts.current ? { current: opts.current } : {}),
    ...(area.user ? { user: area.user } : {}),
    ...(request.session ? { csrfToken: request.session.csrfToken } : {}),
    flashes: [...takeFlashes(request.session), ...(opts.flashes ?? [])],
    ...(opts.scripts ? { scripts: opts.scripts } : {}),
    body: opts.body,
  });
  return sendPage(reply, page, opts.status ?? 200);
}

/** A path under `prefix` as a route of the plugin Fastify mounts at `prefix`. */
export function mountedRoute(prefix: string, path: string): string {
  if (path !== prefix && !path.startsWith(`${prefix}/`)) throw new Error(`${path} is not under ${prefix}`);
  return path === prefix ? "/" : path.slice(prefix.length);
}
