/**
 * The policy editor: the policy in force and its schedule, and three forms (mode and
 * schedule, one app's version rules, exemptions). "Preview" runs `policy set` on a dry-run
 * storage to learn the policy the change would produce — same validation, nothing saved —
 * and shows what it would cut off now; "Save" runs `policy set` for real.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import type { AccessPolicy, ClientApp, CutoffPreview, PolicyStage } from "../../licensing/index.js";
import { scheduleRelaxations } from "../../licensing/index.js";
import {
  choices,
  csrfField,
  emptyState,
  errorSummary,
  type FieldErrors,
  FORM_ERROR,
  facts,
  input,
  instant,
  select,
  table,
} from "../assets/components.js";
import { type FormBody, field, formBody, redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { dryRunCommand, InputError, userMessage } from "./commands.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";
import { FORM_FIELD_OF, POLICY_SECTIONS, type PolicySection, policyInput } from "./policy-form.js";
import { type PolicyPreview, previewPolicy } from "./policy-preview.js";

interface PolicyShow {
  policy: AccessPolicy;
  revision: number;
  now: number;
  effective: { mode: string; percentage: number; stage: PolicyStage | null };
  next: PolicyStage | null;
  cutoff: PolicyStage | null;
}

const PATH = `${CONSOLE}/policy`;
const MODES = [
  { value: "open", label: "open: every client allowed" },
  { value: "warn", label: "warn: unlicensed clients allowed, their users warned" },
  { value: "enforce", label: "enforce: unlicensed clients refused" },
];

interface EditorState {
  section?: PolicySection;
  values?: FormBody;
  errors?: FieldErrors;
  preview?: PolicyPreview;
  /** A preview that could not be made shows the errors where the preview would be. */
  previewFailed?: boolean;
}

/** Stages that relax enforcement after an earlier one: allowed, but the operator should see it. */
function relaxationWarnings(policy: AccessPolicy, testid: string): SafeHtml {
  const relaxations = scheduleRelaxations(policy);
  if (relaxations.length === 0) return html``;
  return html`<div class="flash flash-warning" role="status" data-testid="${testid}">
    <p><strong>This schedule relaxes enforcement after it began.</strong> Clients are told the next cutoff, which then lies after a time of enforcement, and accounts go back and forth:</p>
    <ul>${relaxations.map(
      (r) =>
        html`<li>the stage of ${instant(r.stage.at)} (${r.stage.mode}${
          r.stage.percentage === undefined ? "" : ` for ${r.stage.percentage} % of accounts`
        }) puts accounts that were in ${r.before} back to ${r.stage.mode}</li>`,
    )}</ul>
  </div>`;
}

const stageLabel = (s: PolicyStage) =>
  html`${s.mode} from ${instant(s.at)}${s.percentage === undefined ? "" : ` for ${s.percentage} % of accounts`}`;

function summary(show: PolicyShow): SafeHtml {
  const p = show.policy;
  return html`${relaxationWarnings(p, "policy-relaxation")}${facts(
    [
      [
        "In force now",
        html`<strong data-testid="policy-effective">${show.effective.mode}</strong>${
          show.effective.percentage < 100 ? ` for ${show.effective.percentage} % of accounts` : ""
        }`,
      ],
      ["Next change", show.next ? stageLabel(show.next) : "nothing scheduled"],
      [
        "Cutoff",
        show.cutoff
          ? html`<span data-testid="policy-cutoff">${instant(show.cutoff.at)}</span>`
          : "none scheduled",
      ],
      ["Base mode", p.mode],
      ["Where users find licensed clients", p.infoUrl ?? "not set"],
      ["Default upgrade URL", p.upgradeUrl ?? "not set"],
      ["Exempt accounts", p.exemptions.join(", ") || "none"],
    ],
    "policy-summary",
  )}
  ${table({
    caption: "Version rules by app",
    head: ["App", "Minimum", "Recommended", "Blocked", "Upgrade URL"],
    rows: Object.entries(p.apps).map(([id, r]) => [
      html`<a href="${PATH}?app=${encodeURIComponent(id)}#app-rules" class="mono">${id}</a>`,
      r.minVersion ?? "—",
      r.recommendedVersion ?? "—",
      r.blocked?.map((b) => `${b.from}–${b.to}${b.reason ? ` (${b.reason})` : ""}`).join(", ") || "—",
      r.upgradeUrl ?? "—",
    ]),
    empty: "No app has version rules.",
    testid: "version-rules",
  })}`;
}

