/**
 * Accounts: search, create, and per account its live sessions (kick one or all), disable
 * and enable, reset the password, the admin role, delete. Every action is a user/admin
 * command (`user add|passwd|delete|disable|enable|sessions|kick`, `admin grant|revoke`).
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import type { LiveSession } from "../../core/commands.js";
import {
  actionButton,
  badge,
  csrfField,
  errorSummary,
  type FieldErrors,
  htmxFormAttrs,
  input,
  instant,
  searchForm,
  table,
} from "../assets/components.js";
import { type FormBody, field, formBody, redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { act } from "./actions.js";
import { compact, InputError, userMessage } from "./commands.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";

const PATH = `${CONSOLE}/accounts`;
const PAGE_SIZE = 50;
const accountPath = (name: string) => `${PATH}/${encodeURIComponent(name)}`;

interface FormState {
  values: FormBody;
  errors: FieldErrors;
}

function createForm(csrf: string | undefined, state?: FormState): SafeHtml {
  const v = state?.values ?? {};
  return html`<form ${htmxFormAttrs("create-account-form", PATH)} class="stack" novalidate>
    <h2>Create an account</h2>
    ${errorSummary(state?.errors, { name: "Account name", password: "Password" })}
    ${csrfField(csrf)}
    ${input({ name: "name", label: "Account name", required: true, value: field(v, "name"), errors: state?.errors, autocomplete: "off", hint: "The part before the @" })}
    ${input({ name: "password", label: "Password", type: "password", required: true, errors: state?.errors, autocomplete: "new-password" })}
    <div class="actions"><button type="submit" data-testid="create-account-submit">Create account</button></div>
  </form>`;
}

function passwordForm(name: string, csrf: string | undefined, state?: FormState): SafeHtml {
  return html`<form ${htmxFormAttrs("password-form", `${accountPath(name)}/password`)} class="stack" novalidate>
    <h2>Reset the password</h2>
    ${errorSummary(state?.errors, { password: "New password" })}
    ${csrfField(csrf)}
    ${input({ name: "password", label: "New password", type: "password", required: true, errors: state?.errors, autocomplete: "new-password" })}
    <div class="actions"><button type="submit" data-testid="reset-password-submit">Set password</button></div>
  </form>`;
}

function sessionRows(name: string, sessions: LiveSession[], csrf: string | undefined) {
  return sessions.map((s) => [
    html`<span class="mono">${s.resource}</span>`,
    s.address,
    `${s.transport}${s.secure ? ", encrypted" : ""}`,
    s.client ? `${s.client.clientId ?? "?"} ${s.client.version ?? ""}` : "—",
    s.client?.verified ? badge("licensed", "ok") : badge("unverified", "warn"),
    String(s.connectedAt),
    actionButton({
      action: `${accountPath(name)}/kick`,
      label: "Kick",
      csrfToken: csrf,
      danger: true,
      fields: { resource: s.resource },
      testid: `kick-${s.resource}`,
      confirm: `Close the session ${name}/${s.resource}?`,
    }),
  ]);
}

export function registerAccounts(app: FastifyInstance, env: ConsoleEnv): void {
  const list = async (request: FastifyRequest, reply: FastifyReply, create?: FormState) => {
    const query = request.query as { q?: string; offset?: string };
    const q = (query.q ?? "").trim();
    const offset = Math.max(0, Number.parseInt(query.offset ?? "0", 10) || 0);
    const { accounts, total } = await env.data<{ accounts: string[]; total: number }>(
      request,
      "user list",
      compact({ prefix: q, limit: String(PAGE_SIZE + 1), offset: String(offset) }),
    );
    const more = accounts.length > PAGE_SIZE;
    const shown = accounts.slice(0, PAGE_SIZE);
    const pageLink = (o: number) =>
      `${PATH}?${new URLSearchParams({ ...(q ? { q } : {}), offset: String(o) })}`;
    return env.page(request, reply, {
      title: "Accounts",
      current: "accounts",
      status: create ? 422 : 200,
      body: html`<h1>Accounts</h1>
        <p class="muted">${count(total, "account")} on this server.</p>
        ${searchForm({
          action: PATH,
          resultsId: "accounts-results",
          label: "Search accounts",
          testid: "accounts-search",
          fields: input({ name: "q", type: "search", label: "Name starts with", value: q }),
        })}
        <div id="accounts-results">
          ${table({
            caption: q ? `Accounts starting with “${q}”` : "Accounts",
            captionHidden: true,
            head: ["Account"],
            rows: shown.map((n) => [html`<a href="${accountPath(n)}">${n}</a>`]),
            empty: q ? `No account starts with “${q}”.` : "No accounts yet.",
            testid: "accounts-table",
          })}
          <nav class="actions" aria-label="Pages">
            ${offset > 0 ? html`<a href="${pageLink(Math.max(0, offset - PAGE_SIZE))}">Previous</a>` : ""}
            ${more ? html`<a href="${pageLink(offset + PAGE_SIZE)}">Next</a>` : ""}
          </nav>
        </div>
        ${createForm(request.session?.csrfToken, create)}`,
    });
  };

  app.get(route(PATH), (request, reply) => list(request, reply));

  app.post(route(PATH), async (request, reply) => {
    const body = formBody(request);
    try {
      const result = await env.run(request, "user add", {
        name: field(body, "name"),
        password: body.password ?? "",
      });
      const jid = (result.data as { jid: string }).jid;
      return redirect(request, reply, accountPath(jid.slice(0, jid.lastIndexOf("@"))), {
        kind: "success",
        text: `Account ${jid} created.`,
      });
    } catch (err) {
      const message = userMessage(err);
      if (message === undefined) throw err;
      const errors = err instanceof InputError ? err.fields : { name: message };
      return list(request, reply, { values: { name: field(body, "name") }, errors });
    }
  });

  const show = async (
    request: FastifyRequest<{ Params: { name: string } }>,
    reply: FastifyReply,
    password?: FormState,
  ) => {
    const name = request.params.name;
    const [{ name: normalised, jid, disabled, createdAt }, { sessions }, { admins }] = await Promise.all([
      env.data<{ name: string; jid: string; disabled: boolean; createdAt: string }>(request, "user show", {
        name,
      }),
      env.data<{ sessions: LiveSession[] }>(request, "user sessions", { name }),
      env.data<{ admins: { name: string }[] }>(request, "admin list"),
    ]);
    const csrf = request.session?.csrfToken;
    const isAdmin = admins.some((a) => a.name === normalised);
    return env.page(request, reply, {
      title: `Account ${normalised}`,
      current: "accounts",
      status: password ? 422 : 200,
      body: html`<h1>Account <span data-testid="account-jid">${jid}</span></h1>
        <p>
          <span data-testid="account-state">${disabled ? badge("disabled", "bad") : badge("enabled", "ok")}</span>
          ${isAdmin ? badge("administrator", "info") : ""}
          created ${instant(Date.parse(createdAt))}
        </p>
        <h2>Live sessions</h2>
        ${table({
          caption: `Live sessions of ${jid}`,
          captionHidden: true,
          head: ["Resource", "Address", "Connection", "Client", "Licence", "Since", ""],
          rows: sessionRows(normalised, sessions, csrf),
          empty: "No live sessions.",
          testid: "sessions-table",
        })}
        <div class="actions">
          ${
            sessions.length > 0
              ? actionButton({
                  action: `${accountPath(normalised)}/kick`,
                  label: "Kick every session",
                  csrfToken: csrf,
                  danger: true,
                  testid: "kick-all",
                  confirm: `Close every session of ${jid}?`,
                })
              : ""
          }
          ${
            disabled
              ? actionButton({
                  action: `${accountPath(normalised)}/enable`,
                  label: "Enable",
                  csrfToken: csrf,
                  testid: "enable-account",
                })
              : actionButton({
                  action: `${accountPath(normalised)}/disable`,
                  label: "Disable",
                  csrfToken: csrf,
                  danger: true,
                  testid: "disable-account",
                  confirm: `Disable ${jid}? It can no longer log in and its sessions are closed.`,
                })
          }
          ${
            isAdmin
              ? actionButton({
                  action: `${accountPath(normalised)}/admin-revoke`,
                  label: "Take the admin role",
                  csrfToken: csrf,
                  testid: "admin-revoke",
                  confirm: `Take the admin role from ${jid}?`,
                })
              : actionButton({
                  action: `${accountPath(normalised)}/admin-grant`,
                  label: "Make administrator",
                  csrfToken: csrf,
                  testid: "admin-grant",
                  confirm: `Let ${jid} use this console?`,
                })
          }
        </div>
        ${passwordForm(normalised, csrf, password)}
        <h2>Delete</h2>
        ${actionButton({ action: `${accountPath(normalised)}/delete`, label: "Delete this account and its data", csrfToken: csrf, danger: true, testid: "delete-account", confirm: `Delete ${jid} and all its data? This cannot be undone.` })}`,
    });
  };

  app.get<{ Params: { name: string } }>(route(`${PATH}/:name`), (request, reply) => show(request, reply));

  app.post<{ Params: { name: string } }>(route(`${PATH}/:name/password`), async (request, reply) => {
    const body = formBody(request);
    try {
      await env.run(request, "user passwd", { name: request.params.name, password: body.password ?? "" });
      return redirect(request, reply, accountPath(request.params.name), {
        kind: "success",
        text: `Password of ${request.params.name} changed.`,
      });
    } catch (err) {
      const message = userMessage(err);
      if (message === undefined) throw err;
      const errors = err instanceof InputError ? err.fields : { password: message };
      return show(request, reply, { values: {}, errors });
    }
  });

  app.post<{ Params: { name: string } }>(route(`${PATH}/:name/kick`), async (request, reply) => {
    const resource = field(formBody(request), "resource");
    return act(env, request, reply, {
      command: "user kick",
      input: compact({ name: request.params.name, resource }),
      back: accountPath(request.params.name),
      success: (r) => r.message,
    });
  });

  const simple: [string, string, (name: string) => string, string?][] = [
    ["disable", "user disable", (n) => `${n} disabled; its sessions were closed.`],
    ["enable", "user enable", (n) => `${n} enabled.`],
    ["admin-grant", "admin grant", (n) => `${n} may now use the console.`],
    ["admin-revoke", "admin revoke", (n) => `${n} no longer holds the admin role.`],
    ["delete", "user delete", (n) => `${n} deleted.`, PATH],
  ];
  for (const [word, command, text, back] of simple) {
    app.post<{ Params: { name: string } }>(route(`${PATH}/:name/${word}`), async (request, reply) =>
      act(env, request, reply, {
        command,
        input: { name: request.params.name },
        back: back ?? accountPath(request.params.name),
        success: () => text(request.params.name),
      }),
    );
  }
}
