/**
 * Links: the live interconnection links of the server (`link list`) — attached components
 * and server-to-server streams — with their direction, authentication, since when, stanzas
 * each way and the standing of their gateway or peering licence. Licences themselves are
 * granted and revoked on the Licences page.
 */
import type { FastifyInstance } from "fastify";
import { badge, emptyState, instant, type Tone, table } from "../assets/components.js";
import { html, type SafeHtml } from "../html.js";
import { userMessage } from "./commands.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";

/** A link as `link list` gives it (src/modules/interconnect/api.ts). */
interface LinkRow {
  kind: "component" | "s2s";
  domain: string;
  localDomain: string;
  direction: "in" | "out";
  method: string;
  since: number;
  stanzasIn: number;
  stanzasOut: number;
  address: string;
  licence: {
    scope: string;
    applies: boolean;
    status: string;
    licenceId?: string;
    mode: string;
    cutoff?: number;
  };
}

const TONES: Record<string, Tone> = {
  active: "ok",
  pending: "info",
  none: "warn",
  suspended: "bad",
  revoked: "bad",
  expired: "bad",
};

function licenceCell(l: LinkRow["licence"]): SafeHtml {
  if (!l.applies) return html`<span class="muted">not required (federation policy)</span>`;
  const status = l.status === "none" ? `no ${l.scope} licence` : `${l.scope} ${l.status}`;
  const id = l.licenceId ? html` <span class="mono">${l.licenceId}</span>` : "";
  const stops = l.cutoff !== undefined ? html`<br><span class="muted">stops ${instant(l.cutoff)}</span>` : "";
  return html`${badge(status, TONES[l.status] ?? "info")}${id} <span class="muted">(${l.mode})</span>${stops}`;
}

export function registerLinks(app: FastifyInstance, env: ConsoleEnv): void {
  app.get(route(`${CONSOLE}/links`), async (request, reply) => {
    let links: LinkRow[] | undefined;
    let problem: string | undefined;
    try {
      links = (await env.data<{ links: LinkRow[] }>(request, "link list")).links;
    } catch (err) {
      problem = userMessage(err);
      if (problem === undefined) throw err;
    }
    return env.page(request, reply, {
      title: "Links",
      current: "links",
      body: html`<h1>Links</h1>
        <p class="muted">Components (gateways) attached to this server and server-to-server links, now.
        Grant, suspend or revoke their <a href="${CONSOLE}/licences">gateway and peering licences</a>;
        a change applies to the live links within a second.</p>
        ${
          links === undefined
            ? emptyState(problem ?? "No links.", undefined, "links-unavailable")
            : table({
                caption: "Live links",
                captionHidden: true,
                head: [
                  "Domain",
                  "Kind",
                  "Direction",
                  "Authentication",
                  "Since",
                  "Stanzas in",
                  "Stanzas out",
                  "Licence",
                ],
                numeric: [5, 6],
                rows: links.map((l) => [
                  html`<span class="mono">${l.domain}</span>`,
                  l.kind === "component" ? "component" : "server-to-server",
                  l.direction === "in" ? "in" : "out",
                  l.method,
                  instant(l.since),
                  String(l.stanzasIn),
                  String(l.stanzasOut),
                  licenceCell(l.licence),
                ]),
                empty: "No component or server-to-server link right now.",
                testid: "links-table",
              })
        }`,
    });
  });
}
