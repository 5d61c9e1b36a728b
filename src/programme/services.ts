/**
 * The programme's services over one storage: what the server's Programme owns, and what an
 * admin command builds for itself (in the CLI process, mails are only queued; the server's
 * outbox worker sends them).
 */
import type { Clock } from "../core/clock.js";
import type { ServerConfig } from "../core/config.js";
import type { Storage } from "../core/storage/types.js";
import type { LiveRow } from "../licensing/index.js";
import { LicensingRegistry, mergeLive, readLiveSnapshots } from "../licensing/index.js";
import { Applications } from "./applications.js";
import { type MailContext, mailContextOf } from "./mail-templates.js";
import { Notices } from "./notices.js";
import { Outbox } from "./outbox.js";
import { PortalAccounts } from "./portal-accounts.js";
import { PortalRateLimits } from "./rate-limits.js";

export interface ServicesOptions {
  storage: Storage;
  clock: Clock;
  config: ServerConfig;
  registry?: LicensingRegistry;
  limits?: PortalRateLimits;
  /** Base URL of the portal in mail links (default: from the configuration). */
  publicUrl?: string | (() => string);
  /** Live client rows by app and version; default: the running servers' stored live snapshots. */
  liveRows?: () => Promise<LiveRow[]>;
}

export interface ProgrammeServices {
  registry: LicensingRegistry;
  mail: MailContext;
  limits: PortalRateLimits;
  outbox: Outbox;
  accounts: PortalAccounts;
  applications: Applications;
  notices: Notices;
}

/** Live rows of every server node that wrote a fresh snapshot (none when no server runs). */
export async function storedLiveRows(storage: Storage, clock: Clock): Promise<LiveRow[]> {
  const { fresh } = await readLiveSnapshots(storage, clock.now());
  return fresh.length > 0 ? mergeLive(fresh).rows : [];
}

export function createServices(opts: ServicesOptions): ProgrammeServices {
  const { storage, clock, config } = opts;
  const registry = opts.registry ?? new LicensingRegistry(storage, clock);
  const mail = mailContextOf(config, opts.publicUrl);
  const limits = opts.limits ?? new PortalRateLimits(clock);
  const outbox = new Outbox(storage, clock);
  const accounts = new PortalAccounts({ storage, clock, outbox, mail, limits });
  const applications = new Applications({ storage, clock, registry, accounts, outbox, mail });
  const notices = new Notices({
    storage,
    clock,
    registry,
    outbox,
    mail,
    liveRows: opts.liveRows ?? (() => storedLiveRows(storage, clock)),
  });
  return { registry, mail, limits, outbox, accounts, applications, notices };
}
