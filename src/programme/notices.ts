/**
 * Notices to publishers, the modern form of a certified letter: a subject and a body sent by
 * mail to every publisher of the audience, each of whom is tracked: when the mail went out,
 * whether the relay delivered or bounced it, when the publisher read the notice in the portal,
 * when they acknowledged it, and how many reminders they were sent.
 *
 * Store: `documents("notices")`: "notice:<id>", "recipient:<notice id>:<publisher id>", and
 * "inbox:<publisher id>:<notice id>" (the index a publisher's portal page lists). A recipient
 * record names its mail before the mail is queued; delivery results come back from the outbox
 * worker (`recordDelivery`), and reading a notice reconciles any result that did not.
 */

import { recordAudit } from "../commands/audit.js";
import type { Clock } from "../core/clock.js";
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Actor, LicensingRegistry, LiveRow, Publisher } from "../licensing/index.js";
import { affectedPublishers, type PolicyChange, reasonLines } from "./audience.js";
import { isRefusal, ProgrammeError } from "./errors.js";
import { isId, newId } from "./ids.js";
import { type MailContext, noticeMail, reminderMail } from "./mail-templates.js";
import type { Notice, NoticeAudience, NoticeRecipient, OutboxMail, RecipientMail } from "./model.js";
import { newMailId, type Outbox } from "./outbox.js";
import { cleanMultiline, textProblem, ValidationError } from "./validation.js";

export const NOTICES_STORE = "notices";

type Doc = Notice | NoticeRecipient | { noticeId: string };

export interface NoticeDraft {
  subject: string;
  body: string;
  /** "all", "affected" or "publisher:<id>". */
  audience: string;
  /** Default true. */
  requiresAck?: boolean;
  /** Required for "affected". */
  policyChange?: PolicyChange;
}

export interface NoticeSummary {
  recipients: number;
  delivered: number;
  bounced: number;
  pending: number;
  read: number;
  acknowledged: number;
}

export interface NoticeDetail {
  notice: Notice;
  recipients: NoticeRecipient[];
  summary: NoticeSummary;
}

export interface Addressee {
  publisher: Publisher;
  reasons?: string[];
}

export function summarise(recipients: NoticeRecipient[]): NoticeSummary {
  const count = (p: (r: NoticeRecipient) => boolean) => recipients.filter(p).length;
  return {
    recipients: recipients.length,
    delivered: count((r) => r.delivery === "delivered"),
    bounced: count((r) => r.delivery === "bounced"),
    pending: count((r) => r.delivery === "pending"),
    read: count((r) => r.readAt !== undefined),
    acknowledged: count((r) => r.acknowledgedAt !== undefined),
  };
}

export function parseAudience(raw: string): NoticeAudience {
  const a = String(raw ?? "").trim();
  if (a === "all" || a === "affected") return a;
  if (a.startsWith("publisher:") && a.length > "publisher:".length) return a as NoticeAudience;
  throw new ValidationError({ audience: 'must be "all", "affected" or "publisher:<id>"' });
}

export interface NoticesOptions {
  storage: Storage;
  clock: Clock;
  registry: LicensingRegistry;
  outbox: Outbox;
  mail: MailContext;
  /** Live client statistics (rows by app and version), for the "affected" audience. */
  liveRows?: () => Promise<LiveRow[]>;
}

export class Notices {
  readonly #docs: DocumentStore<Doc>;
  readonly #o: NoticesOptions;

  constructor(opts: NoticesOptions) {
    this.#docs = opts.storage.documents<Doc>(NOTICES_STORE);
    this.#o = opts;
  }

