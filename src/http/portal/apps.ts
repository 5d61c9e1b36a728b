/**
 * A publisher's app after approval: its client_id, licence terms and expiry, its Ed25519
 * public keys — register one (pasted, or generated in the browser, whose private key is
 * downloaded and never sent) and revoke old ones to rotate — and its live usage: sessions
 * by version and the share below the minimum version. Keys are registered and revoked by
 * the `app key add|revoke` commands, as the operators would, with the actor "portal:<account>".
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import { commandErrorOf } from "../../core/commands.js";
import type { AppKey, ClientApp, LiveRow } from "../../licensing/index.js";
import {
  clientStatsReport,
  compareVersions,
  isValidVersion,
  type LicensingSnapshot,
  licenceStatusAt,
} from "../../licensing/index.js";
import {
  actionButton,
  badge,
  csrfField,
  emptyState,
  errorSummary,
  type FieldErrors,
  FORM_ERROR,
  facts,
  humanize,
  input,
  instant,
  percent,
  table,
  textarea,
} from "../assets/components.js";
import { type FormBody, field, formBody, redirect, sendFragment } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { ProblemError } from "../problem.js";
import { GUIDE_PATH, INTEGRATION_ANCHOR, SDK_PATH } from "./documents.js";
import { PORTAL, type PortalEnv, route } from "./env.js";

const appPath = (clientId: string) => `${PORTAL}/apps/${encodeURIComponent(clientId)}`;
const USAGE_REFRESH = "every 15s";

const KEY_LABELS = { keyId: "Key id", publicKey: "Public key" };

/** Sessions of one app by version, and how many run a version below the minimum. */
export interface AppUsage {
  sessions: number;
  accounts: number;
  byVersion: { version: string | null; sessions: number; accounts: number; belowMinimum: boolean }[];
  minVersion?: string;
  belowMinimum: number;
  /** Share of the app's sessions below the minimum version (null without sessions). */
  belowShare: number | null;
  /** Whether any server reported live figures. */
  measured: boolean;
}

export function appUsage(
  rows: readonly LiveRow[] | undefined,
  clientId: string,
  minVersion?: string,
): AppUsage {
  const byVersion = new Map<string | null, { sessions: number; accounts: number }>();
  for (const r of rows ?? []) {
    // Only sessions that proved this app's licence are the app's.
    if (r.clientId !== clientId || r.status !== "verified") continue;
    const v = byVersion.get(r.version) ?? { sessions: 0, accounts: 0 };
    v.sessions += r.sessions;
    v.accounts += r.accounts;
    byVersion.set(r.version, v);
  }
  const below = (version: string | null) =>
    minVersion !== undefined &&
    (version === null || !isValidVersion(version) || compareVersions(version, minVersion) < 0);
  const list = [...byVersion].map(([version, t]) => ({ version, ...t, belowMinimum: below(version) }));
  list.sort((a, b) =>
    a.version && b.version && isValidVersion(a.version) && isValidVersion(b.version)
      ? compareVersions(b.version, a.version)
      : String(a.version).localeCompare(String(b.version)),
  );
  const sessions = list.reduce((s, r) => s + r.sessions, 0);
  const belowMinimum = list.filter((r) => r.belowMinimum).reduce((s, r) => s + r.sessions, 0);
  return {
    sessions,
    accounts: list.reduce((s, r) => s + r.accounts, 0),
    byVersion: list,
    ...(minVersion !== undefined ? { minVersion } : {}),
    belowMinimum,
    belowShare: sessions === 0 ? null : belowMinimum / sessions,
    measured: rows !== undefined,
  };
}

