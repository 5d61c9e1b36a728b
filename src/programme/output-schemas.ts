/**
 * The layout of the programme's admin commands' results (`--json`, the API's `data`), as zod
 * schemas typed against the programme's own records, so a change of the model that the
 * published schemas do not follow fails to compile. Instants are epoch milliseconds (UTC).
 */
import { z } from "zod";
import { epochInstant as instant, licenceSchemaWith } from "../commands/output-schemas.js";
import type { Licence, Publisher } from "../licensing/index.js";
import type {
  Application,
  ApplicationEvent,
  MailRef,
  Notice,
  NoticeRecipient,
  OutboxMail,
  PortalAccountView,
  RecipientMail,
} from "./model.js";
import type { NoticeDetail, NoticeSummary } from "./notices.js";
import type { MailLink } from "./portal-accounts.js";

const applicationStatus = z.enum(["submitted", "under-review", "approved", "rejected"]);
const actor = z
  .string()
  .describe(
    'who: "portal:<account id>" for the publisher, the admin actor ("cli:<os user>", "console:<account>", …) otherwise',
  );

const applicationEvent: z.ZodType<ApplicationEvent> = z.object({
  at: instant,
  actor,
  status: applicationStatus.describe("the status the application took"),
  note: z.string().optional(),
});

export const applicationSchema: z.ZodType<Application> = z.object({
  id: z.string().describe("apl_…, sortable by submission time"),
  accountId: z.string().describe("the portal account that submitted it (pu_…)"),
  status: applicationStatus,
  organisation: z.string(),
  contactName: z.string(),
  contactEmail: z.string(),
  appName: z.string(),
  description: z.string(),
  platforms: z.array(z.string()).describe("lower case; may be empty for a gateway"),
  website: z.string().optional(),
  expectedUsers: z.number().int().min(0),
  scope: z.enum(["client", "gateway"]).describe("a client licence, or a gateway licence for a component"),
  domain: z.string().optional().describe("a gateway's component domain"),
  termsAccepted: z.literal(true),
  submittedAt: instant,
  updatedAt: instant,
  approvingSince: instant.optional().describe("set while an approval runs"),
  decidedAt: instant.optional(),
  decidedBy: actor.optional(),
  rejectionReason: z.string().optional(),
  publisherId: z.string().optional().describe("the publisher the approval created or used"),
  clientId: z.string().optional().describe("the app the approval registered"),
  licenceId: z.string().optional().describe("the licence the approval granted"),
  history: z.array(applicationEvent).describe("every change of status, oldest first"),
});

export const licenceSchema: z.ZodType<Licence> = licenceSchemaWith({});

const publisherSchema: z.ZodType<Publisher> = z.object({
  id: z.string().describe("pub_…"),
  organisation: z.string(),
  contactEmail: z.string(),
  createdAt: instant,
});

export const addresseeSchema = z.object({
  publisher: publisherSchema,
  reasons: z
    .array(z.string())
    .optional()
    .describe('for an "affected" audience: why the publisher is in it, one line per app'),
});

export const policyChangeRef = z
  .object({
    auditId: z.number().int().optional().describe("the audit record of the policy change"),
    at: instant.optional(),
  })
  .describe('for an "affected" audience: the policy change it was computed from');

const audience = z
  .union([z.literal("all"), z.literal("affected"), z.templateLiteral(["publisher:", z.string()])])
  .describe('"all", "affected" (by a policy change) or "publisher:<id>"');

export const noticeSchema: z.ZodType<Notice> = z.object({
  id: z.string().describe("ntc_…, sortable by creation time"),
  subject: z.string(),
  body: z.string(),
  audience,
  policyChange: policyChangeRef.optional(),
  requiresAck: z.boolean().describe("publishers are asked to acknowledge it"),
  createdAt: instant,
  createdBy: actor,
  recipients: z.number().int().min(0).describe("how many publishers it went to"),
});

const delivery = z.enum(["pending", "delivered", "bounced"]);

const recipientMail: z.ZodType<RecipientMail> = z.object({
  mailId: z.string(),
  queuedAt: instant,
  delivery,
  emailedAt: instant.optional().describe("when the SMTP relay accepted it"),
  bouncedAt: instant.optional(),
  error: z.string().optional(),
});