  /** The publishers a notice would go to (the console shows them before sending). */
  async addressees(audienceRaw: string, policyChange?: PolicyChange): Promise<Addressee[]> {
    const audience = parseAudience(audienceRaw);
    const snapshot = await this.#o.registry.snapshot();
    const byName = (a: Addressee, b: Addressee) =>
      a.publisher.organisation.localeCompare(b.publisher.organisation);
    if (audience === "all")
      return [...snapshot.publishers.values()].map((publisher) => ({ publisher })).sort(byName);
    if (audience === "affected") {
      if (!policyChange)
        throw new ValidationError({ audience: '"affected" needs a policy change to compare' });
      const live = (await this.#o.liveRows?.()) ?? [];
      return affectedPublishers(policyChange, snapshot, this.#o.clock.now(), live)
        .map((p) => ({ publisher: snapshot.publishers.get(p.publisherId)!, reasons: reasonLines(p) }))
        .sort(byName);
    }
    const id = audience.slice("publisher:".length);
    const publisher = snapshot.publishers.get(id);
    if (!publisher) throw new ProgrammeError(`no publisher ${id}`, "not-found");
    return [{ publisher }];
  }

  /** Creates a notice and queues one mail per publisher of the audience. */
  async send(actor: Actor, draft: NoticeDraft): Promise<NoticeDetail> {
    const errors: Record<string, string> = {};
    const subjectProblem = textProblem(draft.subject, 200);
    if (subjectProblem) errors.subject = subjectProblem;
    const bodyProblem = textProblem(draft.body, 20_000, true);
    if (bodyProblem) errors.body = bodyProblem;
    if (Object.keys(errors).length > 0) throw new ValidationError(errors);
    const audience = parseAudience(draft.audience);
    const addressees = await this.addressees(audience, draft.policyChange);
    if (addressees.length === 0)
      throw new ProgrammeError(
        audience === "affected"
          ? "the policy change affects no publisher"
          : "there are no publishers to notify",
        "conflict",
      );
    const now = this.#o.clock.now();
    const notice: Notice = {
      id: newId("ntc", now),
      subject: draft.subject.trim(),
      body: cleanMultiline(draft.body),
      audience,
      ...(audience === "affected" && draft.policyChange
        ? {
            policyChange: {
              ...(draft.policyChange.auditId !== undefined ? { auditId: draft.policyChange.auditId } : {}),
              ...(draft.policyChange.at !== undefined ? { at: draft.policyChange.at } : {}),
            },
          }
        : {}),
      requiresAck: draft.requiresAck ?? true,
      createdAt: now,
      createdBy: actor,
      recipients: addressees.length,
    };
    await this.#docs.put(`notice:${notice.id}`, notice);
    await recordAudit(this.#o.storage, this.#o.clock, "notice.send", {
      actor,
      subject: `notice:${notice.id}`,
      after: {
        subject: notice.subject,
        audience: notice.audience,
        requiresAck: notice.requiresAck,
        publishers: addressees.map((a) => a.publisher.id),
      },
    });
    const recipients: NoticeRecipient[] = [];
    for (const { publisher, reasons } of addressees) {
      const recipient: NoticeRecipient = {
        noticeId: notice.id,
        publisherId: publisher.id,
        organisation: publisher.organisation,
        email: publisher.contactEmail,
        ...(reasons && reasons.length > 0 ? { reasons } : {}),
        mailId: newMailId(now),
        queuedAt: now,
        delivery: "pending",
        remindersSent: 0,
        reminders: [],
      };
      await this.#docs.put(`inbox:${publisher.id}:${notice.id}`, { noticeId: notice.id });
      await this.#docs.put(recipientKey(notice.id, publisher.id), recipient);
      await this.#queueNoticeMail(notice, recipient);
      recipients.push(recipient);
    }
    return { notice, recipients, summary: summarise(recipients) };
  }

  /** Notices, newest first. */
  async list(): Promise<Notice[]> {
    return (await this.#docs.list({ prefix: "notice:" })).map((e) => e.value as Notice).reverse();
  }

  async get(id: string): Promise<NoticeDetail | undefined> {
    if (!isId("ntc", id)) return undefined;
    const notice = (await this.#docs.get(`notice:${id}`)) as Notice | undefined;
    if (!notice) return undefined;
    const recipients: NoticeRecipient[] = [];
    for (const { value } of await this.#docs.list({ prefix: `recipient:${id}:` })) {
      recipients.push(await this.#reconcile(notice, value as NoticeRecipient));
    }
    recipients.sort((a, b) => a.organisation.localeCompare(b.organisation));
    return { notice, recipients, summary: summarise(recipients) };
  }

  async require(id: string): Promise<NoticeDetail> {
    const detail = await this.get(id);
    if (!detail) throw new ProgrammeError(`no notice ${id}`, "not-found");
    return detail;
  }

  /** The notices addressed to one publisher, with its own record of each, newest first. */
  async forPublisher(publisherId: string): Promise<{ notice: Notice; recipient: NoticeRecipient }[]> {
    const out: { notice: Notice; recipient: NoticeRecipient }[] = [];
    for (const { value } of await this.#docs.list({ prefix: `inbox:${publisherId}:` })) {
      const noticeId = (value as { noticeId: string }).noticeId;
      const notice = (await this.#docs.get(`notice:${noticeId}`)) as Notice | undefined;
      const recipient = (await this.#docs.get(recipientKey(noticeId, publisherId))) as
        | NoticeRecipient
        | undefined;
      if (notice && recipient) out.push({ notice, recipient });
    }
    return out.reverse();
  }

  /** The publisher opened the notice in the portal (the first time counts). */
  async markRead(noticeId: string, publisherId: string): Promise<NoticeRecipient> {
    const now = this.#o.clock.now();
    return this.#changeRecipient(noticeId, publisherId, (r) =>
      r.readAt !== undefined ? r : { ...r, readAt: now },
    );
  }

  /** The publisher acknowledges the notice; `by` is the portal account (or admin actor) that did. */
  async acknowledge(noticeId: string, publisherId: string, by: string): Promise<NoticeRecipient> {
    const now = this.#o.clock.now();
    return this.#changeRecipient(noticeId, publisherId, (r) =>
      r.acknowledgedAt !== undefined
        ? r
        : { ...r, readAt: r.readAt ?? now, acknowledgedAt: now, acknowledgedBy: by },
    );
  }

  /** Mails a reminder to every recipient who has not acknowledged the notice; returns them. */
  async remind(noticeId: string, actor: Actor): Promise<NoticeRecipient[]> {
    const detail = await this.require(noticeId);
    if (!detail.notice.requiresAck)
      throw new ProgrammeError(`notice ${noticeId} does not ask for acknowledgement`, "conflict");
    const reminded: NoticeRecipient[] = [];
    for (const r of detail.recipients) {
      if (r.acknowledgedAt !== undefined) continue;
      const now = this.#o.clock.now();
      const publisher = await this.#o.registry.getPublisher(r.publisherId);
      // Remind at the publisher's current address: a bounced one may have been corrected since.
      const email = publisher?.contactEmail ?? r.email;
      const entry: RecipientMail = { mailId: newMailId(now), queuedAt: now, delivery: "pending" };
      const updated = await this.#changeRecipient(noticeId, r.publisherId, (cur) => ({
        ...cur,
        email,
        remindersSent: cur.remindersSent + 1,
        lastReminderAt: now,
        reminders: [...cur.reminders, entry],
      }));
      const content = reminderMail(this.#o.mail, detail.notice, r.emailedAt ?? r.queuedAt, r.reasons);
      await this.#o.outbox.enqueue(
        { to: email, ...content, ref: { kind: "reminder", noticeId, publisherId: r.publisherId } },
        entry.mailId,
      );
      reminded.push(updated);
    }
    if (reminded.length > 0) {
      await recordAudit(this.#o.storage, this.#o.clock, "notice.remind", {
        actor,
        subject: `notice:${noticeId}`,
        after: { reminded: reminded.map((r) => r.publisherId) },
      });
    }
    return reminded;
  }

