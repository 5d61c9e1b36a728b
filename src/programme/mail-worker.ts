/**
 * The outbox worker: sends due mails one after another through the SMTP transport. A mail
 * the relay accepts is "sent", one it refuses for good is "bounced"; a transient refusal
 * puts the mail back with an exponential backoff (initial delay doubled per attempt, capped).
 * When the relay cannot be reached at all, the worker stops the round and waits (same
 * backoff, counted over consecutive failures) before trying again, so no mail is lost and
 * the relay is not hammered. Time comes from the injectable clock: a test moves the clock
 * and calls `runOnce()` (the poll timer does the same in real time).
 */
import type { Clock } from "../core/clock.js";
import type { Storage } from "../core/storage/types.js";
import type { Instant } from "../licensing/index.js";
import {
  classifySmtpError,
  describeSmtpError,
  type MailMessage,
  type MailTransport,
} from "./mail-transport.js";
import type { OutboxMail } from "./model.js";
import { type Outbox, outboxSignal } from "./outbox.js";
import { portalLinkIn } from "./portal-accounts.js";

export interface ProgrammeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLog: ProgrammeLog = { info() {}, warn() {}, error() {} };

export interface RetryOptions {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Wait before attempt n+1 after n failed attempts: initial · 2^(n−1), at most the maximum. */
export function backoffMs(failures: number, retry: RetryOptions): number {
  const exp = Math.min(Math.max(failures, 1) - 1, 40);
  return Math.min(retry.initialDelayMs * 2 ** exp, retry.maxDelayMs);
}

export interface OutboxWorkerOptions {
  storage: Storage;
  outbox: Outbox;
  clock: Clock;
  /** Undefined when no SMTP relay is configured: mails wait in the outbox. */
  transport: MailTransport | undefined;
  from: string;
  /** Right-hand side of the Message-IDs. */
  domain: string;
  retry: RetryOptions;
  pollIntervalMs: number;
  /** How long a claimed mail stays with this worker before another may take it over (default 5 min). */
  leaseMs?: number;
  log?: ProgrammeLog;
}

/** Called after a mail was sent or bounced (notices record the delivery of their mails). */
export type DeliveryListener = (mail: OutboxMail) => Promise<void> | void;

export interface RoundResult {
  sent: number;
  bounced: number;
  deferred: number;
  /** The relay could not be used; nothing more is tried before this instant. */
  serverRetryAt?: Instant;
}

export class OutboxWorker {
  readonly #o: OutboxWorkerOptions;
  readonly #log: ProgrammeLog;
  readonly #listeners: DeliveryListener[] = [];
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<RoundResult> | undefined;
  #again = false;
  #started = false;
  #stopped = false;
  #serverFailures = 0;
  #serverRetryAt = 0;
  #warnedNoTransport = false;
  /** Waiting mails already logged (no relay configured). */
  readonly #logged = new Set<string>();
  readonly #onEnqueued = () => this.kick();

  constructor(opts: OutboxWorkerOptions) {
    this.#o = opts;
    this.#log = opts.log ?? silentLog;
  }

  onDelivery(listener: DeliveryListener): void {
    this.#listeners.push(listener);
  }

  /** Polls the outbox every pollIntervalMs and right after every enqueue in this process. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    outboxSignal(this.#o.storage).on("enqueued", this.#onEnqueued);
    this.#timer = setInterval(() => this.kick(), this.#o.pollIntervalMs);
    this.#timer.unref();
    this.kick();
  }

  /**
   * Stops polling, waits (at most `graceMs`) for the mail being sent, closes the transport.
   * A send cut short stays in the outbox under its lease and is tried again after it.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    outboxSignal(this.#o.storage).off("enqueued", this.#onEnqueued);
    if (this.#timer) clearInterval(this.#timer);
    const round = this.#round?.catch(() => undefined);
    if (round) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([round, grace]);
      clearTimeout(timer);
    }
    this.#o.transport?.close();
  }

  kick(): void {
    void this.runOnce().catch((err: unknown) => this.#log.error({ err }, "outbox round failed"));
  }

  /** Instant before which the relay is not tried again (0 when it is not backing off). */
  get serverRetryAt(): Instant {
    return this.#serverRetryAt;
  }

