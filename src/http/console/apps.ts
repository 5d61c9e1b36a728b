/**
 * Apps and their keys: list and search, and an app's page with its keys (add, revoke) and
 * its licences (grant here; suspend, reinstate, revoke and extend as in licences.ts). Every
 * change runs the licensing commands (`app key add|revoke`, `licence grant`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AppKey, ClientApp, Publisher } from "../../licensing/index.js";
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
  searchForm,
  table,
  textarea,
} from "../assets/components.js";
import { type FormBody, field, formBody, redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { act } from "./actions.js";
import { compact, InputError, userMessage } from "./commands.js";
import { CONSOLE, type ConsoleEnv, matchesQuery, route, utcInstant } from "./env.js";
import { type LicenceView, licenceBadge, licenceRows } from "./licences.js";

interface AppShow {
  app: ClientApp;
  publisher?: Publisher;
  keys: AppKey[];
  licences: LicenceView[];
  rules: {
    minVersion?: string;
    recommendedVersion?: string;
    upgradeUrl?: string;
    blocked?: { from: string; to: string }[];
  };
}

const appPath = (clientId: string) => `${CONSOLE}/apps/${encodeURIComponent(clientId)}`;

/** The most recent client-scope licence of each app. */
function latestClientLicence(licences: LicenceView[]): Map<string, LicenceView> {
  const out = new Map<string, LicenceView>();
  for (const l of licences) if (l.scope === "client") out.set(l.clientId, l);
  return out;
}

/** Suspend / reinstate / revoke buttons and the extend form of one licence. */
interface AppForms {
  key?: { values: FormBody; errors: FieldErrors };
  grant?: { values: FormBody; errors: FieldErrors };
}

function appPage(data: AppShow, csrfToken: string | undefined, forms: AppForms): SafeHtml {
  const { app, publisher, keys, licences, rules } = data;
  const back = appPath(app.clientId);
  const keyValues = forms.key?.values ?? {};
  const grantValues = forms.grant?.values ?? {};
  return html`<h1>App <span class="mono" data-testid="app-client-id">${app.clientId}</span></h1>
    ${facts(
      [
        ["Name", app.name],
        ["Publisher", publisher ? `${publisher.organisation} <${publisher.contactEmail}>` : app.publisherId],
        ["Platforms", app.platforms.join(", ") || "—"],
        ["Registered", instant(app.createdAt)],
        ["Minimum version", rules.minVersion ?? "none"],
        ["Recommended version", rules.recommendedVersion ?? "none"],
        ["Blocked versions", rules.blocked?.map((b) => `${b.from}–${b.to}`).join(", ") || "none"],
        [
          "Version rules",
          html`<a href="${CONSOLE}/policy?app=${encodeURIComponent(app.clientId)}#app-rules">Edit in the policy editor</a>`,
        ],
      ],
      "app-facts",
    )}
    <h2 id="keys">Keys</h2>
    ${table({
      caption: `Public keys of ${app.clientId}`,
      captionHidden: true,
      head: ["Key id", "Public key", "Added", "State", ""],
      rows: keys.map((k) => [
        html`<span class="mono">${k.keyId}</span>`,
        html`<span class="mono">${k.publicKey}</span>`,
        instant(k.createdAt),
        k.revokedAt === undefined
          ? badge("active", "ok")
          : html`${badge("revoked", "bad")} ${instant(k.revokedAt)}`,
        k.revokedAt === undefined
          ? actionButton({
              action: `${back}/keys/${encodeURIComponent(k.keyId)}/revoke`,
              label: "Revoke",
              csrfToken,
              danger: true,
              testid: `revoke-key-${k.keyId}`,
              confirm: `Revoke key ${k.keyId}? Sessions that proved a licence with it are closed.`,
            })
          : "",
      ]),
      empty: "No keys yet: the publisher registers one in the portal, or add one here.",
      testid: "keys-table",
    })}
    <form ${htmxFormAttrs("add-key-form", `${back}/keys`)} class="stack" novalidate>
      <h3>Add a key</h3>
      ${errorSummary(forms.key?.errors, { keyId: "Key id", publicKey: "Public key" })}
      ${csrfField(csrfToken)}
      ${input({ name: "keyId", label: "Key id", required: true, value: field(keyValues, "keyId"), errors: forms.key?.errors, hint: "Unique within the app, e.g. k2 or android-2026" })}
      ${textarea({ name: "publicKey", label: "Public key", required: true, rows: 2, value: field(keyValues, "publicKey"), errors: forms.key?.errors, hint: "Ed25519: base64 of the 32 raw bytes, or a PEM public key" })}
      <div class="actions"><button type="submit" data-testid="add-key-submit">Add key</button></div>
    </form>
    <h2 id="licences">Licences</h2>
    ${table({
      caption: `Licences of ${app.clientId}`,
      captionHidden: true,
      head: ["Licence", "Scope", "State", "From", "Until", "Sessions", "Terms", "Actions"],
      rows: licenceRows(licences, csrfToken, back, false),
      empty: "No licence: clients of this app count as unlicensed.",
      testid: "licences-table",
    })}
    <form ${htmxFormAttrs("grant-form", `${back}/licences`)} class="stack" novalidate>
      <h3>Grant a licence</h3>
      ${errorSummary(forms.grant?.errors)}
      ${csrfField(csrfToken)}
      <p class="muted">A client licence admits this app's users. Peering and gateway licences are for domains: grant them on the <a href="${CONSOLE}/licences#grant-domain">Licences</a> page.</p>
      ${input({ name: "validUntil", label: "Valid until (UTC, optional)", type: "datetime-local", value: field(grantValues, "validUntil"), errors: forms.grant?.errors })}
      ${input({ name: "maxSessions", label: "Most concurrent sessions (optional)", type: "number", min: 1, value: field(grantValues, "maxSessions"), errors: forms.grant?.errors })}
      ${input({ name: "terms", label: "Terms reference (optional)", value: field(grantValues, "terms"), errors: forms.grant?.errors })}
      <div class="actions"><button type="submit" data-testid="grant-submit">Grant licence</button></div>
    </form>`;
}

