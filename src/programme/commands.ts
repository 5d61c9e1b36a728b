/**
 * Admin commands of the licensing programme: the application queue, notices to publishers,
 * and the portal's users. Defined once, for the CLI, the HTTP API and the console. Run from
 * the CLI, mails are queued in the outbox and sent by the running server's worker.
 */
import { z } from "zod";
import { recordAudit } from "../commands/audit.js";
import { actorOf, flagInput, iso, parseInstant, table } from "../commands/input.js";
import { count } from "../commands/plural.js";
import { type CommandContext, CommandError, defineCommand } from "../core/commands.js";
import { APPLICATION_STATUSES } from "./applications.js";
import { mailCommands } from "./mail-commands.js";
import type { Application, Notice, NoticeRecipient, OutboxMail, PortalAccountView } from "./model.js";
import type { NoticeSummary } from "./notices.js";
import {
  addresseeSchema,
  applicationSchema,
  licenceSchema,
  noticeDetailSchema,
  noticeSchema,
  policyChangeRef,
  portalAccountSchema,
  recipientSchema,
  summarySchema,
} from "./output-schemas.js";
import { policyChangeFromAudit } from "./policy-change.js";
import type { MailLink } from "./portal-accounts.js";
import { createServices, type ProgrammeServices } from "./services.js";

function servicesOf(ctx: CommandContext): ProgrammeServices {
  return createServices({ storage: ctx.storage, clock: ctx.clock, config: ctx.config });
}

const id = z.string().trim().min(1);
const instant = (what: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined ? undefined : parseInstant(what, v)));

const applicationOutput = z.object({ application: applicationSchema });

function applicationLine(a: Application): string {
  return `${a.id}  ${a.status.padEnd(12)}  ${iso(a.submittedAt).slice(0, 10)}  ${a.appName} (${a.organisation})`;
}

function applicationText(a: Application): string {
  const rows: [string, string][] = [
    ["id", a.id],
    ["status", a.status],
    ["submitted", iso(a.submittedAt)],
    ["organisation", a.organisation],
    ["contact", `${a.contactName} <${a.contactEmail}>`],
    ["app", a.appName],
    a.scope === "gateway" ? ["domain", a.domain ?? "-"] : ["platforms", a.platforms.join(", ")],
    ["website", a.website ?? "-"],
    ["expected users", String(a.expectedUsers)],
    ["scope", a.scope],
  ];
  if (a.publisherId) rows.push(["publisher", a.publisherId]);
  if (a.clientId) rows.push(["client id", a.clientId]);
  if (a.licenceId) rows.push(["licence", a.licenceId]);
  if (a.decidedAt) rows.push(["decided", `${iso(a.decidedAt)} by ${a.decidedBy}`]);
  if (a.rejectionReason) rows.push(["reason", a.rejectionReason]);
  return `${table(rows)}\n\n${a.description}`;
}

export const applicationList = defineCommand({
  name: ["application", "list"],
  description: "List licence applications, oldest first (the review queue)",
  args: [{ name: "status", description: "only this status: submitted, under-review, approved, rejected" }],
  input: z.object({ status: z.enum(APPLICATION_STATUSES as [string, ...string[]]).optional() }),
  output: z.object({ applications: z.array(applicationSchema).describe("oldest first") }),
  mutates: false,
  async run(ctx, input) {
    const applications = await servicesOf(ctx).applications.list(
      input.status ? { status: input.status as Application["status"] } : {},
    );
    return {
      message: applications.map(applicationLine).join("\n") || "(no applications)",
      data: { applications },
    };
  },
});

export const applicationShow = defineCommand({
  name: ["application", "show"],
  description: "Show a licence application",
  args: [{ name: "id", description: "application id", positional: true }],
  input: z.object({ id }),
  output: applicationOutput,
  mutates: false,
  async run(ctx, input) {
    const application = await servicesOf(ctx).applications.require(input.id);
    return { message: applicationText(application), data: { application } };
  },
});

export const applicationReview = defineCommand({
  name: ["application", "review"],
  description: "Take a submitted application into review (its status becomes under-review)",
  args: [{ name: "id", description: "application id", positional: true }],
  input: z.object({ id }),
  output: applicationOutput,
  mutates: true,
  async run(ctx, input) {
    const application = await servicesOf(ctx).applications.startReview(input.id, actorOf(ctx));
    return { message: `application ${application.id} is under review`, data: { application } };
  },
});

