/**
 * Licences: the list with search and a state filter, and the actions on one licence —
 * suspend, reinstate, revoke, set or remove its end — each a `licence …` command. The app
 * page shows the same rows and actions for the app's own licences.
 */
import type { FastifyInstance } from "fastify";
import type { Licence, LicenceState } from "../../licensing/index.js";
import {
  actionButton,
  badge,
  csrfField,
  input,
  instant,
  searchForm,
  select,
  type Tone,
  table,
} from "../assets/components.js";
import { field, formBody } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { act } from "./actions.js";
import { compact } from "./commands.js";
import { CONSOLE, type ConsoleEnv, matchesQuery, route, utcInputValue, utcInstant } from "./env.js";

/** A licence as `licence list` gives it: with its state now and its subject (client id or domain). */
export type LicenceView = Licence & { state: LicenceState; subject: string };

const licencePath = (id: string) => `${CONSOLE}/licences/${encodeURIComponent(id)}`;
const appPath = (clientId: string) => `${CONSOLE}/apps/${encodeURIComponent(clientId)}`;

const STATE_TONES: Record<LicenceState, Tone> = {
  active: "ok",
  pending: "info",
  suspended: "warn",
  revoked: "bad",
  expired: "bad",
};

/** What a suspension or revocation does to the licence's live connections. */
const closes = (l: LicenceView) =>
  l.scope === "client"
    ? "Its live sessions are closed."
    : l.scope === "gateway"
      ? "The component is detached within a second."
      : "Links with the domain are closed within a second.";

export const licenceBadge = (state: LicenceState) => badge(state, STATE_TONES[state]);

export function licenceActions(l: LicenceView, csrfToken: string | undefined, back: string): SafeHtml {
  const buttons: SafeHtml[] = [];
  const fields = { back };
  if (l.status === "active") {
    buttons.push(
      actionButton({
        action: `${licencePath(l.id)}/suspend`,
        label: "Suspend",
        csrfToken,
        fields,
        testid: `suspend-${l.id}`,
        confirm: `Suspend licence ${l.id} of ${l.subject}? ${closes(l)}`,
      }),
    );
  }
  if (l.status === "suspended") {
    buttons.push(
      actionButton({
        action: `${licencePath(l.id)}/reinstate`,
        label: "Reinstate",
        csrfToken,
        fields,
        testid: `reinstate-${l.id}`,
      }),
    );
  }
  if (l.status !== "revoked") {
    buttons.push(
      actionButton({
        action: `${licencePath(l.id)}/revoke`,
        label: "Revoke",
        csrfToken,
        fields,
        danger: true,
        testid: `revoke-${l.id}`,
        confirm: `Revoke licence ${l.id} of ${l.subject} for good? ${closes(l)}`,
      }),
    );
    buttons.push(html`<form method="post" action="${licencePath(l.id)}/extend" class="inline-form">
      ${csrfField(csrfToken)}<input type="hidden" name="back" value="${back}">
      <div class="field"><label for="until-${l.id}">Valid until (UTC)</label>
        <input type="datetime-local" id="until-${l.id}" name="validUntil" value="${utcInputValue(l.validUntil)}"></div>
      <button type="submit" class="secondary" data-testid="extend-${l.id}">Set end</button>
      <button type="submit" class="link" name="never" value="1">No end</button>
    </form>`);
  }
  return html`<div class="actions">${buttons}</div>`;
}

export function licenceRows(
  licences: LicenceView[],
  csrfToken: string | undefined,
  back: string,
  withApp: boolean,
) {
  return licences.map((l) => [
    html`<span class="mono">${l.id}</span>`,
    ...(withApp
      ? [
          l.scope === "client"
            ? html`<a href="${appPath(l.clientId)}">${l.clientId}</a>`
            : html`<span class="mono">${l.domain}</span>`,
        ]
      : []),
    l.scope,
    licenceBadge(l.state),
    instant(l.validFrom),
    instant(l.validUntil, "no end"),
    l.scope === "client" ? (l.maxSessions ?? "unlimited") : "—",
    l.termsRef ?? "—",
    licenceActions(l, csrfToken, back),
  ]);
}

