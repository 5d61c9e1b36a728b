/**
 * Admin commands of the outbox, for the CLI, the HTTP API and the console alike: what mails
 * wait or went (with the confirmation and reset links they carry, which is how an operator
 * without an SMTP relay passes a link on), one mail in full, and sending one again.
 */
import { z } from "zod";
import { auditCommand } from "../commands/audit.js";
import { iso } from "../commands/input.js";
import { count } from "../commands/plural.js";
import { type CommandContext, CommandError, defineCommand } from "../core/commands.js";
import type { MailStatus, OutboxMail } from "./model.js";
import {
  listedMailSchema,
  mailCountsSchema,
  mailLinkSchema,
  outboxMailSchema,
  relaySchema,
} from "./output-schemas.js";
import type { MailLink } from "./portal-accounts.js";
import { createServices, type ProgrammeServices } from "./services.js";

function servicesOf(ctx: CommandContext): ProgrammeServices {
  return createServices({ storage: ctx.storage, clock: ctx.clock, config: ctx.config });
}

/** The SMTP relay as configured: mails leave only when there is one. */
export interface RelayState {
  configured: boolean;
  host?: string;
}

export function relayOf(ctx: CommandContext): RelayState {
  const host = ctx.config.mail.smtp.host;
  return host === undefined
    ? { configured: false }
    : { configured: true, host: `${host}:${ctx.config.mail.smtp.port}` };
}

export function relayLine(relay: RelayState): string {
  return relay.configured
    ? `SMTP relay: ${relay.host}`
    : "no SMTP relay configured (mail.smtp.host): mails wait here; pass their links on yourself";
}

/** An outbox mail as listed: without its text, with its link when it carries one. */
export type ListedMail = Omit<OutboxMail, "text"> & { link?: MailLink };

async function listed(services: ProgrammeServices, mail: OutboxMail): Promise<ListedMail> {
  const { text: _text, ...rest } = mail;
  const link = await services.accounts.linkOf(mail);
  return { ...rest, ...(link ? { link } : {}) };
}

function mailLine(m: ListedMail): string {
  const lines = [
    `${m.id}  ${m.status.padEnd(7)}  ${iso(m.createdAt).slice(0, 16)}  ${m.to}  ${m.subject}`,
    ...(m.attempts > 0
      ? [`  ${count(m.attempts, "attempt")}${m.lastError ? `, last error: ${m.lastError}` : ""}`]
      : []),
    ...(m.link
      ? [
          `  ${m.link.purpose === "verify" ? "confirmation" : "reset"} link (${m.link.valid ? "valid" : "no longer valid"}): ${m.link.url}`,
        ]
      : []),
  ];
  return lines.join("\n");
}

const STATUSES = ["queued", "sending", "sent", "bounced", "waiting"] as const;

export const mailList = defineCommand({
  name: ["mail", "list"],
  description:
    "List the outbox, newest first: mails waiting (queued, sending) or done (sent, bounced), with the confirmation and reset links they carry",
  args: [
    {
      name: "status",
      description: "only this status: queued, sending, sent, bounced, or waiting (queued and sending)",
    },
    { name: "limit", description: "at most this many (default 50)" },
  ],
  input: z.object({
    status: z.enum(STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(50),
  }),
  output: z.object({
    relay: relaySchema,
    counts: mailCountsSchema,
    mails: z.array(listedMailSchema).describe("newest first, within --status and --limit"),
  }),
  mutates: false,
  async run(ctx, input) {
    const services = servicesOf(ctx);
    const relay = relayOf(ctx);
    const wanted = (s: MailStatus) =>
      input.status === undefined ||
      input.status === s ||
      (input.status === "waiting" && (s === "queued" || s === "sending"));
    const all = await services.outbox.all();
    const counts = await services.outbox.counts();
    const mails: ListedMail[] = [];
    for (const m of all.filter((m) => wanted(m.status)).slice(0, input.limit))
      mails.push(await listed(services, m));
    return {
      message:
        [relayLine(relay), ...mails.map(mailLine)].join("\n") + (mails.length === 0 ? "\n(no mails)" : ""),
      data: { relay, counts, mails },
    };
  },
});

export const mailShow = defineCommand({
  name: ["mail", "show"],
  description: "Show one mail of the outbox with its text",
  args: [{ name: "id", description: "mail id (mail_…)", positional: true }],
  input: z.object({ id: z.string().trim().min(1) }),
  output: z.object({ mail: outboxMailSchema, link: mailLinkSchema.optional(), relay: relaySchema }),
  mutates: false,
  async run(ctx, input) {
    const services = servicesOf(ctx);
    const mail = await services.outbox.get(input.id);
    if (!mail) throw new CommandError(`no mail ${input.id} in the outbox`, 404);
    const link = await services.accounts.linkOf(mail);
    return {
      message: `${mailLine({ ...mail, ...(link ? { link } : {}) })}\n\n${mail.text}`,
      data: { mail, ...(link ? { link } : {}), relay: relayOf(ctx) },
    };
  },
});

export const mailResend = defineCommand({
  name: ["mail", "resend"],
  description:
    "Send a mail again: a waiting one now, a sent or bounced one as a copy; a confirmation mail whose link no longer works gets a new link",
  args: [{ name: "id", description: "mail id (mail_…)", positional: true }],
  input: z.object({ id: z.string().trim().min(1) }),
  output: z.object({
    mail: listedMailSchema.describe(
      "the mail queued: the same one (a waiting mail), a copy, or a new confirmation mail",
    ),
    relay: relaySchema,
  }),
  mutates: true,
  async run(ctx, input) {
    const services = servicesOf(ctx);
    const original = await services.outbox.get(input.id);
    if (!original) throw new CommandError(`no mail ${input.id} in the outbox`, 404);
    const link = await services.accounts.linkOf(original);
    let mail: OutboxMail;
    let how: string;
    if (link && !link.valid) {
      // A copy would carry a dead link: a confirmation gets a fresh one, a reset is the publisher's to ask for.
      if (link.purpose !== "verify" || original.ref?.kind !== "account")
        throw new CommandError(
          "the reset link in this mail no longer works; the publisher can ask for a new one on the portal",
          409,
        );
      mail = await services.accounts.reissueVerification(original.ref.accountId);
      how = "with a new confirmation link";
    } else {
      const resent = await services.outbox.resend(input.id);
      mail = resent.mail;
      how = resent.copy ? "as a copy" : "now";
    }
    await auditCommand(ctx, "mail.resend", `mail:${original.id}`, {
      after: { to: original.to, subject: original.subject, mail: mail.id },
    });
    const relay = relayOf(ctx);
    const newLink = await services.accounts.linkOf(mail);
    return {
      message: `${mail.id} queued ${how} for ${mail.to}${relay.configured ? "" : ` (${relayLine(relay)})`}${
        newLink ? `\nlink: ${newLink.url}` : ""
      }`,
      data: { mail: await listed(services, mail), relay },
    };
  },
});

export const mailCommands = [mailList, mailShow, mailResend];
