/**
 * Applying for a licence and following the applications: the form (organisation, contact,
 * app, platforms, website, expected users, scope — a client app, or a gateway with its
 * component domain — terms), the list with each status, and
 * one application with its history, the reason of a rejection, or the way to the app once
 * approved. The programme's Applications service validates and stores them.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { commandErrorOf } from "../../core/commands.js";
import type { Application, ApplicationStatus } from "../../programme/model.js";
import { fieldsOf } from "../../programme/validation.js";
import {
  badge,
  checkbox,
  choices,
  csrfField,
  emptyState,
  errorSummary,
  type FieldErrors,
  FORM_ERROR,
  facts,
  htmxFormAttrs,
  humanize,
  input,
  instant,
  type Tone,
  table,
  textarea,
} from "../assets/components.js";
import { type FormBody, field, fields, formBody, redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { termsHref } from "./documents.js";
import { PORTAL, type PortalEnv, route } from "./env.js";

const PLATFORMS = ["android", "ios", "linux", "macos", "windows", "web"];

const LABELS: Record<string, string> = {
  organisation: "Organisation",
  contactName: "Contact name",
  contactEmail: "Contact email",
  appName: "App name",
  description: "Description",
  platforms: "Platforms",
  website: "Website",
  expectedUsers: "Expected number of users",
  scope: "Scope",
  domain: "Gateway domain",
  termsAccepted: "Terms",
};

const STATUS_TEXT: Record<ApplicationStatus, [string, Tone]> = {
  submitted: ["submitted", "info"],
  "under-review": ["under review", "warn"],
  approved: ["approved", "ok"],
  rejected: ["rejected", "bad"],
};

export const statusBadge = (s: ApplicationStatus) => badge(...STATUS_TEXT[s]);

const applicationPath = (id: string) => `${PORTAL}/applications/${encodeURIComponent(id)}`;

function applyForm(
  csrf: string | undefined,
  termsLink: string,
  values: FormBody,
  errors?: FieldErrors,
): SafeHtml {
  const chosen = fields(values, "platforms");
  const other = chosen.filter((p) => !PLATFORMS.includes(p));
  const v = (name: string) => field(values, name);
  return html`<form ${htmxFormAttrs("apply-form", `${PORTAL}/apply`)} class="stack" data-testid="apply-form" novalidate>
    ${errorSummary(errors, LABELS)}
    ${csrfField(csrf)}
    <fieldset><legend>Who you are</legend>
      ${input({ name: "organisation", label: LABELS.organisation!, required: true, value: v("organisation"), errors, autocomplete: "organization", maxlength: 200 })}
      ${input({ name: "contactName", label: LABELS.contactName!, required: true, value: v("contactName"), errors, autocomplete: "name", maxlength: 200 })}
      ${input({ name: "contactEmail", label: LABELS.contactEmail!, type: "email", required: true, value: v("contactEmail"), errors, autocomplete: "email" })}
    </fieldset>
    <fieldset><legend>Your app</legend>
      ${input({ name: "appName", label: LABELS.appName!, required: true, value: v("appName"), errors, maxlength: 200 })}
      ${textarea({ name: "description", label: LABELS.description!, required: true, rows: 6, value: typeof values.description === "string" ? values.description : "", errors, maxlength: 5000, hint: "What the app does and who uses it." })}
      ${choices({ name: "platforms", label: LABELS.platforms!, multiple: true, required: true, options: PLATFORMS.map((p) => ({ value: p, label: p })), values: chosen, errors })}
      ${input({ name: "otherPlatforms", label: "Other platforms", value: v("otherPlatforms") || other.join(", "), hint: "Comma-separated, e.g. freebsd, watchos" })}
      ${input({ name: "website", label: `${LABELS.website} (optional)`, type: "url", value: v("website"), errors, placeholder: "https://" })}
      ${input({ name: "expectedUsers", label: LABELS.expectedUsers!, type: "number", min: 0, required: true, value: v("expectedUsers"), errors })}
      ${choices({
        name: "scope",
        label: LABELS.scope!,
        multiple: false,
        required: true,
        values: [v("scope") || "client"],
        errors,
        options: [
          { value: "client", label: "client: an app people chat with" },
          {
            value: "gateway",
            label: "gateway: a bridge to another network, attached to our server as a component",
          },
        ],
      })}
      ${input({ name: "domain", label: `${LABELS.domain} (gateways only)`, value: v("domain"), errors, placeholder: "irc.gw.example.org", hint: "The domain your gateway's component uses; its users appear as addresses at it. Platforms are optional for a gateway." })}
    </fieldset>
    ${checkbox({ name: "termsAccepted", label: "I accept the licensing programme's terms for client apps", required: true, checked: v("termsAccepted") !== "", errors, hint: html`Read the <a href="${termsLink}" target="_blank" rel="noopener" data-testid="terms-link">terms of the licensing programme</a> (opens in a new tab).` })}
    <div class="actions"><button type="submit" data-testid="apply-submit">Submit the application</button></div>
  </form>`;
}

function historyActor(actor: string): string {
  return actor.startsWith("portal:") ? "you" : "the network's operators";
}

function applicationPage(a: Application): SafeHtml {
  return html`<h1>${a.appName}</h1>
    <p>Status: <span data-testid="application-status">${statusBadge(a.status)}</span></p>
    ${
      a.status === "rejected"
        ? html`<div class="flash flash-error" data-testid="rejection-reason"><strong>Reason:</strong> <span class="notice-body">${a.rejectionReason ?? "none given"}</span></div>`
        : a.status === "approved" && a.scope === "gateway"
          ? html`<div class="flash flash-success"><p>Approved. The gateway licence <strong class="mono">${a.licenceId}</strong> is for <strong class="mono">${a.domain}</strong>; the network's operators configure its component secret with you.</p></div>`
          : a.status === "approved" && a.clientId
            ? html`<div class="flash flash-success"><p>Approved. Your app's client id is <strong class="mono">${a.clientId}</strong>.</p>
              <p><a href="${PORTAL}/apps/${encodeURIComponent(a.clientId)}" class="button" data-testid="open-app">Open the app: keys, licence and usage</a></p></div>`
            : html`<p class="muted">The network's operators review applications in the order they arrive. We mail you when it is decided.</p>`
    }
    ${facts(
      [
        ["Organisation", a.organisation],
        ["Contact", `${a.contactName} <${a.contactEmail}>`],
        a.scope === "gateway" ? ["Gateway domain", a.domain ?? "—"] : ["Platforms", a.platforms.join(", ")],
        ["Website", a.website ?? "—"],
        ["Expected users", a.expectedUsers.toLocaleString("en")],
        ["Scope", a.scope],
        ["Submitted", instant(a.submittedAt)],
      ],
      "application-facts",
    )}
    <h2>Description</h2>
    <p class="notice-body">${a.description}</p>
    <h2>History</h2>
    ${table({
      caption: "History of the application",
      captionHidden: true,
      head: ["When", "Status", "By"],
      rows: a.history.map((h) => [instant(h.at), statusBadge(h.status), historyActor(h.actor)]),
      empty: "No history.",
    })}`;
}

export function applicationsTable(applications: Application[]): SafeHtml {
  return table({
    caption: "Your applications",
    captionHidden: true,
    head: ["App", "Submitted", "Scope", "Status"],
    rows: applications.map((a) => [
      html`<a href="${applicationPath(a.id)}" data-testid="application-link">${a.appName}</a>`,
      instant(a.submittedAt),
      a.scope,
      statusBadge(a.status),
    ]),
    empty: "No applications yet.",
    emptyAction: html`<p><a href="${PORTAL}/apply" class="button">Apply for a licence</a></p>`,
    testid: "applications-table",
  });
}

export function registerApplications(app: FastifyInstance, env: PortalEnv): void {
  const { programme } = env.deps;

  const mine = async (request: FastifyRequest) =>
    (await programme.applications.list({ accountId: env.account(request).id })).reverse();

  app.get(route(`${PORTAL}/apply`), async (request, reply) => {
    const account = env.account(request);
    return env.page(request, reply, {
      title: "Apply for a licence",
      current: "apply",
      body: html`<h1>Apply for a licence</h1>
        <p>Tell the network's operators about your app. Once approved you register its signing keys here.</p>
        ${applyForm(request.session?.csrfToken, termsHref(env.deps.config.http.termsUrl), { contactEmail: account.email, scope: "client" })}`,
    });
  });

  app.post(route(`${PORTAL}/apply`), async (request, reply) => {
    const body = formBody(request);
    const platforms = [
      ...fields(body, "platforms"),
      ...field(body, "otherPlatforms")
        .split(",")
        .map((p) => p.trim())
        .filter((p) => p !== ""),
    ];
    try {
      const application = await programme.applications.submit(env.account(request).id, {
        ...body,
        platforms,
        termsAccepted: field(body, "termsAccepted") !== "",
      });
      return redirect(request, reply, applicationPath(application.id), {
        kind: "success",
        text: "Thank you: your application has been submitted. We have mailed you a confirmation.",
      });
    } catch (err) {
      const refused = commandErrorOf(err);
      if (!refused) throw err;
      const errors = humanize(fieldsOf(err) ?? { [FORM_ERROR]: refused.message }, LABELS);
      return env.page(request, reply, {
        title: "Apply for a licence",
        current: "apply",
        status: 422,
        body: html`<h1>Apply for a licence</h1>${applyForm(request.session?.csrfToken, termsHref(env.deps.config.http.termsUrl), { ...body, platforms }, errors)}`,
      });
    }
  });

  app.get(route(`${PORTAL}/applications`), async (request, reply) =>
    env.page(request, reply, {
      title: "Your applications",
      current: "applications",
      body: html`<h1>Your applications</h1>${applicationsTable(await mine(request))}
        <p><a href="${PORTAL}/apply">Apply for another licence</a></p>`,
    }),
  );

  app.get<{ Params: { id: string } }>(route(`${PORTAL}/applications/:id`), async (request, reply) => {
    const a = await programme.applications.get(request.params.id);
    // Another account's application does not exist, as far as this one can tell.
    if (!a || a.accountId !== env.account(request).id) {
      return env.page(request, reply, {
        title: "Application not found",
        status: 404,
        body: emptyState(
          "There is no such application in your account.",
          html`<p><a href="${PORTAL}/applications">Your applications</a></p>`,
        ),
      });
    }
    return env.page(request, reply, {
      title: `Application: ${a.appName}`,
      current: "applications",
      body: applicationPage(a),
    });
  });
}