/** Grants a peering licence (a remote server's domain) or a gateway licence (a component's domain). */
function grantDomainForm(csrfToken: string | undefined): SafeHtml {
  return html`<details class="card" id="grant-domain">
    <summary>Grant a peering or gateway licence</summary>
    <form method="post" action="${CONSOLE}/licences/grant" class="stack" data-testid="grant-domain-form">
      ${csrfField(csrfToken)}
      ${input({ name: "domain", label: "Domain", required: true, hint: "Peering: the remote server's domain. Gateway: the component's domain." })}
      ${select({
        name: "scope",
        label: "Scope",
        value: "peering",
        options: [
          { value: "peering", label: "peering (a server federating with this one)" },
          { value: "gateway", label: "gateway (a component attached to this server)" },
        ],
      })}
      ${input({ name: "validUntil", label: "Valid until (UTC, optional)", type: "datetime-local" })}
      ${input({ name: "terms", label: "Terms reference (optional)" })}
      <div class="actions"><button type="submit" data-testid="grant-domain-submit">Grant licence</button></div>
    </form>
  </details>`;
}

export function registerLicences(app: FastifyInstance, env: ConsoleEnv): void {
  for (const word of ["suspend", "reinstate", "revoke"] as const) {
    app.post<{ Params: { id: string } }>(route(`${CONSOLE}/licences/:id/${word}`), async (request, reply) =>
      act(env, request, reply, {
        command: `licence ${word}`,
        input: { licenceId: request.params.id },
        back: `${CONSOLE}/licences`,
        success: () =>
          `Licence ${request.params.id} ${word === "reinstate" ? "reinstated" : word === "suspend" ? "suspended" : "revoked"}.`,
      }),
    );
  }

  // Peering and gateway licences: their subject is a domain (client licences are granted on the app's page).
  app.post(route(`${CONSOLE}/licences/grant`), async (request, reply) => {
    const body = formBody(request);
    const until = field(body, "validUntil");
    const domain = field(body, "domain").trim();
    const scope = field(body, "scope");
    return act(env, request, reply, {
      command: "licence grant",
      input: compact({
        domain,
        scope,
        validUntil: until ? utcInstant(until) : "",
        terms: field(body, "terms"),
      }),
      back: `${CONSOLE}/licences`,
      success: () => `${scope === "gateway" ? "Gateway" : "Peering"} licence granted to ${domain}.`,
    });
  });

  app.post<{ Params: { id: string } }>(route(`${CONSOLE}/licences/:id/extend`), async (request, reply) => {
    const body = formBody(request);
    const never = field(body, "never") !== "";
    const until = field(body, "validUntil");
    return act(env, request, reply, {
      command: "licence extend",
      input: {
        licenceId: request.params.id,
        validUntil: never ? "never" : until === "" ? "" : utcInstant(until),
      },
      back: `${CONSOLE}/licences`,
      success: () =>
        never
          ? `Licence ${request.params.id} now has no end.`
          : `Licence ${request.params.id} now ends ${utcInstant(until)}.`,
    });
  });

  app.get<{ Querystring: { q?: string; status?: string } }>(
    route(`${CONSOLE}/licences`),
    async (request, reply) => {
      const q = (request.query.q ?? "").trim();
      const status = (request.query.status ?? "").trim();
      const { licences } = await env.data<{ licences: LicenceView[] }>(
        request,
        "licence list",
        compact({ status }),
      );
      const shown = licences.filter((l) => q === "" || matchesQuery(q, l.id, l.subject, l.termsRef, l.scope));
      const back = `${CONSOLE}/licences${request.url.includes("?") ? request.url.slice(request.url.indexOf("?")) : ""}`;
      return env.page(request, reply, {
        title: "Licences",
        current: "licences",
        body: html`<h1>Licences</h1>
        ${searchForm({
          action: `${CONSOLE}/licences`,
          resultsId: "licences-results",
          label: "Search licences",
          testid: "licences-search",
          fields: html`${input({ name: "q", type: "search", label: "Licence id, client id, domain or terms", value: q })}
            ${select({
              name: "status",
              label: "State",
              value: status,
              options: [
                { value: "", label: "any" },
                ...["active", "pending", "suspended", "revoked", "expired"].map((s) => ({
                  value: s,
                  label: s,
                })),
              ],
            })}`,
        })}
        ${grantDomainForm(request.session?.csrfToken)}
        <div id="licences-results">
          ${table({
            caption: "Licences",
            captionHidden: true,
            head: [
              "Licence",
              "App or domain",
              "Scope",
              "State",
              "From",
              "Until",
              "Sessions",
              "Terms",
              "Actions",
            ],
            rows: licenceRows(shown, request.session?.csrfToken, back, true),
            empty: q || status ? "No licence matches." : "No licences yet.",
            testid: "licences-table",
          })}
        </div>`,
      });
    },
  );
}
