/**
 * The outbox: every mail is stored here before anything tries to send it, so a mail
 * survives an unreachable SMTP server and a restart. `documents("outbox")`:
 * - "pending:<id>": a mail to send (queued, or being sent under a lease);
 * - "done:<id>": a mail that was sent or bounced (kept `keepDays`, then pruned).
 * Finishing writes "done:" before deleting "pending:", and a pending mail whose "done:"
 * exists is only cleaned up, never sent again. Any process may enqueue (the CLI does);
 * the server's worker sends. Enqueueing also wakes a worker of the same process at once.
 */
import { EventEmitter } from "node:events";
import type { Clock } from "../core/clock.js";
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Instant } from "../licensing/index.js";
import { ProgrammeError } from "./errors.js";
import { isId, newId } from "./ids.js";
import type { MailStatus, OutboxMail, OutgoingMail } from "./model.js";

export const OUTBOX_STORE = "outbox";
const PENDING = "pending:";
const DONE = "done:";

/** Workers of this process listen here for mails enqueued on the same storage. */
const signals = new WeakMap<Storage, EventEmitter>();

export function outboxSignal(storage: Storage): EventEmitter {
  let e = signals.get(storage);
  if (!e) {
    e = new EventEmitter();
    e.setMaxListeners(0);
    signals.set(storage, e);
  }
  return e;
}

export function newMailId(now: Instant): string {
  return newId("mail", now);
}

export class Outbox {
  readonly #docs: DocumentStore<OutboxMail>;
  readonly #storage: Storage;
  readonly #clock: Clock;

  constructor(storage: Storage, clock: Clock) {
    this.#storage = storage;
    this.#docs = storage.documents<OutboxMail>(OUTBOX_STORE);
    this.#clock = clock;
  }