export function registerApps(app: FastifyInstance, env: ConsoleEnv): void {
  app.get<{ Querystring: { q?: string } }>(route(`${CONSOLE}/apps`), async (request, reply) => {
    const q = (request.query.q ?? "").trim();
    const [{ apps }, { publishers }, { licences }] = await Promise.all([
      env.data<{ apps: ClientApp[] }>(request, "app list"),
      env.data<{ publishers: Publisher[] }>(request, "publisher list"),
      env.data<{ licences: LicenceView[] }>(request, "licence list"),
    ]);
    const pubs = new Map(publishers.map((p) => [p.id, p]));
    const latest = latestClientLicence(licences);
    const shown = apps.filter(
      (a) =>
        q === "" || matchesQuery(q, a.clientId, a.name, pubs.get(a.publisherId)?.organisation, a.publisherId),
    );
    return env.page(request, reply, {
      title: "Apps and keys",
      current: "apps",
      body: html`<h1>Apps and keys</h1>
        ${searchForm({
          action: `${CONSOLE}/apps`,
          resultsId: "apps-results",
          label: "Search apps",
          testid: "apps-search",
          fields: input({ name: "q", type: "search", label: "Client id, name or publisher", value: q }),
        })}
        <div id="apps-results">
          ${table({
            caption: q ? `Apps matching “${q}”` : "All apps",
            head: ["Client id", "Name", "Publisher", "Platforms", "Client licence"],
            rows: shown.map((a) => {
              const l = latest.get(a.clientId);
              return [
                html`<a href="${appPath(a.clientId)}" class="mono">${a.clientId}</a>`,
                a.name,
                pubs.get(a.publisherId)?.organisation ?? a.publisherId,
                a.platforms.join(", ") || "—",
                l ? licenceBadge(l.state) : badge("none", "info"),
              ];
            }),
            empty: q ? `No app matches “${q}”.` : "No apps yet: they appear when an application is approved.",
            testid: "apps-table",
          })}
        </div>`,
    });
  });

  const showApp = async (
    request: FastifyRequest,
    reply: FastifyReply,
    clientId: string,
    forms: AppForms,
    status = 200,
  ) => {
    const data = await env.data<AppShow>(request, "app show", { clientId });
    return env.page(request, reply, {
      title: `App ${data.app.clientId}`,
      current: "apps",
      status,
      body: appPage(data, request.session?.csrfToken, forms),
    });
  };

  app.get<{ Params: { clientId: string } }>(route(`${CONSOLE}/apps/:clientId`), (request, reply) =>
    showApp(request, reply, request.params.clientId, {}),
  );

  /** Runs a form's command; on a refusal the app page comes back with the form's messages. */
  const formAction = async (
    request: FastifyRequest<{ Params: { clientId: string } }>,
    reply: FastifyReply,
    form: keyof AppForms,
    command: string,
    input: Record<string, unknown>,
    success: string,
  ) => {
    const clientId = request.params.clientId;
    const values = formBody(request);
    try {
      await env.run(request, command, input);
      return redirect(request, reply, `${appPath(clientId)}#${form === "key" ? "keys" : "licences"}`, {
        kind: "success",
        text: success,
      });
    } catch (err) {
      const message = userMessage(err);
      if (message === undefined) throw err;
      const errors = err instanceof InputError ? err.fields : { _form: message };
      return showApp(request, reply, clientId, { [form]: { values, errors } }, 422);
    }
  };

  app.post<{ Params: { clientId: string } }>(
    route(`${CONSOLE}/apps/:clientId/keys`),
    async (request, reply) => {
      const body = formBody(request);
      const keyId = field(body, "keyId");
      return formAction(
        request,
        reply,
        "key",
        "app key add",
        compact({ clientId: request.params.clientId, keyId, publicKey: field(body, "publicKey") }),
        `Key ${keyId} added to ${request.params.clientId}.`,
      );
    },
  );

  app.post<{ Params: { clientId: string; keyId: string } }>(
    route(`${CONSOLE}/apps/:clientId/keys/:keyId/revoke`),
    async (request, reply) =>
      act(env, request, reply, {
        command: "app key revoke",
        input: { clientId: request.params.clientId, keyId: request.params.keyId },
        back: `${appPath(request.params.clientId)}#keys`,
        success: () => `Key ${request.params.keyId} of ${request.params.clientId} revoked.`,
      }),
  );

  app.post<{ Params: { clientId: string } }>(
    route(`${CONSOLE}/apps/:clientId/licences`),
    async (request, reply) => {
      const body = formBody(request);
      const until = field(body, "validUntil");
      return formAction(
        request,
        reply,
        "grant",
        "licence grant",
        compact({
          clientId: request.params.clientId,
          scope: "client",
          validUntil: until ? utcInstant(until) : "",
          maxSessions: field(body, "maxSessions"),
          terms: field(body, "terms"),
        }),
        `Licence granted to ${request.params.clientId}.`,
      );
    },
  );
}