export const applicationApprove = defineCommand({
  name: ["application", "approve"],
  description:
    "Approve an application: creates the publisher (if needed), the app and its licence (a gateway: its gateway licence), and mails the publisher",
  args: [
    { name: "id", description: "application id", positional: true },
    { name: "clientId", description: "the app's client id (default: derived from the app's name)" },
    { name: "publisherId", description: "use this existing publisher" },
    { name: "validFrom", description: "licence valid from (ISO 8601 instant; default now)" },
    { name: "validUntil", description: "licence valid until (ISO 8601 instant; default: no end)" },
    { name: "maxSessions", description: "most concurrent sessions under the licence" },
    { name: "terms", description: "reference to the agreed terms (text or URL)" },
  ],
  input: z.object({
    id,
    clientId: z.string().trim().min(1).optional(),
    publisherId: z.string().trim().min(1).optional(),
    validFrom: instant("valid-from"),
    validUntil: instant("valid-until"),
    maxSessions: z.coerce.number().int().min(1).optional(),
    terms: z.string().trim().min(1).optional(),
  }),
  output: z.object({
    application: applicationSchema,
    licence: licenceSchema.describe("the licence granted: the app's client licence, or the gateway licence"),
  }),
  mutates: true,
  async run(ctx, input) {
    const { application, licence } = await servicesOf(ctx).applications.approve(input.id, actorOf(ctx), {
      ...(input.clientId !== undefined ? { clientId: input.clientId } : {}),
      ...(input.publisherId !== undefined ? { publisherId: input.publisherId } : {}),
      ...(input.validFrom !== undefined ? { validFrom: input.validFrom } : {}),
      ...(input.validUntil !== undefined ? { validUntil: input.validUntil } : {}),
      ...(input.maxSessions !== undefined ? { maxSessions: input.maxSessions } : {}),
      ...(input.terms !== undefined ? { termsRef: input.terms } : {}),
    });
    return {
      message: `approved ${application.id}: ${application.scope === "gateway" ? `gateway ${application.domain}` : `app ${application.clientId}`} of publisher ${application.publisherId}, licence ${licence.id}`,
      data: { application, licence },
    };
  },
});

export const applicationReject = defineCommand({
  name: ["application", "reject"],
  description: "Reject an application with a reason (mailed to the publisher)",
  args: [
    { name: "id", description: "application id", positional: true },
    { name: "reason", description: "why (the publisher reads it)" },
  ],
  input: z.object({ id, reason: z.string().min(1) }),
  output: applicationOutput,
  mutates: true,
  async run(ctx, input) {
    const application = await servicesOf(ctx).applications.reject(input.id, actorOf(ctx), input.reason);
    return { message: `rejected ${application.id}`, data: { application } };
  },
});

const audienceArgs = [
  { name: "audience", description: 'who: "all", "affected" (by a policy change) or "publisher:<id>"' },
  {
    name: "policyChange",
    description: 'for "affected": the audit record id of the policy change (default: the latest one)',
  },
];

const audienceInput = {
  audience: z.string().trim().min(1),
  policyChange: z.coerce.number().int().min(1).optional(),
};

async function changeFor(ctx: CommandContext, audience: string, auditId: number | undefined) {
  if (audience !== "affected") {
    if (auditId !== undefined)
      throw new CommandError('--policy-change applies to the "affected" audience only');
    return undefined;
  }
  return policyChangeFromAudit(ctx.storage, auditId);
}

function summaryLine(s: NoticeSummary): string {
  return `${count(s.recipients, "recipient")}: ${s.delivered} delivered, ${s.bounced} bounced, ${s.pending} pending; ${s.read} read, ${s.acknowledged} acknowledged`;
}

const at = (t: number | undefined) => (t === undefined ? "-" : iso(t));

function recipientLine(r: NoticeRecipient): string {
  return [
    `${r.organisation} (${r.publisherId}) <${r.email}>`,
    `  emailed ${at(r.emailedAt)}  ${r.delivery}${r.deliveryError ? ` (${r.deliveryError})` : ""}`,
    `  read ${at(r.readAt)}  acknowledged ${at(r.acknowledgedAt)}  reminders ${r.remindersSent}`,
    ...(r.reasons ?? []).map((reason) => `  why: ${reason}`),
  ].join("\n");
}

