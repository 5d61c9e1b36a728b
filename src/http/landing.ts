/**
 * The listener's front door, `GET /`: for a browser a small page linking to what the other
 * parts offer people (the portal, the console, the API document, the server's status, later
 * the web chat — each plugin declares its own `links`), with the way to connect an XMPP
 * client; for an API client (no text/html in Accept) the same as JSON.
 */
import { assetUrl } from "./assets/files.js";
import { sendPage, wantsHtml } from "./assets/respond.js";
import type { HttpContext, HttpPlugin } from "./context.js";
import { html } from "./html.js";

/** Something a part of the web layer offers people, listed on the landing page. */
export interface LandingLink {
  /** Stable key in the JSON answer, e.g. "portal". */
  id: string;
  href: string;
  label: string;
  description: string;
}

function page(ctx: HttpContext, links: readonly LandingLink[]) {
  const { config, services } = ctx;
  const sessions = services.sessions.count;
  return html`<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${config.domain} · Switchboard</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="${assetUrl("style.css")}">
</head>
<body data-area="home">
  <main id="main" class="landing">
    <h1>Switchboard <span class="muted">· ${config.domain}</span></h1>
    <p data-testid="landing-summary">This instant-messaging server is running: ${
      sessions === 1 ? "1 session" : `${sessions} sessions`
    } online.</p>
    <ul class="landing-links" data-testid="landing-links">
      ${links.map(
        (l) =>
          html`<li><a href="${l.href}" data-testid="landing-${l.id}">${l.label}</a><span class="muted">${l.description}</span></li>`,
      )}
    </ul>
    <h2>Chat</h2>
    <p>Use any XMPP client (Gajim, Conversations, Dino, profanity…) with an account <code>name@${config.domain}</code>${
      ctx.config.c2sPort ? html`, port ${ctx.config.c2sPort} (STARTTLS)` : ""
    }.</p>
  </main>
</body>
</html>`;
}

export function landingPage(): HttpPlugin {
  return {
    name: "landing",
    register(app, ctx) {
      app.get("/", async (request, reply) => {
        const links = ctx.links;
        if (wantsHtml(request)) return sendPage(reply, page(ctx, links));
        return {
          name: "Switchboard",
          domain: ctx.config.domain,
          links: Object.fromEntries(links.map((l) => [l.id, `${ctx.publicUrl}${l.href}`])),
        };
      });
    },
  };
}