function buttons(section: PolicySection): SafeHtml {
  return html`<div class="actions">
    <button type="submit" name="intent" value="preview" class="secondary" hx-post="${PATH}" hx-vals='{"intent":"preview"}' hx-target="#policy-preview" hx-select="#policy-preview" hx-swap="outerHTML" data-testid="preview-${section}">Preview the effect</button>
    <button type="submit" name="intent" value="save" data-testid="save-${section}">Save</button>
  </div>`;
}

function sectionForm(
  section: PolicySection,
  title: string,
  state: EditorState,
  csrf: string | undefined,
  content: SafeHtml,
) {
  const errors = state.section === section ? state.errors : undefined;
  return html`<form method="post" action="${PATH}" class="stack card" id="policy-${section}-form" aria-labelledby="h-${section}" novalidate>
    <h2 id="h-${section}">${title}</h2>
    ${errorSummary(errors)}
    ${csrfField(csrf)}
    <input type="hidden" name="section" value="${section}">
    ${content}
    ${buttons(section)}
  </form>`;
}

function scheduleForm(p: AccessPolicy, now: number, state: EditorState, csrf: string | undefined): SafeHtml {
  const mine = state.section === "schedule";
  const v = mine ? (state.values ?? {}) : {};
  const errors = mine ? state.errors : undefined;
  const val = (name: string, fallback: string) => (mine ? field(v, name) : fallback);
  const stageOptions = p.stages.map((s) => ({
    value: String(s.at),
    label: `${s.at <= now ? "done" : "scheduled"}: ${s.mode} from ${new Date(s.at).toISOString().slice(0, 16).replace("T", " ")} UTC${
      s.percentage === undefined ? "" : ` (${s.percentage} %)`
    }`,
  }));
  return sectionForm(
    "schedule",
    "Mode and schedule",
    state,
    csrf,
    html`${select({ name: "mode", label: "Base mode (before the first stage)", options: MODES, value: val("mode", p.mode), errors })}
      ${
        stageOptions.length > 0
          ? choices({
              name: "removeStage",
              label: "Remove stages",
              multiple: true,
              options: stageOptions,
              values: mine
                ? Array.isArray(v.removeStage)
                  ? v.removeStage
                  : v.removeStage
                    ? [v.removeStage]
                    : []
                : [],
              errors,
            })
          : html`<p class="muted">No stages scheduled.</p>`
      }
      <fieldset>
        <legend>Schedule a stage</legend>
        <p class="hint">For a cutoff: a <strong>warn</strong> stage now, then <strong>enforce</strong> at the cutoff instant. A percentage rolls the stage out to part of the accounts.</p>
        ${input({ name: "stageAt", label: "From (UTC)", type: "datetime-local", value: val("stageAt", ""), errors })}
        ${select({ name: "stageMode", label: "Mode", options: MODES, value: val("stageMode", "enforce"), errors })}
        ${input({ name: "stagePercentage", label: "Share of accounts, % (optional, default 100)", type: "number", min: 0, max: 100, value: val("stagePercentage", ""), errors })}
      </fieldset>
      ${input({ name: "infoUrl", label: "Where users find licensed clients (URL)", type: "url", value: val("infoUrl", p.infoUrl ?? ""), errors, hint: "Quoted in warnings and refusals. Empty: not set." })}
      ${input({ name: "upgradeUrl", label: "Default upgrade URL", type: "url", value: val("upgradeUrl", p.upgradeUrl ?? ""), errors, hint: "For apps without their own." })}`,
  );
}

