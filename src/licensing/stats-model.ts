/**
 * Client statistics: what is observed about a session's client, and the shapes of the
 * figures (live, daily, headline, cutoff preview) shared by the server, the CLI and the
 * HTTP API.
 */
import type { SessionClient } from "../core/peer-sessions.js";
import type { ClientSession } from "../core/session.js";
import type { Instant, RefusalReason } from "./model.js";

/** Key of the client record the licensing module keeps on each session. */
export const CLIENT_INFO_KEY = "licensing";

/**
 * verified: the client proved a licence (Ed25519 proof); unverified: the client said what it
 * is (XEP-0092, SASL2 user agent) but proved nothing; unknown: nothing is known.
 */
export type VerificationStatus = "verified" | "unverified" | "unknown";

/**
 * What is known about one session's client, read from the module's ClientInfo: the same record
 * the other nodes of a cluster are told.
 */
export type ObservedClient = SessionClient;

const UNKNOWN: ObservedClient = { verified: false };

function text(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * The client of a session as the licensing module recorded it (`session.data.get("licensing")`).
 * Read field by field: a session without a record, or with an odd one, counts as unknown.
 */
export function observedClient(session: ClientSession): ObservedClient {
  const raw = session.data.get(CLIENT_INFO_KEY);
  if (typeof raw !== "object" || raw === null) return UNKNOWN;
  const info = raw as Record<string, unknown>;
  const c: ObservedClient = { verified: info.verified === true };
  const fields = ["clientId", "version", "platform", "keyId", "licenceId"] as const;
  for (const f of fields) {
    const v = text(info[f]);
    if (v !== undefined) c[f] = v;
  }
  // A proof names the app; without a client id nothing was verified.
  if (c.clientId === undefined) c.verified = false;
  return c;
}

export function statusOf(c: ObservedClient): VerificationStatus {
  if (c.verified) return "verified";
  return c.clientId !== undefined || c.version !== undefined ? "unverified" : "unknown";
}

/** The UTC calendar day of an instant, "YYYY-MM-DD". */
export function utcDay(t: Instant): string {
  return new Date(t).toISOString().slice(0, 10);
}

/** Sessions of one client kind, and how many distinct accounts run it. */
export interface LiveRow {
  clientId: string | null;
  version: string | null;
  platform: string | null;
  status: VerificationStatus;
  sessions: number;
  accounts: number;
}

/** Live headline: accounts whose every live session runs a supported client. */
export interface SupportShare {
  accounts: number;
  supportedAccounts: number;
  /** supportedAccounts / accounts, or null without accounts. */
  share: number | null;
}

/** One kind of client that a policy would refuse, with why. */
export interface CutoffRow {
  clientId: string | null;
  version: string | null;
  status: VerificationStatus;
  reason: RefusalReason;
  sessions: number;
  accounts: number;
}

export interface Tally {
  sessions: number;
  accounts: number;
}

/** What a policy would cut off at an instant, and what it would spare only because of exemptions or rollout. */
export interface CutoffPreview {
  at: Instant;
  sessions: number;
  accounts: number;
  rows: CutoffRow[];
  spared: { exempt: Tally; rollout: Tally };
}

/** The live figures of one server node, also the document it writes every few seconds. */
export interface LiveSnapshot {
  nodeId: string;
  at: Instant;
  /** Registry revision the figures were computed against. */
  revision: number;
  sessions: number;
  accounts: number;
  rows: LiveRow[];
  supported: SupportShare;
  /** What enforcement for every account, starting at `at`, would cut off. */
  cutoff: CutoffPreview;
}

/** One client an account used on a day. */
export interface DailyClient {
  clientId?: string;
  version?: string;
  platform?: string;
  keyId?: string;
  licenceId?: string;
  verified: boolean;
  /** Supported under the policy in force when first seen (kept for reference; figures recompute it). */
  ok: boolean;
  firstSeen: Instant;
}

/** `documents("licensing-daily")`, key `<YYYY-MM-DD>|<account>`: every distinct client the account used that day. */
export interface DailyRecord {
  firstSeen: Instant;
  lastSeen: Instant;
  clients: DailyClient[];
}

/** Distinct accounts that used one app and version on a day. */
export interface DailyRow {
  clientId: string | null;
  version: string | null;
  status: VerificationStatus;
  accounts: number;
}

export interface DailyFigures {
  day: string;
  accounts: number;
  rows: DailyRow[];
  /**
   * Accounts each of whose clients that day (the latest version of each app on each platform)
   * is licensed and at/above the minimum of the current policy.
   */
  supported: SupportShare;
}