function usagePanel(clientId: string, usage: AppUsage): SafeHtml {
  return html`<section id="usage" aria-labelledby="h-usage" hx-get="${appPath(clientId)}/usage" hx-trigger="${USAGE_REFRESH}" hx-swap="outerHTML" data-testid="usage">
    <h2 id="h-usage">Live usage</h2>
    ${
      !usage.measured
        ? emptyState("No live figures: the network's servers have not reported any yet.")
        : html`<div class="cards">
            <div class="card"><h3>Sessions now</h3><p class="figure" data-testid="usage-sessions">${usage.sessions}</p>
              <p class="muted">${count(usage.accounts, "account")}</p></div>
            <div class="card"><h3>Below the minimum version</h3><p class="figure" data-testid="usage-below">${percent(usage.belowShare)}</p>
              <p class="muted">${usage.minVersion ? `${count(usage.belowMinimum, "session")} older than ${usage.minVersion}` : "no minimum version set"}</p></div>
          </div>
          ${table({
            caption: "Live sessions by version",
            captionHidden: true,
            head: ["Version", "Sessions", "Accounts", ""],
            numeric: [1, 2],
            rows: usage.byVersion.map((r) => [
              r.version ?? "unknown",
              r.sessions,
              r.accounts,
              r.belowMinimum ? badge("below the minimum", "bad") : "",
            ]),
            empty: "Nobody is connected with this app right now.",
            testid: "usage-table",
          })}`
    }
  </section>`;
}

/** A refused key registration as messages on the form's fields; undefined for a bug. */
function keyErrors(err: unknown): FieldErrors | undefined {
  if (err instanceof ProblemError && err.problemType === "validation-error") {
    const first = (err.extensions.errors as { path: string; message: string }[] | undefined)?.[0];
    const name = first?.path === "keyId" ? "keyId" : "publicKey";
    return humanize({ [name]: first?.message ?? err.message }, KEY_LABELS);
  }
  const refused = commandErrorOf(err);
  if (!refused) return undefined;
  const m = refused.message;
  const name = /key id|has a key/i.test(m) ? "keyId" : /public key/i.test(m) ? "publicKey" : FORM_ERROR;
  return humanize({ [name]: m }, KEY_LABELS);
}

interface KeyForm {
  values: FormBody;
  errors: FieldErrors;
}