function appForm(
  p: AccessPolicy,
  apps: ClientApp[],
  selected: string,
  state: EditorState,
  csrf: string | undefined,
): SafeHtml {
  const mine = state.section === "app";
  const v = mine ? (state.values ?? {}) : {};
  const errors = mine ? state.errors : undefined;
  const rules = p.apps[selected] ?? {};
  const val = (name: string, fallback: string) => (mine ? field(v, name) : fallback);
  if (apps.length === 0) {
    return html`<section class="card" id="app-rules" aria-labelledby="h-app"><h2 id="h-app">Version rules of an app</h2>
      ${emptyState("No apps registered yet: version rules apply to registered apps.")}</section>`;
  }
  return html`<div id="app-rules">${sectionForm(
    "app",
    "Version rules of an app",
    state,
    csrf,
    html`${select({
      name: "app",
      label: "App",
      value: selected,
      errors,
      options: apps.map((a) => ({ value: a.clientId, label: `${a.clientId} (${a.name})` })),
      extra: html` hx-get="${PATH}" hx-trigger="change" hx-target="#app-rules" hx-select="#app-rules" hx-swap="outerHTML" hx-include="this"`,
    })}
      ${input({ name: "minVersion", label: "Minimum version", value: val("minVersion", rules.minVersion ?? ""), errors, hint: "Dotted numbers, e.g. 5.0.1. Older versions are refused with the upgrade URL. Empty: no minimum." })}
      ${input({ name: "recommended", label: "Recommended version", value: val("recommended", rules.recommendedVersion ?? ""), errors })}
      ${input({ name: "upgradeUrl", label: "Upgrade URL of this app", type: "url", value: val("upgradeUrl", rules.upgradeUrl ?? ""), errors })}
      ${input({ name: "block", label: "Block versions", value: val("block", ""), errors, hint: "FROM-TO (inclusive) or one version, e.g. 4.2.0-4.2.3" })}
      ${input({ name: "blockReason", label: "Why they are blocked (quoted in refusals)", value: val("blockReason", ""), errors })}
      ${
        rules.blocked && rules.blocked.length > 0
          ? choices({
              name: "unblock",
              label: "Unblock",
              multiple: true,
              errors,
              options: rules.blocked.map((b) => ({
                value: `${b.from}-${b.to}`,
                label: `${b.from}–${b.to}${b.reason ? ` (${b.reason})` : ""}`,
              })),
            })
          : ""
      }`,
  )}</div>`;
}

function exemptionsForm(p: AccessPolicy, state: EditorState, csrf: string | undefined): SafeHtml {
  const mine = state.section === "exemptions";
  const errors = mine ? state.errors : undefined;
  return sectionForm(
    "exemptions",
    "Exemptions",
    state,
    csrf,
    html`<p class="hint">Exempt accounts may connect with any client, whatever the mode (testing, support).</p>
      ${input({ name: "exempt", label: "Exempt accounts", value: mine ? field(state.values ?? {}, "exempt") : "", errors, hint: "Account names (before the @), separated by commas" })}
      ${
        p.exemptions.length > 0
          ? choices({
              name: "unexempt",
              label: "Remove exemptions",
              multiple: true,
              errors,
              options: p.exemptions.map((e) => ({ value: e, label: e })),
            })
          : ""
      }`,
  );
}

function cutoffTable(
  c: CutoffPreview,
  caption: string,
  unit: "sessions" | "clients",
  testid: string,
): SafeHtml {
  return html`<p data-testid="${testid}-summary"><strong>${c.sessions}</strong> ${unit === "sessions" ? (c.sessions === 1 ? "session" : "sessions") : c.sessions === 1 ? "client" : "clients"} of <strong>${c.accounts}</strong> ${c.accounts === 1 ? "account" : "accounts"}${
    c.spared.exempt.accounts > 0 ? `; ${count(c.spared.exempt.accounts, "exempt account")} spared` : ""
  }${c.spared.rollout.accounts > 0 ? `; ${count(c.spared.rollout.accounts, "account")} outside the rollout spared` : ""}.</p>
    ${table({
      caption,
      captionHidden: true,
      head: [
        "App",
        "Version",
        "Verification",
        "Why",
        unit === "sessions" ? "Sessions" : "Clients",
        "Accounts",
      ],
      numeric: [4, 5],
      rows: c.rows.map((r) => [
        r.clientId ?? "unknown",
        r.version ?? "—",
        r.status,
        r.reason,
        r.sessions,
        r.accounts,
      ]),
      empty: "Nothing would be cut off.",
      testid,
    })}`;
}