  /** Records what became of a notice or reminder mail (called by the outbox worker). */
  async recordDelivery(mail: OutboxMail): Promise<void> {
    const ref = mail.ref;
    if (!ref || (ref.kind !== "notice" && ref.kind !== "reminder")) return;
    if (mail.status !== "sent" && mail.status !== "bounced") return;
    await this.#changeRecipient(ref.noticeId, ref.publisherId, (r) => applyResult(r, mail)).catch(
      (err: unknown) => {
        // The notice may have been removed by hand; nothing to record then.
        if (!isRefusal(err, "not-found")) throw err;
      },
    );
  }

  async #queueNoticeMail(notice: Notice, r: NoticeRecipient): Promise<void> {
    const content = noticeMail(this.#o.mail, notice, r.reasons);
    await this.#o.outbox.enqueue(
      { to: r.email, ...content, ref: { kind: "notice", noticeId: notice.id, publisherId: r.publisherId } },
      r.mailId,
    );
  }

  /** Brings a recipient up to date with the outbox (a lost delivery callback, a crash before queueing). */
  async #reconcile(notice: Notice, r: NoticeRecipient): Promise<NoticeRecipient> {
    const pendingMails = [
      r.delivery === "pending" ? r.mailId : undefined,
      ...r.reminders.filter((m) => m.delivery === "pending").map((m) => m.mailId),
    ];
    let current = r;
    for (const id of pendingMails) {
      if (id === undefined) continue;
      const mail = await this.#o.outbox.get(id);
      if (mail && (mail.status === "sent" || mail.status === "bounced")) {
        current = await this.#changeRecipient(notice.id, r.publisherId, (cur) => applyResult(cur, mail));
      } else if (!mail && id === r.mailId) {
        await this.#queueNoticeMail(notice, r);
      }
    }
    return current;
  }

  async #changeRecipient(
    noticeId: string,
    publisherId: string,
    fn: (r: NoticeRecipient) => NoticeRecipient,
  ): Promise<NoticeRecipient> {
    if (!isId("ntc", noticeId)) throw new ProgrammeError(`no notice ${noticeId}`, "not-found");
    const updated = await this.#docs.update(recipientKey(noticeId, publisherId), (cur) => {
      if (!cur)
        throw new ProgrammeError(`notice ${noticeId} was not sent to publisher ${publisherId}`, "not-found");
      return fn(cur as NoticeRecipient);
    });
    return updated as NoticeRecipient;
  }
}

function recipientKey(noticeId: string, publisherId: string): string {
  return `recipient:${noticeId}:${publisherId}`;
}

/** The recipient with the result of one of its mails (the notice mail or a reminder). */
function applyResult(r: NoticeRecipient, mail: OutboxMail): NoticeRecipient {
  const delivered = mail.status === "sent";
  if (mail.id === r.mailId) {
    if (r.delivery !== "pending") return r;
    return delivered
      ? { ...r, delivery: "delivered", emailedAt: mail.sentAt! }
      : { ...r, delivery: "bounced", bouncedAt: mail.bouncedAt!, deliveryError: mail.lastError ?? "bounced" };
  }
  return {
    ...r,
    reminders: r.reminders.map((m) =>
      m.mailId !== mail.id || m.delivery !== "pending"
        ? m
        : delivered
          ? { ...m, delivery: "delivered", emailedAt: mail.sentAt! }
          : { ...m, delivery: "bounced", bouncedAt: mail.bouncedAt!, error: mail.lastError ?? "bounced" },
    ),
  };
}