export const noticeAudience = defineCommand({
  name: ["notice", "audience"],
  description: "Show who a notice to this audience would go to (and why, for an affected audience)",
  args: audienceArgs,
  input: z.object(audienceInput),
  output: z.object({
    addressees: z.array(addresseeSchema).describe("the publishers, by organisation"),
    policyChange: policyChangeRef.optional(),
  }),
  mutates: false,
  async run(ctx, input) {
    const change = await changeFor(ctx, input.audience, input.policyChange);
    const addressees = await servicesOf(ctx).notices.addressees(input.audience, change);
    const lines = addressees.map(({ publisher, reasons }) =>
      [
        `${publisher.organisation} (${publisher.id}) <${publisher.contactEmail}>`,
        ...(reasons ?? []).map((r) => `  ${r}`),
      ].join("\n"),
    );
    return {
      message: lines.join("\n") || "(nobody)",
      data: { addressees, ...(change ? { policyChange: { auditId: change.auditId, at: change.at } } : {}) },
    };
  },
});

export const noticeSend = defineCommand({
  name: ["notice", "send"],
  description: "Send a notice to publishers by mail; they read and acknowledge it in the portal",
  args: [
    { name: "subject", description: "subject line" },
    { name: "body", description: "the text of the notice" },
    ...audienceArgs,
    { name: "informational", description: "do not ask for acknowledgement", flag: true },
  ],
  input: z.object({
    subject: z.string().min(1),
    body: z.string().min(1),
    ...audienceInput,
    informational: flagInput,
  }),
  output: noticeDetailSchema,
  mutates: true,
  async run(ctx, input) {
    const change = await changeFor(ctx, input.audience, input.policyChange);
    const detail = await servicesOf(ctx).notices.send(actorOf(ctx), {
      subject: input.subject,
      body: input.body,
      audience: input.audience,
      requiresAck: !input.informational,
      ...(change ? { policyChange: change } : {}),
    });
    return {
      message: `notice ${detail.notice.id} queued for ${count(detail.recipients.length, "publisher")}`,
      data: detail,
    };
  },
});

export const noticeList = defineCommand({
  name: ["notice", "list"],
  description: "List notices, newest first, with delivery and acknowledgement counts",
  args: [],
  input: z.object({}),
  output: z.object({
    notices: z
      .array(z.object({ notice: noticeSchema, summary: summarySchema }))
      .describe("newest first, with delivery and acknowledgement counts"),
  }),
  mutates: false,
  async run(ctx) {
    const { notices } = servicesOf(ctx);
    const rows: { notice: Notice; summary: NoticeSummary }[] = [];
    for (const n of await notices.list()) {
      const detail = await notices.get(n.id);
      if (detail) rows.push({ notice: detail.notice, summary: detail.summary });
    }
    return {
      message:
        rows
          .map(
            ({ notice, summary }) =>
              `${notice.id}  ${iso(notice.createdAt).slice(0, 16)}  ${notice.subject}\n  ${summaryLine(summary)}`,
          )
          .join("\n") || "(no notices)",
      data: { notices: rows },
    };
  },
});

export const noticeShow = defineCommand({
  name: ["notice", "show"],
  description:
    "Show a notice and, per publisher, when it was emailed, delivered or bounced, read and acknowledged",
  args: [{ name: "id", description: "notice id", positional: true }],
  input: z.object({ id }),
  output: noticeDetailSchema,
  mutates: false,
  async run(ctx, input) {
    const detail = await servicesOf(ctx).notices.require(input.id);
    const n = detail.notice;
    return {
      message: [
        `${n.id}  ${n.subject}`,
        `sent ${iso(n.createdAt)} by ${n.createdBy} to ${n.audience}${n.requiresAck ? ", acknowledgement requested" : ""}`,
        summaryLine(detail.summary),
        "",
        ...detail.recipients.map(recipientLine),
      ].join("\n"),
      data: detail,
    };
  },
});

export const noticeRemind = defineCommand({
  name: ["notice", "remind"],
  description: "Mail a reminder to every publisher who has not acknowledged a notice",
  args: [{ name: "id", description: "notice id", positional: true }],
  input: z.object({ id }),
  output: z.object({
    reminded: z.array(recipientSchema).describe("the recipients reminded, as recorded after the reminder"),
  }),
  mutates: true,
  async run(ctx, input) {
    const reminded = await servicesOf(ctx).notices.remind(input.id, actorOf(ctx));
    return {
      message:
        reminded.length === 0
          ? "every recipient has acknowledged the notice"
          : `reminded ${count(reminded.length, "publisher")}: ${reminded.map((r) => r.organisation).join(", ")}`,
      data: { reminded },
    };
  },
});

