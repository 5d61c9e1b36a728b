/**
 * Notices to publishers: the list with delivery and acknowledgement counts, composing one
 * (to all publishers, to those a policy change affects, or to one; with a look at the
 * recipients before sending), and each notice per publisher — emailed at, delivered or
 * bounced, read at, acknowledged at, reminders — with reminders to those who have not
 * acknowledged. Runs `notice list|audience|send|show|remind`.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import type { ArchiveEntry } from "../../core/storage/types.js";
import type { AuditRecord, Publisher } from "../../licensing/index.js";
import type { Notice, NoticeRecipient } from "../../programme/model.js";
import type { Addressee, NoticeDetail, NoticeSummary } from "../../programme/notices.js";
import {
  actionButton,
  badge,
  checkbox,
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
  textarea,
} from "../assets/components.js";
import { type FormBody, field, formBody, redirect } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import { act } from "./actions.js";
import { compact, formErrors } from "./commands.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";

const PATH = `${CONSOLE}/notices`;
const noticePath = (id: string) => `${PATH}/${encodeURIComponent(id)}`;
const AUDIENCE_KINDS = ["all", "affected", "publisher"] as const;

function audienceText(a: Notice["audience"], publishers: Map<string, Publisher>): string {
  if (a === "all") return "all publishers";
  if (a === "affected") return "publishers affected by a policy change";
  const id = a.slice("publisher:".length);
  return publishers.get(id)?.organisation ?? id;
}

const summaryText = (s: NoticeSummary) =>
  `${s.delivered} delivered, ${s.bounced} bounced, ${s.pending} pending · ${s.read} read · ${s.acknowledged} of ${s.recipients} acknowledged`;

function deliveryBadge(r: NoticeRecipient): SafeHtml {
  if (r.delivery === "delivered") return badge("delivered", "ok");
  if (r.delivery === "bounced") return badge("bounced", "bad");
  return badge("pending", "warn");
}

interface ComposeState {
  values: FormBody;
  errors?: FieldErrors;
  addressees?: Addressee[];
}

function composeForm(
  publishers: Publisher[],
  changes: ArchiveEntry<AuditRecord>[],
  csrf: string | undefined,
  state: ComposeState,
): SafeHtml {
  const v = state.values;
  const errors = state.errors;
  const kind = field(v, "audienceKind") || "all";
  const ack = v.requiresAck === undefined ? !v._submitted : field(v, "requiresAck") !== "";
  return html`<form id="compose-form" method="post" action="${PATH}/new" class="stack" novalidate>
    ${errorSummary(errors, { subject: "Subject", body: "Text", audience: "Recipients", publisherId: "Publisher" })}
    ${csrfField(csrf)}
    <input type="hidden" name="_submitted" value="1">
    ${input({ name: "subject", label: "Subject", required: true, value: field(v, "subject"), errors, maxlength: 200 })}
    ${textarea({ name: "body", label: "Text", required: true, rows: 10, value: typeof v.body === "string" ? v.body : "", errors, hint: "Plain text; mailed as it is and shown in the portal." })}
    ${choices({
      name: "audienceKind",
      label: "Recipients",
      multiple: false,
      values: [kind],
      errors: errors?.audience ? { audienceKind: errors.audience } : undefined,
      options: [
        { value: "all", label: "All publishers" },
        { value: "affected", label: "Publishers affected by a policy change" },
        { value: "publisher", label: "One publisher" },
      ],
    })}
    ${select({
      name: "publisherId",
      label: "Publisher (for one publisher)",
      value: field(v, "publisherId"),
      errors,
      options: [
        { value: "", label: "—" },
        ...publishers.map((p) => ({ value: p.id, label: `${p.organisation} <${p.contactEmail}>` })),
      ],
    })}
    ${select({
      name: "policyChange",
      label: "Policy change (for affected publishers)",
      value: field(v, "policyChange"),
      errors,
      options: [
        { value: "", label: "the latest change" },
        ...changes.map((c) => ({
          value: String(c.id),
          label: `${new Date(c.at).toISOString().slice(0, 16).replace("T", " ")} UTC by ${c.data.actor}`,
        })),
      ],
    })}
    ${checkbox({ name: "requiresAck", label: "Ask each publisher to acknowledge it", checked: ack })}
    <div class="actions">
      <button type="submit" name="intent" value="audience" class="secondary" hx-post="${PATH}/new" hx-vals='{"intent":"audience"}' hx-target="#notice-audience" hx-select="#notice-audience" hx-swap="outerHTML" data-testid="show-recipients">Show the recipients</button>
      <button type="submit" name="intent" value="send" data-testid="send-notice">Send</button>
    </div>
  </form>
  <section id="notice-audience" aria-live="polite" aria-label="Recipients">${
    state.addressees
      ? html`<h2>${count(state.addressees.length, "recipient")}</h2>${table({
          caption: "Who the notice would go to",
          captionHidden: true,
          head: ["Publisher", "Email", "Why"],
          rows: state.addressees.map((a) => [
            a.publisher.organisation,
            a.publisher.contactEmail,
            a.reasons?.length ? html`<ul>${a.reasons.map((r) => html`<li>${r}</li>`)}</ul>` : "—",
          ]),
          empty: "Nobody: the notice would not be sent to anyone.",
          testid: "audience-table",
        })}`
      : state.errors && field(v, "intent") === "audience"
        ? errorSummary(state.errors)
        : ""
  }</section>`;
}

function audienceOf(v: FormBody): { audience: string; errors: FieldErrors } {
  const kind = field(v, "audienceKind") || "all";
  const errors: FieldErrors = {};
  if (!(AUDIENCE_KINDS as readonly string[]).includes(kind))
    errors.audience = "Choose who receives the notice.";
  if (kind === "publisher") {
    const id = field(v, "publisherId");
    if (id === "") errors.publisherId = "Choose the publisher.";
    return { audience: `publisher:${id}`, errors };
  }
  return { audience: kind, errors };
}

function recipientsTable(detail: NoticeDetail): SafeHtml {
  return html`<div id="recipients" hx-get="${noticePath(detail.notice.id)}" hx-trigger="every 15s" hx-select="#recipients" hx-swap="outerHTML">
    <p data-testid="notice-summary">${summaryText(detail.summary)}</p>
    ${table({
      caption: "Delivery and acknowledgement per publisher",
      captionHidden: true,
      head: ["Publisher", "Email", "Emailed at", "Delivery", "Read at", "Acknowledged at", "Reminders"],
      numeric: [6],
      rows: detail.recipients.map((r) => [
        html`<span data-testid="recipient-${r.publisherId}">${r.organisation}</span>`,
        r.email,
        instant(r.emailedAt, "not yet"),
        html`${deliveryBadge(r)}${r.deliveryError ? html` <span class="muted">${r.deliveryError}</span>` : ""}`,
        instant(r.readAt, "not read"),
        r.acknowledgedAt !== undefined
          ? html`<span data-testid="ack-${r.publisherId}">${instant(r.acknowledgedAt)}</span>`
          : html`<span class="muted" data-testid="ack-${r.publisherId}">not acknowledged</span>`,
        r.remindersSent,
      ]),
      empty: "No recipients.",
      testid: "recipients-table",
    })}
  </div>`;
}

export function registerNotices(app: FastifyInstance, env: ConsoleEnv): void {
  const publisherMap = async (request: FastifyRequest) =>
    (await env.data<{ publishers: Publisher[] }>(request, "publisher list")).publishers;

  app.get(route(PATH), async (request, reply) => {
    const [{ notices }, publishers] = await Promise.all([
      env.data<{ notices: { notice: Notice; summary: NoticeSummary }[] }>(request, "notice list"),
      publisherMap(request),
    ]);
    const byId = new Map(publishers.map((p) => [p.id, p]));
    return env.page(request, reply, {
      title: "Notices",
      current: "notices",
      body: html`<h1>Notices</h1>
        <p><a href="${PATH}/new" class="button" data-testid="compose-notice">Compose a notice</a></p>
        ${table({
          caption: "Notices, newest first",
          captionHidden: true,
          head: ["Sent", "Subject", "To", "Delivery", "Acknowledged"],
          rows: notices.map(({ notice, summary }) => [
            instant(notice.createdAt),
            html`<a href="${noticePath(notice.id)}" data-testid="notice-link">${notice.subject}</a>`,
            audienceText(notice.audience, byId),
            `${summary.delivered} delivered, ${summary.bounced} bounced, ${summary.pending} pending`,
            notice.requiresAck ? `${summary.acknowledged} of ${summary.recipients}` : "not asked",
          ]),
          empty: "No notices sent yet.",
          testid: "notices-table",
        })}`,
    });
  });

  const compose = async (request: FastifyRequest, reply: FastifyReply, state: ComposeState, status = 200) => {
    const [publishers, { entries }] = await Promise.all([
      publisherMap(request),
      env.data<{ entries: ArchiveEntry<AuditRecord>[] }>(request, "audit list", {
        kind: "policy.set",
        limit: "10",
      }),
    ]);
    return env.page(request, reply, {
      title: "Compose a notice",
      current: "notices",
      status,
      body: html`<h1>Compose a notice</h1>
        ${publishers.length === 0 ? emptyState("There are no publishers yet: a notice needs at least one recipient.") : ""}
        ${composeForm(publishers, [...entries].reverse(), request.session?.csrfToken, state)}`,
    });
  };

  app.get<{ Querystring: { audience?: string; publisher?: string } }>(
    route(`${PATH}/new`),
    (request, reply) => {
      const kind = request.query.audience ?? "all";
      return compose(request, reply, {
        values: {
          audienceKind: (AUDIENCE_KINDS as readonly string[]).includes(kind) ? kind : "all",
          publisherId: request.query.publisher ?? "",
        },
      });
    },
  );

  app.post(route(`${PATH}/new`), async (request, reply) => {
    const v = formBody(request);
    const intent = field(v, "intent") === "audience" ? "audience" : "send";
    const { audience, errors } = audienceOf(v);
    if (intent === "send") {
      if (field(v, "subject") === "") errors.subject = "Write a subject.";
      if (field(v, "body") === "") errors.body = "Write the text of the notice.";
    }
    if (Object.keys(errors).length > 0) return compose(request, reply, { values: v, errors }, 422);
    const policyChange = audience === "affected" ? field(v, "policyChange") : "";
    try {
      if (intent === "audience") {
        const { addressees } = await env.data<{ addressees: Addressee[] }>(
          request,
          "notice audience",
          compact({ audience, policyChange }),
        );
        return compose(request, reply, { values: v, addressees });
      }
      const result = await env.run(
        request,
        "notice send",
        compact({
          subject: field(v, "subject"),
          body: typeof v.body === "string" ? v.body : "",
          audience,
          policyChange,
          informational: field(v, "requiresAck") === "" ? "true" : "",
        }),
      );
      const detail = result.data as NoticeDetail;
      return redirect(request, reply, noticePath(detail.notice.id), {
        kind: "success",
        text: `Notice queued for ${count(detail.recipients.length, "publisher")}.`,
      });
    } catch (err) {
      const fieldErrors = formErrors(err);
      if (!fieldErrors) throw err;
      if (
        fieldErrors.audience === undefined &&
        fieldErrors[FORM_ERROR] === undefined &&
        fieldErrors.policyChange
      )
        fieldErrors.audience = fieldErrors.policyChange;
      return compose(request, reply, { values: v, errors: fieldErrors }, 422);
    }
  });

  app.get<{ Params: { id: string } }>(route(`${PATH}/:id`), async (request, reply) => {
    const [detail, publishers] = await Promise.all([
      env.data<NoticeDetail>(request, "notice show", { id: request.params.id }),
      publisherMap(request),
    ]);
    const n = detail.notice;
    const waiting = detail.recipients.filter((r) => r.acknowledgedAt === undefined).length;
    return env.page(request, reply, {
      title: `Notice: ${n.subject}`,
      current: "notices",
      body: html`<h1 data-testid="notice-subject">${n.subject}</h1>
        ${facts([
          ["Sent", html`${instant(n.createdAt)} by ${n.createdBy}`],
          ["To", audienceText(n.audience, new Map(publishers.map((p) => [p.id, p])))],
          ["Acknowledgement", n.requiresAck ? "requested" : "not requested (for information)"],
        ])}
        <details><summary>Text of the notice</summary><p class="notice-body">${n.body}</p></details>
        <h2>Per publisher</h2>
        ${recipientsTable(detail)}
        ${
          n.requiresAck && waiting > 0
            ? actionButton({
                action: `${noticePath(n.id)}/remind`,
                label: `Send a reminder to the ${waiting === 1 ? "publisher who has" : `${waiting} publishers who have`} not acknowledged`,
                csrfToken: request.session?.csrfToken,
                testid: "send-reminders",
              })
            : n.requiresAck
              ? html`<p>${badge("all acknowledged", "ok")}</p>`
              : ""
        }`,
    });
  });

  app.post<{ Params: { id: string } }>(route(`${PATH}/:id/remind`), (request, reply) =>
    act(env, request, reply, {
      command: "notice remind",
      input: { id: request.params.id },
      back: noticePath(request.params.id),
      success: (r) => r.message.charAt(0).toUpperCase() + r.message.slice(1) + ".",
    }),
  );
}