function keysSection(app: ClientApp, keys: AppKey[], csrf: string | undefined, form?: KeyForm): SafeHtml {
  const active = keys.filter((k) => k.revokedAt === undefined);
  const suggested = `k${keys.length + 1}`;
  const v = form?.values ?? {};
  return html`<section aria-labelledby="h-keys">
    <h2 id="h-keys">Signing keys</h2>
    <p>Your client signs a proof with an Ed25519 private key at each login; the network checks it with the public key registered here. To rotate: register the new key, ship it in your client, then revoke the old one.</p>
    ${table({
      caption: "Public keys",
      captionHidden: true,
      head: ["Key id", "Public key", "Registered", "State", ""],
      rows: keys.map((k) => [
        html`<span class="mono">${k.keyId}</span>`,
        html`<span class="mono" data-testid="public-key-${k.keyId}">${k.publicKey}</span>`,
        instant(k.createdAt),
        k.revokedAt === undefined
          ? badge("active", "ok")
          : html`${badge("revoked", "bad")} ${instant(k.revokedAt)}`,
        k.revokedAt === undefined
          ? actionButton({
              action: `${appPath(app.clientId)}/keys/${encodeURIComponent(k.keyId)}/revoke`,
              label: "Revoke",
              csrfToken: csrf,
              danger: true,
              testid: `revoke-key-${k.keyId}`,
              confirm:
                active.length === 1
                  ? `Revoke ${k.keyId}, the app's only active key? Clients using it can no longer connect.`
                  : `Revoke ${k.keyId}? Clients still using it can no longer connect.`,
            })
          : "",
      ]),
      empty: "No keys yet: register one below so your client can prove its licence.",
      testid: "keys-table",
    })}
    <form id="key-form" method="post" action="${appPath(app.clientId)}/keys" class="stack card" data-client-id="${app.clientId}" novalidate>
      <h3>Register a public key</h3>
      ${errorSummary(form?.errors, KEY_LABELS)}
      ${csrfField(csrf)}
      ${input({ name: "keyId", label: KEY_LABELS.keyId, required: true, value: field(v, "keyId") || suggested, errors: form?.errors, hint: "A name for the key, unique in this app, e.g. k2 or android-2026." })}
      <div class="actions">
        <button type="button" id="generate-key" class="secondary" hidden data-testid="generate-key">Generate a key pair in this browser</button>
        <a id="private-key-download" hidden data-testid="private-key-download">Download the private key again</a>
      </div>
      <p id="keygen-status" role="status" aria-live="polite" data-testid="keygen-status"></p>
      ${textarea({ name: "publicKey", label: KEY_LABELS.publicKey, required: true, rows: 2, value: field(v, "publicKey"), errors: form?.errors, hint: "Ed25519 public key: base64 of the 32 raw bytes or a PEM public key (from any Ed25519 tool: openssl pkey -in KEY -pubout, or switchboard keygen's FILE.pub). Never paste a private key." })}
      <div class="actions"><button type="submit" data-testid="register-key">Register the key</button></div>
    </form>
  </section>`;
}

function licenceSection(snapshot: LicensingSnapshot, clientId: string, now: number): SafeHtml {
  const licences = snapshot.licences.get(clientId) ?? [];
  return html`<section aria-labelledby="h-licence">
    <h2 id="h-licence">Licence</h2>
    ${table({
      caption: "Licences of the app",
      captionHidden: true,
      head: ["Licence", "Scope", "State", "Valid from", "Valid until", "Concurrent sessions", "Terms"],
      rows: licences.map((l) => {
        const state = licenceStatusAt(l, now);
        return [
          html`<span class="mono">${l.id}</span>`,
          l.scope,
          badge(state, state === "active" ? "ok" : state === "pending" ? "info" : "bad"),
          instant(l.validFrom),
          html`<span data-testid="licence-until">${instant(l.validUntil, "no end")}</span>`,
          l.maxSessions ?? "unlimited",
          l.termsRef ?? "—",
        ];
      }),
      empty: "No licence: your app's users connect as unlicensed clients.",
      testid: "licence-table",
    })}
  </section>`;
}

export function registerApps(app: FastifyInstance, env: PortalEnv): void {
  const { programme, storage, clock } = env.deps;

  /** The app, when the signed-in account's publisher owns it; a 404 otherwise (no probing). */
  const owned = async (request: FastifyRequest, clientId: string) => {
    const snapshot = await programme.registry.snapshot();
    const a = snapshot.apps.get(clientId);
    const publisherId = env.account(request).publisherId;
    if (!a || publisherId === undefined || a.publisherId !== publisherId) {
      throw new ProblemError(404, "not-found", "There is no such app in your account.");
    }
    return { app: a, snapshot };
  };

  const usageOf = async (snapshot: LicensingSnapshot, clientId: string) => {
    const report = await clientStatsReport(storage, clock, { snapshot });
    return appUsage(report.live?.rows, clientId, snapshot.policy.apps[clientId]?.minVersion);
  };

  const show = async (
    request: FastifyRequest<{ Params: { clientId: string } }>,
    reply: FastifyReply,
    form?: KeyForm,
  ) => {
    const { app: a, snapshot } = await owned(request, request.params.clientId);
    const now = clock.now();
    const keys = [...(snapshot.keys.get(a.clientId)?.values() ?? [])].sort(
      (x, y) => x.createdAt - y.createdAt,
    );
    const rules = snapshot.policy.apps[a.clientId] ?? {};
    return env.page(request, reply, {
      title: `App ${a.name}`,
      current: "home",
      status: form ? 422 : 200,
      scripts: ["keys"],
      body: html`<h1>${a.name}</h1>
        ${facts(
          [
            ["Client id", html`<code data-testid="client-id">${a.clientId}</code>`],
            ["Platforms", a.platforms.join(", ") || "—"],
            ["Minimum version", rules.minVersion ?? "none"],
            ["Recommended version", rules.recommendedVersion ?? "none"],
            ["Blocked versions", rules.blocked?.map((b) => `${b.from}–${b.to}`).join(", ") || "none"],
          ],
          "app-facts",
        )}
        <p class="hint">Your client sends the client id, its version and platform, the key id and a signature at login; see the <a href="${GUIDE_PATH}#${INTEGRATION_ANCHOR}" data-testid="integration-guide">integration guide</a> and the <a href="${SDK_PATH}" data-testid="sdk-link">client SDK</a>.</p>
        ${licenceSection(snapshot, a.clientId, now)}
        ${keysSection(a, keys, request.session?.csrfToken, form)}
        ${usagePanel(a.clientId, await usageOf(snapshot, a.clientId))}`,
    });
  };

  app.get<{ Params: { clientId: string } }>(route(`${PORTAL}/apps/:clientId`), (request, reply) =>
    show(request, reply),
  );

  app.get<{ Params: { clientId: string } }>(
    route(`${PORTAL}/apps/:clientId/usage`),
    async (request, reply) => {
      const { app: a, snapshot } = await owned(request, request.params.clientId);
      return sendFragment(reply, usagePanel(a.clientId, await usageOf(snapshot, a.clientId)));
    },
  );

  app.post<{ Params: { clientId: string } }>(
    route(`${PORTAL}/apps/:clientId/keys`),
    async (request, reply) => {
      const { app: a } = await owned(request, request.params.clientId);
      const body = formBody(request);
      const keyId = field(body, "keyId");
      const publicKey = field(body, "publicKey");
      const errors: FieldErrors = {};
      if (keyId === "") errors.keyId = "Give the key an id.";
      if (publicKey === "") errors.publicKey = "Paste the public key, or generate a key pair.";
      else if (/PRIVATE KEY/.test(publicKey)) {
        // Not stored, not echoed back: the form is shown again without it.
        errors.publicKey = "This is a private key. Never send it to anyone: paste the public key.";
        body.publicKey = "";
      }
      if (Object.keys(errors).length === 0) {
        try {
          await env.deps.runCommand(
            ["app", "key", "add"],
            { clientId: a.clientId, keyId, publicKey },
            env.actor(request),
          );
          return redirect(request, reply, appPath(a.clientId), {
            kind: "success",
            text: `Key ${keyId} registered. Clients signing with it can connect within a second (once the servers have read the change).`,
          });
        } catch (err) {
          const refused = keyErrors(err);
          if (!refused) throw err;
          Object.assign(errors, refused);
        }
      }
      return show(request, reply, { values: body, errors });
    },
  );

  app.post<{ Params: { clientId: string; keyId: string } }>(
    route(`${PORTAL}/apps/:clientId/keys/:keyId/revoke`),
    async (request, reply) => {
      const { app: a } = await owned(request, request.params.clientId);
      try {
        await env.deps.runCommand(
          ["app", "key", "revoke"],
          { clientId: a.clientId, keyId: request.params.keyId },
          env.actor(request),
        );
        return redirect(request, reply, appPath(a.clientId), {
          kind: "success",
          text: `Key ${request.params.keyId} revoked.`,
        });
      } catch (err) {
        const refused = commandErrorOf(err);
        if (!refused) throw err;
        return redirect(request, reply, appPath(a.clientId), { kind: "error", text: refused.message });
      }
    },
  );
}

/** The apps of a publisher, for the overview. */
export function appsOf(snapshot: LicensingSnapshot, publisherId: string | undefined): ClientApp[] {
  if (publisherId === undefined) return [];
  return [...snapshot.apps.values()]
    .filter((a) => a.publisherId === publisherId)
    .sort((a, b) => a.name.localeCompare(b.name));
}