/** The newest confirmation mail of an unconfirmed account, with its link (how an operator passes it on). */
export interface PendingConfirmation {
  mailId: string;
  mailStatus: OutboxMail["status"];
  link?: MailLink;
}

export const portalUserList = defineCommand({
  name: ["portal-user", "list"],
  description:
    "List the publisher portal's user accounts; an unconfirmed one shows the link of its latest confirmation mail",
  args: [
    { name: "search", description: "only addresses containing this" },
    { name: "unconfirmed", description: "only accounts whose address is not confirmed yet", flag: true },
  ],
  input: z.object({ search: z.string().optional(), unconfirmed: flagInput }),
  output: z.object({ accounts: z.array(portalAccountSchema) }),
  mutates: false,
  async run(ctx, input) {
    const services = servicesOf(ctx);
    const all = await services.accounts.list(input.search ? { search: input.search } : {});
    const shown = input.unconfirmed ? all.filter((a) => !a.emailVerified) : all;
    const latest = new Map<string, OutboxMail>();
    for (const m of await services.outbox.all()) {
      const ref = m.ref;
      if (ref?.kind === "account" && ref.purpose === "verify" && !latest.has(ref.accountId))
        latest.set(ref.accountId, m);
    }
    const accounts: (PortalAccountView & { confirmation?: PendingConfirmation })[] = [];
    for (const a of shown) {
      const mail = a.emailVerified ? undefined : latest.get(a.id);
      const link = mail && (await services.accounts.linkOf(mail));
      accounts.push(
        mail
          ? { ...a, confirmation: { mailId: mail.id, mailStatus: mail.status, ...(link ? { link } : {}) } }
          : a,
      );
    }
    const line = (a: (typeof accounts)[number]) =>
      [
        `${a.id}  ${a.email}  ${a.emailVerified ? "confirmed" : "unconfirmed"}${a.disabled ? " disabled" : ""}  publisher ${a.publisherId ?? "-"}  since ${iso(a.createdAt).slice(0, 10)}`,
        ...(a.confirmation
          ? [
              a.confirmation.link?.valid
                ? `  confirmation link: ${a.confirmation.link.url}`
                : `  confirmation link expired or used: switchboard mail resend ${a.confirmation.mailId}`,
            ]
          : []),
      ].join("\n");
    return {
      message: accounts.map(line).join("\n") || "(no portal users)",
      data: { accounts },
    };
  },
});

/**
 * Links a portal account to a publisher registered without one (`publisher add`), so the
 * publisher's people can read and acknowledge its notices and see its apps in the portal. An
 * operator's decision, as an approval is: the address alone never links an account to a
 * publisher (whoever confirms an address would otherwise reach the publisher's keys).
 */
export const portalUserLink = defineCommand({
  name: ["portal-user", "link"],
  description:
    "Let a portal account act for a publisher (one added with `publisher add`): it then sees the publisher's apps and notices",
  args: [
    { name: "account", description: "the portal account: its id or its email address", positional: true },
    { name: "publisher", description: "the publisher's id (required)" },
  ],
  input: z.object({ account: z.string().min(1), publisher: z.string().min(1) }),
  output: z.object({ account: portalAccountSchema }),
  mutates: true,
  async run(ctx, input) {
    const services = servicesOf(ctx);
    const account =
      (await services.accounts.get(input.account)) ?? (await services.accounts.byEmail(input.account));
    if (!account) throw new CommandError(`no portal account ${input.account}`, 404);
    if (!account.emailVerified)
      throw new CommandError(`${account.email} has not confirmed its address yet`, 409);
    const publisher = await services.registry.getPublisher(input.publisher);
    if (!publisher) throw new CommandError(`no publisher ${input.publisher}`, 404);
    const before = account.publisherId;
    const linked = await services.accounts.linkPublisher(account.id, publisher.id);
    if (before !== publisher.id)
      await recordAudit(ctx.storage, ctx.clock, "portal-user.link", {
        actor: actorOf(ctx),
        subject: `portal-account:${account.id}`,
        before: { publisherId: before ?? null },
        after: { publisherId: publisher.id, email: account.email },
      });
    return {
      message: `${account.email} acts for ${publisher.organisation} (${publisher.id})`,
      data: { account: linked },
    };
  },
});

export const programmeCommands = [
  applicationList,
  applicationShow,
  applicationReview,
  applicationApprove,
  applicationReject,
  noticeAudience,
  noticeSend,
  noticeList,
  noticeShow,
  noticeRemind,
  portalUserList,
  portalUserLink,
  ...mailCommands,
];
