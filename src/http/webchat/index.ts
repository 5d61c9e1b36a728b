/**
 * The web chat for people without an XMPP client: /chat serves Converse.js (the npm
 * package's dist files, under /chat/assets/) started by a few lines of ours (start.js) for
 * this server's WebSocket endpoint and domain. Each page load gets a first-party grant
 * (grants.ts) in a cookie; `recognise` tells the licensing module that a WebSocket
 * connection carrying a live grant with the page's own Origin is this web chat, so it
 * keeps working under an `enforce` policy (docs/licensing-protocol.md §8 says what that
 * path allows and what it does not).
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyRequest } from "fastify";
import type { ClientSession } from "../../core/session.js";
import { escapeAttr } from "../../core/xml/element.js";
import { licensingApi } from "../../modules/licensing/index.js";
import type { HttpContext, HttpPlugin } from "../context.js";
import { WebChatGrants } from "./grants.js";

export const WEB_CHAT_PATH = "/chat";
export const GRANT_COOKIE = "sb_webchat";

/**
 * Converse.js styles its elements with inline style attributes and <style> elements it
 * creates (lit), so styles need 'unsafe-inline'; scripts need nothing beyond 'self' (no
 * eval; OMEMO, which would need 'wasm-unsafe-eval', is left out). Avatars and previews
 * come as data: and blob: URLs.
 */
export const WEB_CHAT_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

const require = createRequire(import.meta.url);
const CONVERSE_DIST = path.dirname(require.resolve("converse.js/dist/converse.min.js"));
const CONVERSE_VERSION = (
  JSON.parse(readFileSync(path.join(CONVERSE_DIST, "..", "package.json"), "utf8")) as { version: string }
).version;

/** start.js lives beside this module in src (tsc copies only .ts). */
function startScript(): Buffer {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, path.resolve(here, "../../../../src/http/webchat")]) {
    const file = path.join(dir, "start.js");
    if (existsSync(file)) return readFileSync(file);
  }
  throw new Error(`start.js of the web chat is in neither ${here} nor the source tree`);
}

function page(domain: string, startVersion: string): string {
  const d = escapeAttr(domain);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat on ${d}</title>
<link rel="icon" href="${WEB_CHAT_PATH}/assets/images/favicon.ico">
<link rel="stylesheet" href="${WEB_CHAT_PATH}/assets/converse.min.css">
<script type="module" src="${WEB_CHAT_PATH}/start.js?v=${startVersion}"></script>
</head>
<body class="converse-fullscreen" data-domain="${d}">
<noscript>The web chat needs JavaScript. Any XMPP client works too: log in as you@${d}.</noscript>
</body>
</html>
`;
}

export interface WebChat {
  plugin: HttpPlugin;
  /** For the WebSocket endpoint: admits a connection of this web chat as a first-party client. */
  recognise(request: FastifyRequest, session: ClientSession): void;
}

export function webChat(): WebChat {
  let ctx: HttpContext | undefined;
  let grants: WebChatGrants | undefined;

  const plugin: HttpPlugin = {
    name: "web-chat",
    prefix: WEB_CHAT_PATH,
    links: [
      {
        id: "chat",
        href: WEB_CHAT_PATH,
        label: "Web chat",
        description: "Chat in the browser with your account, no client to install.",
      },
    ],
    async register(app, context) {
      ctx = context;
      const options = context.config.http.webChat;
      const ttlMs = options.grantMinutes * 60_000;
      grants = new WebChatGrants({ ttlMs, now: () => context.services.clock.now() });
      const start = startScript();
      const startVersion = createHash("sha256").update(start).digest("hex").slice(0, 12);
      const html = page(context.config.domain, startVersion);

      app.get("", async (request, reply) => {
        const id = grants!.issue(request.ip);
        return reply
          .setCookie(GRANT_COOKIE, id, {
            path: "/xmpp-websocket",
            httpOnly: true,
            sameSite: "strict",
            secure: request.protocol === "https",
            maxAge: Math.ceil(ttlMs / 1000),
          })
          .header("content-security-policy", WEB_CHAT_CSP)
          .header("cache-control", "no-store")
          .type("text/html; charset=utf-8")
          .send(html);
      });
      app.get("/start.js", async (_request, reply) =>
        reply
          .type("text/javascript; charset=utf-8")
          .header("cache-control", "no-cache")
          .header("x-content-type-options", "nosniff")
          .send(start),
      );
      await app.register(fastifyStatic, {
        root: CONVERSE_DIST,
        prefix: "/assets/",
        decorateReply: false,
        maxAge: "1d",
      });
    },
  };

  return {
    plugin,
    recognise(request, session) {
      if (!ctx || !grants || !ctx.config.http.webChat.firstParty) return;
      const licensing = licensingApi(ctx.services.apis);
      if (!licensing) return;
      // Only the page itself: a browser always sends the Origin of the page that opens a
      // WebSocket, so another site's page cannot ride on the grant (nor send the cookie: SameSite).
      if (request.headers.origin !== `${request.protocol}://${request.host}`) return;
      const grant = grants.use(request.cookies[GRANT_COOKIE], request.ip);
      if (!grant) return;
      licensing.admitFirstParty(session, { version: CONVERSE_VERSION, allows: grant.allows });
    },
  };
}