function previewSection(state: EditorState): SafeHtml {
  const preview = state.preview;
  if (!preview) {
    return html`<section id="policy-preview" aria-live="polite" aria-label="Preview">${
      state.previewFailed ? errorSummary(state.errors) : ""
    }</section>`;
  }
  const live = preview.live;
  return html`<section id="policy-preview" aria-live="polite" aria-labelledby="h-preview" class="card" data-testid="policy-preview">
    <h2 id="h-preview">Preview: what this change would cut off now</h2>
    <p>Nothing is saved yet. Resulting base mode: <strong>${preview.policy.mode}</strong>, ${count(preview.policy.stages.length, "stage")}, ${count(
      Object.keys(preview.policy.apps).length,
      "app",
    )} with version rules, ${count(preview.policy.exemptions.length, "exemption")}.</p>
    ${relaxationWarnings(preview.policy, "preview-relaxation")}
    <div class="sections">
      <div>
        <h3>Live sessions, right after saving</h3>
        ${live ? cutoffTable(live.afterSave, "Live sessions cut off after saving", "sessions", "preview-live") : emptyState("Live figures are not available in this process.")}
        <h3>Live sessions, once enforcement reaches every account</h3>
        ${live ? cutoffTable(live.enforced, "Live sessions cut off under full enforcement", "sessions", "preview-live-enforced") : emptyState("Live figures are not available in this process.")}
      </div>
      <div>
        <h3>Accounts active today (${preview.today.accounts}), right after saving</h3>
        ${cutoffTable(preview.today.afterSave, "Today's accounts refused after saving", "clients", "preview-today")}
        <h3>Accounts active today, once enforcement reaches every account</h3>
        ${cutoffTable(preview.today.enforced, "Today's accounts refused under full enforcement", "clients", "preview-today-enforced")}
      </div>
    </div>
  </section>`;
}

export function registerPolicy(app: FastifyInstance, env: ConsoleEnv): void {
  const render = async (
    request: FastifyRequest,
    reply: FastifyReply,
    state: EditorState,
    status = 200,
    selectedApp?: string,
  ) => {
    const [show, { apps }] = await Promise.all([
      env.data<PolicyShow>(request, "policy show"),
      env.data<{ apps: ClientApp[] }>(request, "app list"),
    ]);
    const csrf = request.session?.csrfToken;
    const wanted = selectedApp ?? "";
    const selected = apps.some((a) => a.clientId === wanted) ? wanted : (apps[0]?.clientId ?? "");
    return env.page(request, reply, {
      title: "Access policy",
      current: "policy",
      status,
      body: html`<h1>Access policy</h1>
        ${summary(show)}
        ${previewSection(state)}
        <div class="grid-2">
          ${scheduleForm(show.policy, show.now, state, csrf)}
          <div>
            ${appForm(show.policy, apps, selected, state, csrf)}
            ${exemptionsForm(show.policy, state, csrf)}
          </div>
        </div>
        <p><a href="${CONSOLE}/notices/new?audience=affected" data-testid="notify-affected">Send a notice to the publishers a policy change affects</a></p>`,
    });
  };

  app.get<{ Querystring: { app?: string } }>(route(PATH), (request, reply) =>
    render(request, reply, {}, 200, request.query.app),
  );

  app.post(route(PATH), async (request, reply) => {
    const body = formBody(request);
    const section = field(body, "section") as PolicySection;
    if (!POLICY_SECTIONS.includes(section)) {
      return render(request, reply, { errors: { [FORM_ERROR]: "Unknown form: reload the page." } }, 400);
    }
    const intent = field(body, "intent") === "preview" ? "preview" : "save";
    const appChoice = section === "app" ? field(body, "app") : undefined;
    const { policy: current } = await env.data<PolicyShow>(request, "policy show");
    const raw = policyInput(section, body, current);
    try {
      if (intent === "preview") {
        const result = await dryRunCommand(env.deps, request.admin!.actor, "policy set", raw);
        const policy = (result.data as { policy: AccessPolicy }).policy;
        const preview = await previewPolicy(env.deps.storage, env.deps.clock, policy, env.deps.previewCutoff);
        return render(request, reply, { section, values: body, preview }, 200, appChoice);
      }
      await env.run(request, "policy set", raw);
      return redirect(request, reply, `${PATH}${appChoice ? `?app=${encodeURIComponent(appChoice)}` : ""}`, {
        kind: "success",
        text: "Policy saved. It applies to live sessions within a second.",
      });
    } catch (err) {
      const message = userMessage(err);
      if (message === undefined) throw err;
      const errors: FieldErrors = {};
      if (err instanceof InputError) {
        for (const [k, m] of Object.entries(err.fields)) errors[FORM_FIELD_OF[k] ?? k] = m;
      } else {
        errors[FORM_ERROR] = message;
      }
      return render(
        request,
        reply,
        { section, values: body, errors, previewFailed: intent === "preview" },
        422,
        appChoice,
      );
    }
  });
}
