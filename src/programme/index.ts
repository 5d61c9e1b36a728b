/**
 * The licensing programme's domain, independent of HTTP: publisher portal accounts, licence
 * applications, notices with tracked delivery and acknowledgement, and the mail outbox with
 * its worker. The server constructs one Programme when its HTTP layer runs; the portal pages,
 * the console and the admin API call its services; admin commands (commands.ts) build the
 * same services over the command's storage.
 */
import type { Clock } from "../core/clock.js";
import type { ServerConfig } from "../core/config.js";
import type { Storage } from "../core/storage/types.js";
import type { LicensingRegistry, LiveRow } from "../licensing/index.js";
import type { Applications } from "./applications.js";
import { type MailContext, senderOf } from "./mail-templates.js";
import { type MailTransport, smtpTransport } from "./mail-transport.js";
import { OutboxWorker, type ProgrammeLog, silentLog } from "./mail-worker.js";
import type { Notices } from "./notices.js";
import type { Outbox } from "./outbox.js";
import type { PortalAccounts } from "./portal-accounts.js";
import type { PortalRateLimits } from "./rate-limits.js";
import { createServices } from "./services.js";

export { programmeCommands } from "./commands.js";
export type { ProgrammeLog } from "./mail-worker.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface ProgrammeOptions {
  storage: Storage;
  clock: Clock;
  /** Uses domain, bind, httpPort, http.publicUrl and mail. */
  config: ServerConfig;
  /** The licensing registry (default: a new one over `storage`). */
  registry?: LicensingRegistry;
  log?: ProgrammeLog;
  /** Replaces the SMTP transport built from `config.mail`. */
  transport?: MailTransport;
  /** Replaces config.mail.pollIntervalSeconds (tests poll fast). */
  pollIntervalMs?: number;
  limits?: PortalRateLimits;
  /**
   * Base URL of the portal in mail links, or a function giving it when a mail is written
   * (default: http.publicUrl, else http://<bind>:<httpPort>).
   */
  publicUrl?: string | (() => string);
  /** Live client rows by app and version (the server's LicensingStats); default: stored live snapshots. */
  liveRows?: () => Promise<LiveRow[]>;
}

export class Programme {
  readonly registry: LicensingRegistry;
  readonly outbox: Outbox;
  readonly accounts: PortalAccounts;
  readonly applications: Applications;
  readonly notices: Notices;
  readonly limits: PortalRateLimits;
  readonly worker: OutboxWorker;
  readonly mail: MailContext;
  readonly #clock: Clock;
  readonly #log: ProgrammeLog;
  readonly #keepMs: number;
  #housekeeping: NodeJS.Timeout | undefined;

  constructor(opts: ProgrammeOptions) {
    const services = createServices(opts);
    this.registry = services.registry;
    this.outbox = services.outbox;
    this.accounts = services.accounts;
    this.applications = services.applications;
    this.notices = services.notices;
    this.limits = services.limits;
    this.mail = services.mail;
    this.#clock = opts.clock;
    this.#log = opts.log ?? silentLog;
    const mail = opts.config.mail;
    this.#keepMs = mail.keepDays * DAY;
    this.worker = new OutboxWorker({
      storage: opts.storage,
      outbox: this.outbox,
      clock: opts.clock,
      transport: opts.transport ?? smtpTransport(mail),
      from: senderOf(opts.config),
      domain: opts.config.domain,
      retry: {
        initialDelayMs: mail.retry.initialDelaySeconds * 1000,
        maxDelayMs: mail.retry.maxDelaySeconds * 1000,
      },
      pollIntervalMs: opts.pollIntervalMs ?? mail.pollIntervalSeconds * 1000,
      log: this.#log,
    });
    // Delivery results of notice and reminder mails go to their recipients' records.
    this.worker.onDelivery((m) => this.notices.recordDelivery(m));
  }

  /** Starts the outbox worker and the hourly housekeeping (expired tokens, old sent mails). */
  start(): void {
    this.worker.start();
    if (this.#housekeeping) return;
    this.#housekeeping = setInterval(() => void this.housekeeping(), HOUR);
    this.#housekeeping.unref();
  }

  /** Stops the worker (waiting for a mail being sent) and the housekeeping. */
  async stop(): Promise<void> {
    if (this.#housekeeping) clearInterval(this.#housekeeping);
    this.#housekeeping = undefined;
    await this.worker.stop();
  }

  /** Deletes expired tokens and sent/bounced mails older than mail.keepDays. */
  async housekeeping(): Promise<{ tokens: number; mails: number }> {
    try {
      const now = this.#clock.now();
      const tokens = await this.accounts.pruneTokens(now);
      const mails = await this.outbox.prune(now - this.#keepMs);
      return { tokens, mails };
    } catch (err) {
      this.#log.error({ err }, "programme housekeeping failed");
      return { tokens: 0, mails: 0 };
    }
  }
}