  /**
   * Stores a mail for sending. `id` may be chosen beforehand (a record that names the mail is
   * written first); queueing an id that is already in the outbox returns that mail unchanged.
   */
  async enqueue(mail: OutgoingMail, id?: string): Promise<OutboxMail> {
    if (id !== undefined) {
      const existing = await this.get(id);
      if (existing) return existing;
    }
    const now = this.#clock.now();
    const stored: OutboxMail = {
      id: id ?? newMailId(now),
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      ...(mail.ref ? { ref: mail.ref } : {}),
      status: "queued",
      createdAt: now,
      attempts: 0,
      nextAttemptAt: now,
    };
    let queued = stored;
    await this.#docs.update(PENDING + stored.id, (cur) => {
      // Queued a moment ago by someone else with the same id.
      if (cur !== undefined) queued = cur;
      return queued;
    });
    outboxSignal(this.#storage).emit("enqueued", queued.id);
    return queued;
  }

  async get(id: string): Promise<OutboxMail | undefined> {
    if (!isId("mail", id)) return undefined;
    return (await this.#docs.get(DONE + id)) ?? (await this.#docs.get(PENDING + id));
  }

  /** Mails not yet sent or bounced, oldest first. */
  async pending(): Promise<OutboxMail[]> {
    return (await this.#docs.list({ prefix: PENDING })).map((e) => e.value);
  }

  /** Sent and bounced mails, oldest first (at most `limit`, the newest ones). */
  async done(limit?: number): Promise<OutboxMail[]> {
    const all = (await this.#docs.list({ prefix: DONE })).map((e) => e.value);
    return limit === undefined ? all : all.slice(-limit);
  }

  /** Every mail of the outbox, waiting or finished, newest first. */
  async all(): Promise<OutboxMail[]> {
    const mails = [...(await this.pending()), ...(await this.done())];
    return mails.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  }

  /**
   * Sends a mail again: a waiting one is made due now (its backoff forgotten), a sent or
   * bounced one is queued anew as a copy (a new id). Returns the mail that will go.
   */
  async resend(id: string): Promise<{ mail: OutboxMail; copy: boolean }> {
    const now = this.#clock.now();
    const done = isId("mail", id) ? await this.#docs.get(DONE + id) : undefined;
    if (done) {
      const { to, subject, text, ref } = done;
      return { mail: await this.enqueue({ to, subject, text, ...(ref ? { ref } : {}) }), copy: true };
    }
    let due: OutboxMail | undefined;
    let busy = false;
    if (isId("mail", id)) {
      await this.#docs.update(PENDING + id, (cur) => {
        if (cur === undefined) return undefined;
        if (cur.status === "sending" && (cur.leaseUntil ?? 0) > now) {
          busy = true;
          return cur;
        }
        const { leaseUntil: _lease, ...rest } = cur;
        due = { ...rest, status: "queued", nextAttemptAt: now };
        return due;
      });
    }
    if (busy) throw new ProgrammeError(`mail ${id} is being sent right now`, "conflict");
    if (!due) throw new ProgrammeError(`no mail ${id} in the outbox`, "not-found");
    outboxSignal(this.#storage).emit("enqueued", id);
    return { mail: due, copy: false };
  }

  async counts(): Promise<Record<MailStatus, number>> {
    const out: Record<MailStatus, number> = { queued: 0, sending: 0, sent: 0, bounced: 0 };
    for (const m of await this.pending()) out[m.status]++;
    for (const m of await this.done()) out[m.status]++;
    return out;
  }

  /** Is the mail ready for an attempt at `now` (queued and due, or its sender's lease ran out)? */
  static isDue(m: OutboxMail, now: Instant): boolean {
    if (m.status === "queued") return m.nextAttemptAt <= now;
    return m.status === "sending" && (m.leaseUntil ?? 0) <= now;
  }

  /** Pending mails due at `now`, oldest first. */
  async due(now: Instant): Promise<OutboxMail[]> {
    return (await this.pending()).filter((m) => Outbox.isDue(m, now));
  }

  /** The earliest instant a pending mail becomes due (undefined: nothing pending). */
  async nextDueAt(): Promise<Instant | undefined> {
    let next: Instant | undefined;
    for (const m of await this.pending()) {
      const at = m.status === "queued" ? m.nextAttemptAt : (m.leaseUntil ?? 0);
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /**
   * Takes a due mail for sending until `leaseUntil`; undefined when it is not due any more
   * (another worker took it, or it was finished meanwhile).
   */
  async claim(id: string, now: Instant, leaseUntil: Instant): Promise<OutboxMail | undefined> {
    if (await this.#docs.get(DONE + id)) {
      await this.#docs.delete(PENDING + id);
      return undefined;
    }
    let claimed: OutboxMail | undefined;
    await this.#docs.update(PENDING + id, (cur) => {
      if (cur === undefined || !Outbox.isDue(cur, now)) return cur;
      claimed = {
        ...cur,
        status: "sending",
        leaseUntil,
        attempts: cur.attempts + 1,
        lastAttemptAt: now,
      };
      return claimed;
    });
    return claimed;
  }

  /** The relay accepted the mail. */
  markSent(mail: OutboxMail, response: string | undefined): Promise<OutboxMail> {
    const now = this.#clock.now();
    return this.#finish({ ...strip(mail), status: "sent", sentAt: now, ...(response ? { response } : {}) });
  }

  /** The relay refused the mail for good (a permanent 5xx reply to the recipient or the message). */
  markBounced(mail: OutboxMail, error: string): Promise<OutboxMail> {
    const now = this.#clock.now();
    return this.#finish({
      ...strip(mail),
      status: "bounced",
      bouncedAt: now,
      lastError: error,
      response: error,
    });
  }

  /** The attempt failed for a reason that may pass; try again at `nextAttemptAt`. */
  async markRetry(mail: OutboxMail, error: string, nextAttemptAt: Instant): Promise<void> {
    await this.#docs.update(PENDING + mail.id, (cur) => {
      if (cur === undefined) return undefined;
      const { leaseUntil: _lease, ...rest } = cur;
      return { ...rest, status: "queued", lastError: error, nextAttemptAt };
    });
  }

  /** Puts a claimed mail back without counting the attempt (the worker stopped before trying). */
  async release(mail: OutboxMail): Promise<void> {
    await this.#docs.update(PENDING + mail.id, (cur) => {
      if (cur === undefined) return undefined;
      const { leaseUntil: _lease, ...rest } = cur;
      return { ...rest, status: "queued", attempts: Math.max(0, cur.attempts - 1) };
    });
  }

  async #finish(mail: OutboxMail): Promise<OutboxMail> {
    await this.#docs.put(DONE + mail.id, mail);
    await this.#docs.delete(PENDING + mail.id);
    return mail;
  }

  /** Deletes sent and bounced mails finished before `before`; returns how many. */
  async prune(before: Instant): Promise<number> {
    let removed = 0;
    for (const { key, value } of await this.#docs.list({ prefix: DONE })) {
      const at = value.sentAt ?? value.bouncedAt ?? value.createdAt;
      if (at < before && (await this.#docs.delete(key))) removed++;
    }
    return removed;
  }
}

function strip(mail: OutboxMail): OutboxMail {
  const { leaseUntil: _lease, ...rest } = mail;
  return rest;
}