export const recipientSchema: z.ZodType<NoticeRecipient> = z.object({
  noticeId: z.string(),
  publisherId: z.string(),
  organisation: z.string(),
  email: z.string().describe("the address the notice (or the latest reminder) went to"),
  reasons: z.array(z.string()).optional().describe('for "affected": why, one line per app'),
  mailId: z.string().describe("the notice's mail in the outbox"),
  queuedAt: instant,
  delivery,
  emailedAt: instant.optional().describe("when the SMTP relay accepted the notice's mail"),
  bouncedAt: instant.optional(),
  deliveryError: z.string().optional(),
  readAt: instant.optional().describe("first read in the portal"),
  acknowledgedAt: instant.optional(),
  acknowledgedBy: z
    .string()
    .optional()
    .describe("the portal account that acknowledged, or the actor who recorded it"),
  remindersSent: z.number().int().min(0),
  lastReminderAt: instant.optional(),
  reminders: z.array(recipientMail).describe("each reminder mail and what became of it"),
});

export const summarySchema: z.ZodType<NoticeSummary> = z.object({
  recipients: z.number().int().min(0),
  delivered: z.number().int().min(0),
  bounced: z.number().int().min(0),
  pending: z.number().int().min(0),
  read: z.number().int().min(0),
  acknowledged: z.number().int().min(0),
});

export const noticeDetailSchema: z.ZodType<NoticeDetail> = z.object({
  notice: noticeSchema,
  recipients: z.array(recipientSchema),
  summary: summarySchema,
});

const mailStatus = z.enum(["queued", "sending", "sent", "bounced"]);

export const mailLinkSchema: z.ZodType<MailLink> = z
  .object({
    url: z.string().describe("the portal link the mail carries"),
    purpose: z.enum(["verify", "reset"]).describe("a confirmation link or a password reset link"),
    valid: z
      .boolean()
      .describe("still usable: not used, not replaced by a newer link, not expired, the account enabled"),
  })
  .describe("the confirmation or reset link in the mail, for an operator to pass on");

const mailRef: z.ZodType<MailRef> = z
  .union([
    z.object({ kind: z.enum(["notice", "reminder"]), noticeId: z.string(), publisherId: z.string() }),
    z.object({ kind: z.literal("application"), applicationId: z.string(), event: applicationStatus }),
    z.object({
      kind: z.literal("account"),
      accountId: z.string(),
      purpose: z.enum(["verify", "reset", "already-registered"]),
    }),
  ])
  .describe("what the mail is about");

const mailFields = {
  id: z.string().describe("mail_…, sortable by creation time"),
  to: z.string(),
  subject: z.string(),
  ref: mailRef.optional(),
  status: mailStatus,
  createdAt: instant,
  attempts: z.number().int().min(0),
  nextAttemptAt: instant.describe("not attempted before this instant"),
  leaseUntil: instant.optional().describe('while "sending": when another worker may take it over'),
  lastAttemptAt: instant.optional(),
  lastError: z.string().optional(),
  sentAt: instant.optional(),
  bouncedAt: instant.optional(),
  response: z.string().optional().describe("the relay's reply"),
};

export const outboxMailSchema: z.ZodType<OutboxMail> = z.object({
  ...mailFields,
  text: z.string().describe("the mail's text"),
});

/** A mail as lists show it: without its text, with the link it carries. */
export const listedMailSchema: z.ZodType<Omit<OutboxMail, "text"> & { link?: MailLink }> = z.object({
  ...mailFields,
  link: mailLinkSchema.optional(),
});

export const relaySchema = z
  .object({
    configured: z.boolean().describe("mail.smtp.host is set: mails leave; otherwise they wait in the outbox"),
    host: z.string().optional().describe("host:port of the relay"),
  })
  .describe("the SMTP relay as configured");

export const mailCountsSchema: z.ZodType<Record<OutboxMail["status"], number>> = z
  .object({
    queued: z.number().int().min(0),
    sending: z.number().int().min(0),
    sent: z.number().int().min(0),
    bounced: z.number().int().min(0),
  })
  .describe("the whole outbox's mails by status");

export const portalAccountSchema = z.object({
  id: z.string().describe("pu_…"),
  email: z.string().describe("lower case"),
  emailVerified: z.boolean(),
  verifiedAt: instant.optional(),
  createdAt: instant,
  passwordChangedAt: instant,
  lastLoginAt: instant.optional(),
  publisherId: z.string().optional().describe("the publisher it acts for, once an application is approved"),
  disabled: z.boolean().optional(),
  confirmation: z
    .object({
      mailId: z.string(),
      mailStatus,
      link: mailLinkSchema.optional(),
    })
    .optional()
    .describe("an unconfirmed account's latest confirmation mail"),
}) satisfies z.ZodType<PortalAccountView>;
