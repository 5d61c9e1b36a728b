/**
 * The one page layout of the portal and the console: skip link, header with the
 * navigation and the signed-in user, main, footer. Scripts are files of our own
 * (no inline script), so pages can be served with a strict Content-Security-Policy.
 */
import { html, type Renderable, type SafeHtml } from "../html.js";
import { assetUrl } from "./files.js";

export type Area = "portal" | "console";

export interface NavLink {
  /** Stable id, also the data-testid of the link ("nav-<id>"). */
  id: string;
  href: string;
  label: string;
}

export type FlashKind = "success" | "error" | "info" | "warning";

export interface Flash {
  kind: FlashKind;
  text: string;
}

/** Extra scripts a page needs besides htmx and the shared one. */
export type PageScript = "chart" | "dashboard" | "keys";

export interface LayoutOptions {
  /** What the page is; the document title adds the area's name. */
  title: string;
  area: Area;
  nav: readonly NavLink[];
  /** The nav link id of this page. */
  current?: string;
  /** The signed-in user, with where the log-out form posts. */
  user?: { label: string; logoutAction: string };
  csrfToken?: string;
  flashes?: readonly Flash[];
  scripts?: readonly PageScript[];
  body: Renderable;
}

const AREA_NAMES: Record<Area, string> = {
  portal: "Switchboard publisher portal",
  console: "Switchboard console",
};

const SCRIPT_FILES: Record<PageScript, string[]> = {
  chart: ["chart.umd.min.js"],
  dashboard: ["chart.umd.min.js", "dashboard.js"],
  keys: ["keys.js"],
};

/**
 * htmx settings: no inline indicator styles (they would need 'unsafe-inline'); `style` is not
 * among the attributes carried over while a swap settles, because htmx carries it with
 * setAttribute, which the CSP refuses (the dashboard's refresh swapped charts whose canvas
 * Chart.js had styled); error replies are swapped too, because they carry the form with its
 * messages.
 */
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  attributesToSettle: ["class", "width", "height"],
  allowEval: false,
  allowScriptTags: false,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "(400|401|403|404|409|422|429)", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ],
});

export function flashList(flashes: readonly Flash[] | undefined): SafeHtml {
  if (!flashes || flashes.length === 0) return html``;
  return html`${flashes.map(
    (f) =>
      html`<div class="flash flash-${f.kind}" role="${f.kind === "error" ? "alert" : "status"}" data-testid="flash-${f.kind}">${f.text}</div>`,
  )}`;
}

function navigation(opts: LayoutOptions): SafeHtml {
  if (opts.nav.length === 0) return html``;
  return html`<nav class="site-nav" aria-label="Main">
      <ul>
        ${opts.nav.map(
          (l) =>
            html`<li><a href="${l.href}" data-testid="nav-${l.id}"${
              l.id === opts.current ? html` aria-current="page"` : ""
            }>${l.label}</a></li>`,
        )}
      </ul>
    </nav>`;
}

function userBox(opts: LayoutOptions): SafeHtml {
  if (!opts.user) return html``;
  return html`<div class="who">
      <span data-testid="signed-in-as">${opts.user.label}</span>
      <form method="post" action="${opts.user.logoutAction}">
        ${opts.csrfToken ? html`<input type="hidden" name="_csrf" value="${opts.csrfToken}">` : ""}
        <button type="submit" class="secondary" data-testid="logout">Log out</button>
      </form>
    </div>`;
}

export function layout(opts: LayoutOptions): SafeHtml {
  const areaName = AREA_NAMES[opts.area];
  const scripts = [...new Set((opts.scripts ?? []).flatMap((s) => SCRIPT_FILES[s]))];
  // htmx sends the token with every request it makes, so partial updates pass the CSRF check too.
  const hxHeaders = opts.csrfToken ? JSON.stringify({ "X-CSRF-Token": opts.csrfToken }) : undefined;
  return html`<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${opts.title} · ${areaName}</title>
  <meta name="htmx-config" content="${HTMX_CONFIG}">
  ${opts.csrfToken ? html`<meta name="csrf-token" content="${opts.csrfToken}">` : ""}
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="${assetUrl("style.css")}">
  <script src="${assetUrl("htmx.min.js")}" defer></script>
  <script src="${assetUrl("app.js")}" defer></script>
  ${scripts.map((s) => html`<script src="${assetUrl(s)}" defer></script>`)}
</head>
<body data-area="${opts.area}"${hxHeaders ? html` hx-headers="${hxHeaders}"` : ""}>
  <a class="skip-link" href="#main">Skip to content</a>
  <header class="site-header">
    <div class="bar">
      <a class="brand" href="/${opts.area}" data-testid="brand">${areaName}</a>
      ${navigation(opts)}
      ${userBox(opts)}
    </div>
  </header>
  <main id="main" tabindex="-1">
    <div id="flashes">${flashList(opts.flashes)}</div>
    ${opts.body}
  </main>
  <footer class="site-footer">
    <p>Switchboard · ${
      opts.area === "portal"
        ? "licences for client apps on this network"
        : "operator console: every action is recorded in the audit log"
    }</p>
  </footer>
</body>
</html>`;
}
