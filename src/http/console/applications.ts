/**
 * The applications queue: applications waiting for review, approved and rejected ones, and
 * each application with its history, the approval form (client id, licence terms) and the
 * rejection form (reason). Runs `application list|show|review|approve|reject`; the
 * publisher is mailed by the programme either way.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import type { Publisher } from "../../licensing/index.js";
import type { Application, ApplicationStatus } from "../../programme/model.js";
import {
  actionButton,
  badge,
  csrfField,
  errorSummary,
  type FieldErrors,
  facts,
  htmxFormAttrs,
  input,
  instant,
  select,
  type Tone,
  table,
  textarea,
} from "../assets/components.js";
import { type FormBody, field, formBody, redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { act } from "./actions.js";
import { compact, formErrors } from "./commands.js";
import { CONSOLE, type ConsoleEnv, route, utcInstant } from "./env.js";

const PATH = `${CONSOLE}/applications`;
const applicationPath = (id: string) => `${PATH}/${encodeURIComponent(id)}`;

const STATUS_TONES: Record<ApplicationStatus, Tone> = {
  submitted: "info",
  "under-review": "warn",
  approved: "ok",
  rejected: "bad",
};

export const applicationBadge = (s: ApplicationStatus) => badge(s, STATUS_TONES[s]);

const TABS = [
  { id: "open", label: "To review", statuses: ["submitted", "under-review"] },
  { id: "approved", label: "Approved", statuses: ["approved"] },
  { id: "rejected", label: "Rejected", statuses: ["rejected"] },
  { id: "all", label: "All", statuses: ["submitted", "under-review", "approved", "rejected"] },
] as const;

type Tab = (typeof TABS)[number]["id"];

interface Forms {
  approve?: { values: FormBody; errors: FieldErrors };
  reject?: { values: FormBody; errors: FieldErrors };
}

function decisionForms(
  a: Application,
  publishers: Publisher[],
  csrf: string | undefined,
  forms: Forms,
): SafeHtml {
  const path = applicationPath(a.id);
  const av = forms.approve?.values ?? {};
  const rv = forms.reject?.values ?? {};
  const gateway = a.scope === "gateway";
  return html`<div class="grid-2">
    <form ${htmxFormAttrs("approve-form", `${path}/approve`)} class="stack card" novalidate>
      <h2>Approve</h2>
      <p class="hint">${
        gateway
          ? `Creates the publisher (unless you pick one) and a gateway licence for ${a.domain}, and mails the publisher. Add the component's secret with component add.`
          : "Creates the publisher (unless you pick one), the app and its licence, and mails the publisher."
      }</p>
      ${errorSummary(forms.approve?.errors)}
      ${csrfField(csrf)}
      ${gateway ? "" : input({ name: "clientId", label: "Client id", value: field(av, "clientId"), errors: forms.approve?.errors, hint: "Lower case, e.g. com.example.chat. Empty: derived from the app name and website." })}
      ${select({
        name: "publisherId",
        label: "Publisher",
        value: field(av, "publisherId"),
        errors: forms.approve?.errors,
        options: [
          { value: "", label: `New publisher: ${a.organisation}` },
          ...publishers.map((p) => ({ value: p.id, label: `${p.organisation} (${p.id})` })),
        ],
      })}
      ${input({ name: "validUntil", label: "Licence valid until (UTC, optional)", type: "datetime-local", value: field(av, "validUntil"), errors: forms.approve?.errors })}
      ${gateway ? "" : input({ name: "maxSessions", label: "Most concurrent sessions (optional)", type: "number", min: 1, value: field(av, "maxSessions"), errors: forms.approve?.errors })}
      ${input({ name: "terms", label: "Terms reference (optional)", value: field(av, "terms"), errors: forms.approve?.errors })}
      <div class="actions"><button type="submit" data-testid="approve-submit">Approve and create the licence</button></div>
    </form>
    <form ${htmxFormAttrs("reject-form", `${path}/reject`)} class="stack card" novalidate>
      <h2>Reject</h2>
      <p class="hint">The publisher receives the reason by mail and sees it in the portal.</p>
      ${errorSummary(forms.reject?.errors, { reason: "Reason" })}
      ${csrfField(csrf)}
      ${textarea({ name: "reason", label: "Reason", required: true, rows: 4, value: field(rv, "reason"), errors: forms.reject?.errors })}
      <div class="actions"><button type="submit" class="danger" data-testid="reject-submit">Reject</button></div>
    </form>
  </div>`;
}

function applicationPage(
  a: Application,
  publishers: Publisher[],
  csrf: string | undefined,
  forms: Forms,
): SafeHtml {
  const open = a.status === "submitted" || a.status === "under-review";
  return html`<h1>${a.appName} <span class="muted">· application of ${a.organisation}</span></h1>
    <p>${applicationBadge(a.status)}</p>
    ${facts(
      [
        ["Organisation", a.organisation],
        ["Application id", html`<code>${a.id}</code>`],
        ["Contact", `${a.contactName} <${a.contactEmail}>`],
        ["App", a.appName],
        a.scope === "gateway"
          ? [
              "Gateway domain",
              html`<span class="mono" data-testid="gateway-domain">${a.domain ?? "—"}</span>`,
            ]
          : ["Platforms", a.platforms.join(", ")],
        [
          "Website",
          a.website ? html`<a href="${a.website}" rel="noopener noreferrer">${a.website}</a>` : "—",
        ],
        ["Expected users", a.expectedUsers.toLocaleString("en")],
        ["Scope", a.scope],
        ["Submitted", instant(a.submittedAt)],
        ...(a.clientId
          ? [
              [
                "Client id",
                html`<a href="${CONSOLE}/apps/${encodeURIComponent(a.clientId)}" class="mono" data-testid="approved-client-id">${a.clientId}</a>`,
              ] as [string, SafeHtml],
            ]
          : []),
        ...(a.licenceId
          ? [["Licence", html`<span class="mono">${a.licenceId}</span>`] as [string, SafeHtml]]
          : []),
        ...(a.rejectionReason ? [["Reason for rejection", a.rejectionReason] as [string, string]] : []),
      ],
      "application-facts",
    )}
    <h2>Description</h2>
    <p class="notice-body">${a.description}</p>
    <h2>History</h2>
    ${table({
      caption: "History of the application",
      captionHidden: true,
      head: ["When", "Status", "By", "Note"],
      rows: a.history.map((h) => [instant(h.at), applicationBadge(h.status), h.actor, h.note ?? ""]),
      empty: "No history.",
    })}
    ${
      a.status === "submitted"
        ? actionButton({
            action: `${applicationPath(a.id)}/review`,
            label: "Take into review",
            csrfToken: csrf,
            testid: "review-submit",
          })
        : ""
    }
    ${open ? decisionForms(a, publishers, csrf, forms) : ""}`;
}

export function registerApplications(app: FastifyInstance, env: ConsoleEnv): void {
  app.get<{ Querystring: { tab?: string } }>(route(PATH), async (request, reply) => {
    const tab: Tab = TABS.some((t) => t.id === request.query.tab) ? (request.query.tab as Tab) : "open";
    const current = TABS.find((t) => t.id === tab)!;
    const { applications } = await env.data<{ applications: Application[] }>(request, "application list");
    const shown = applications.filter((a) => (current.statuses as readonly string[]).includes(a.status));
    const waiting = applications.filter(
      (a) => a.status === "submitted" || a.status === "under-review",
    ).length;
    return env.page(request, reply, {
      title: "Applications",
      current: "applications",
      body: html`<h1>Licence applications</h1>
        <p>${waiting === 0 ? "No application is waiting for review." : `${count(waiting, "application")} waiting for review.`}</p>
        <nav aria-label="Application states" class="actions tabs">
          ${TABS.map(
            (t) =>
              html`<a href="${PATH}?tab=${t.id}" class="button secondary"${t.id === tab ? html` aria-current="page"` : ""} data-testid="tab-${t.id}">${t.label}</a>`,
          )}
        </nav>
        ${table({
          caption: current.label,
          captionHidden: true,
          head: ["App", "Organisation", "Submitted", "Scope", "Platforms or domain", "Status"],
          rows: shown.map((a) => [
            html`<a href="${applicationPath(a.id)}" data-testid="application-link">${a.appName}</a>`,
            a.organisation,
            instant(a.submittedAt),
            a.scope,
            a.scope === "gateway" ? (a.domain ?? "—") : a.platforms.join(", "),
            applicationBadge(a.status),
          ]),
          empty:
            applications.length === 0
              ? "No applications yet."
              : tab === "open"
                ? "No application is waiting for review."
                : "No application in this state.",
          testid: "applications-table",
        })}`,
    });
  });

  const show = async (
    request: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
    forms: Forms = {},
    status = 200,
  ) => {
    const [{ application }, { publishers }] = await Promise.all([
      env.data<{ application: Application }>(request, "application show", { id: request.params.id }),
      env.data<{ publishers: Publisher[] }>(request, "publisher list"),
    ]);
    return env.page(request, reply, {
      title: `Application ${application.appName}`,
      current: "applications",
      status,
      body: applicationPage(application, publishers, request.session?.csrfToken, forms),
    });
  };

  app.get<{ Params: { id: string } }>(route(`${PATH}/:id`), (request, reply) => show(request, reply));

  app.post<{ Params: { id: string } }>(route(`${PATH}/:id/review`), (request, reply) =>
    act(env, request, reply, {
      command: "application review",
      input: { id: request.params.id },
      back: applicationPath(request.params.id),
      success: () => "The application is now under review.",
    }),
  );

  app.post<{ Params: { id: string } }>(route(`${PATH}/:id/approve`), async (request, reply) => {
    const body = formBody(request);
    const until = field(body, "validUntil");
    try {
      const result = await env.run(
        request,
        "application approve",
        compact({
          id: request.params.id,
          clientId: field(body, "clientId"),
          publisherId: field(body, "publisherId"),
          validUntil: until ? utcInstant(until) : "",
          maxSessions: field(body, "maxSessions"),
          terms: field(body, "terms"),
        }),
      );
      const { application } = result.data as { application: Application };
      return redirect(request, reply, applicationPath(request.params.id), {
        kind: "success",
        text: `Approved: ${application.scope === "gateway" ? `gateway ${application.domain}` : `app ${application.clientId}`}, licence ${application.licenceId}. The publisher has been mailed.`,
      });
    } catch (err) {
      const errors = formErrors(err);
      if (!errors) throw err;
      return show(request, reply, { approve: { values: body, errors } }, 422);
    }
  });

  app.post<{ Params: { id: string } }>(route(`${PATH}/:id/reject`), async (request, reply) => {
    const body = formBody(request);
    try {
      await env.run(request, "application reject", { id: request.params.id, reason: field(body, "reason") });
      return redirect(request, reply, applicationPath(request.params.id), {
        kind: "success",
        text: "Rejected. The publisher has been mailed the reason.",
      });
    } catch (err) {
      const errors = formErrors(err, "reason");
      if (!errors) throw err;
      return show(request, reply, { reject: { values: body, errors } }, 422);
    }
  });
}