  /**
   * Sends every mail due now. A round already running is awaited and, when something
   * asked for one meanwhile, followed by another, so nothing enqueued is left waiting.
   */
  runOnce(): Promise<RoundResult> {
    if (this.#round) {
      this.#again = true;
      return this.#round;
    }
    const round = this.#runRound().finally(() => {
      this.#round = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.kick();
      }
    });
    this.#round = round;
    return round;
  }

  async #runRound(): Promise<RoundResult> {
    const result: RoundResult = { sent: 0, bounced: 0, deferred: 0 };
    const transport = this.#o.transport;
    if (!transport) {
      if (!this.#warnedNoTransport) {
        this.#warnedNoTransport = true;
        this.#log.warn(
          {},
          "no SMTP relay configured (mail.smtp.host): mails wait in the outbox; their links are logged (`switchboard mail list` lists them)",
        );
      }
      await this.#logWaiting();
      return result;
    }
    const { clock, outbox, retry } = this.#o;
    if (clock.now() < this.#serverRetryAt) return { ...result, serverRetryAt: this.#serverRetryAt };
    for (const due of await outbox.due(clock.now())) {
      if (this.#stopped) break;
      const now = clock.now();
      const mail = await outbox.claim(due.id, now, now + (this.#o.leaseMs ?? 300_000));
      if (!mail) continue;
      try {
        const sent = await transport.send(this.#message(mail));
        this.#serverFailures = 0;
        this.#serverRetryAt = 0;
        await this.#deliver(await outbox.markSent(mail, sent.response));
        result.sent++;
      } catch (err) {
        const kind = classifySmtpError(err);
        const error = describeSmtpError(err);
        if (kind === "bounce") {
          this.#serverFailures = 0;
          await this.#deliver(await outbox.markBounced(mail, error));
          this.#log.info({ mail: mail.id, to: mail.to, error }, "mail bounced");
          result.bounced++;
        } else if (kind === "retry-mail") {
          await outbox.markRetry(mail, error, clock.now() + backoffMs(mail.attempts, retry));
          result.deferred++;
        } else {
          this.#serverFailures++;
          this.#serverRetryAt = clock.now() + backoffMs(this.#serverFailures, retry);
          await outbox.markRetry(
            mail,
            error,
            Math.max(this.#serverRetryAt, now + backoffMs(mail.attempts, retry)),
          );
          this.#log.warn(
            { error, failures: this.#serverFailures, retryAt: new Date(this.#serverRetryAt).toISOString() },
            "SMTP relay unavailable; mails stay in the outbox",
          );
          result.deferred++;
          result.serverRetryAt = this.#serverRetryAt;
          break;
        }
      }
    }
    return result;
  }

  /**
   * Without a relay (development, or a network that has not set one up yet) nobody could
   * follow a confirmation or reset link: each waiting mail is logged once, with its link.
   */
  async #logWaiting(): Promise<void> {
    for (const mail of await this.#o.outbox.pending()) {
      if (this.#logged.has(mail.id)) continue;
      if (this.#logged.size >= 10_000) this.#logged.clear();
      this.#logged.add(mail.id);
      const link = mail.ref?.kind === "account" ? portalLinkIn(mail.text) : undefined;
      if (link) {
        const what = link.purpose === "verify" ? "confirmation" : "password reset";
        this.#log.info(
          { mail: mail.id, to: mail.to, link: link.url },
          `no SMTP relay configured: the ${what} link for ${mail.to} is ${link.url}`,
        );
      } else {
        this.#log.info(
          { mail: mail.id, to: mail.to, subject: mail.subject },
          `no SMTP relay configured: a mail to ${mail.to} ("${mail.subject}") waits in the outbox`,
        );
      }
    }
  }

  #message(mail: OutboxMail): MailMessage {
    return {
      from: this.#o.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      messageId: `<${mail.id}@${this.#o.domain}>`,
    };
  }

  async #deliver(mail: OutboxMail): Promise<void> {
    for (const listener of this.#listeners) {
      try {
        await listener(mail);
      } catch (err) {
        this.#log.error({ err, mail: mail.id }, "recording a mail delivery failed");
      }
    }
  }
}
