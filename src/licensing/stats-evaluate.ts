/**
 * Pure evaluation behind the statistics: is a client supported under a policy (licensed,
 * key valid, at/above the minimum version, not in a blocked range), and what would a policy
 * cut off. Always evaluated against the policy given, never against a flag stored earlier,
 * so raising a minimum version changes the figures at once and the policy editor can preview
 * a change before making it.
 */
import { WEB_CHAT_CLIENT_ID } from "./client-info.js";
import type { AccessPolicy, Instant, RefusalReason } from "./model.js";
import {
  activeClientLicence,
  clientLicenceStanding,
  type LicensingSnapshot,
  modeFor,
  stageAt,
} from "./registry.js";
import type {
  CutoffPreview,
  CutoffRow,
  LiveRow,
  ObservedClient,
  SupportShare,
  Tally,
  VerificationStatus,
} from "./stats-model.js";
import { statusOf } from "./stats-model.js";
import { compareVersions, inRange, isValidVersion } from "./version.js";

/** One live session: its account and its client. */
export interface SessionEntry {
  account: string;
  client: ObservedClient;
}

/** Why no licence covers the app now, from its most recent client licence. */
function licenceProblem(s: LicensingSnapshot, clientId: string, now: Instant): RefusalReason {
  switch (clientLicenceStanding(s, clientId, now)?.status) {
    case "revoked":
      return "licence-revoked";
    case "suspended":
      return "licence-suspended";
    case "expired":
      return "licence-expired";
    default:
      // Never licensed, or not in force yet.
      return "unlicensed-client";
  }
}

/**
 * Why `c` is not a supported client under `policy` at `now`, or undefined when it is: a verified
 * app with a valid key, an active client licence, and a version at/above the app's minimum and
 * outside its blocked ranges. Clients that proved nothing are "unlicensed-client".
 */
export function unsupportedReason(
  c: ObservedClient,
  snapshot: LicensingSnapshot,
  policy: AccessPolicy,
  now: Instant,
): RefusalReason | undefined {
  if (!c.verified || c.clientId === undefined) return "unlicensed-client";
  // The server's own web chat is not subject to the policy (admitted by its browser grant).
  if (c.clientId === WEB_CHAT_CLIENT_ID) return undefined;
  const clientId = c.clientId;
  if (!snapshot.apps.has(clientId)) return "unlicensed-client";
  if (c.keyId !== undefined) {
    const key = snapshot.keys.get(clientId)?.get(c.keyId);
    if (!key) return "unknown-key";
    if (key.revokedAt !== undefined && key.revokedAt <= now) return "key-revoked";
  }
  if (!activeClientLicence(snapshot, clientId, now)) return licenceProblem(snapshot, clientId, now);
  const rules = policy.apps[clientId];
  if (rules) {
    const v = c.version;
    const valid = v !== undefined && isValidVersion(v);
    if (rules.minVersion !== undefined && (!valid || compareVersions(v, rules.minVersion) < 0))
      return "version-too-old";
    if (valid && rules.blocked?.some((r) => inRange(v, r))) return "version-blocked";
  }
  return undefined;
}

/**
 * What a policy does to one session: keeps it, cuts it off, or spares it only because the account
 * is exempt (the policy would cut it otherwise) or outside the rollout (a non-exempt account the
 * stage in force would cut if it covered every account).
 */
export type Fate =
  | { kind: "kept" }
  | { kind: "cut"; reason: RefusalReason }
  | { kind: "spared"; by: "exempt" | "rollout"; reason: RefusalReason };

export function fateUnder(
  entry: SessionEntry,
  snapshot: LicensingSnapshot,
  policy: AccessPolicy,
  now: Instant,
): Fate {
  const reason = unsupportedReason(entry.client, snapshot, policy, now);
  if (reason === undefined) return { kind: "kept" };
  const exempt = policy.exemptions.includes(entry.account);
  // A licensed app failing its licence or version rules is refused in every mode; a client
  // without a proof only where the account's mode (rollout applied, exemption not) is enforce.
  const wouldCut =
    reason !== "unlicensed-client" ||
    modeFor(exempt ? { ...policy, exemptions: [] } : policy, now, entry.account) === "enforce";
  if (wouldCut) return exempt ? { kind: "spared", by: "exempt", reason } : { kind: "cut", reason };
  if (!exempt && stageAt(policy, now).mode === "enforce") return { kind: "spared", by: "rollout", reason };
  return { kind: "kept" };
}

/** The policy as it would be if enforcement started now for every (non-exempt) account. */
export function enforcementNow(policy: AccessPolicy): AccessPolicy {
  return { ...policy, mode: "enforce", stages: [] };
}

class TallySet {
  sessions = 0;
  readonly accounts = new Set<string>();
  add(account: string): void {
    this.sessions++;
    this.accounts.add(account);
  }
  tally(): Tally {
    return { sessions: this.sessions, accounts: this.accounts.size };
  }
}

/** What `policy` would cut off among `entries` at `now` (sessions and distinct accounts per app/version). */
export function previewCutoff(
  entries: Iterable<SessionEntry>,
  snapshot: LicensingSnapshot,
  policy: AccessPolicy,
  now: Instant,
): CutoffPreview {
  const rows = new Map<string, { row: Omit<CutoffRow, "sessions" | "accounts">; t: TallySet }>();
  const total = new TallySet();
  const spared = { exempt: new TallySet(), rollout: new TallySet() };
  for (const e of entries) {
    const fate = fateUnder(e, snapshot, policy, now);
    if (fate.kind === "kept") continue;
    if (fate.kind === "spared") {
      spared[fate.by].add(e.account);
      continue;
    }
    const status = statusOf(e.client);
    const row = {
      clientId: e.client.clientId ?? null,
      version: e.client.version ?? null,
      status,
      reason: fate.reason,
    };
    const key = JSON.stringify(row);
    let r = rows.get(key);
    if (!r) {
      r = { row, t: new TallySet() };
      rows.set(key, r);
    }
    r.t.add(e.account);
    total.add(e.account);
  }
  return {
    at: now,
    ...total.tally(),
    rows: [...rows.values()]
      .map(({ row, t }) => ({ ...row, ...t.tally() }))
      .sort((a, b) => b.sessions - a.sessions || compareClients(a, b)),
    spared: { exempt: spared.exempt.tally(), rollout: spared.rollout.tally() },
  };
}

/** Live sessions by app, version, platform and verification status, with distinct accounts. */
export function liveRows(entries: Iterable<SessionEntry>): LiveRow[] {
  const rows = new Map<string, { row: Omit<LiveRow, "sessions" | "accounts">; t: TallySet }>();
  for (const e of entries) {
    const row = {
      clientId: e.client.clientId ?? null,
      version: e.client.version ?? null,
      platform: e.client.platform ?? null,
      status: statusOf(e.client),
    };
    const key = JSON.stringify(row);
    let r = rows.get(key);
    if (!r) {
      r = { row, t: new TallySet() };
      rows.set(key, r);
    }
    r.t.add(e.account);
  }
  return [...rows.values()].map(({ row, t }) => ({ ...row, ...t.tally() })).sort(compareClients);
}

/** Share of accounts all of whose clients are supported under `policy` (the worst client counts). */
export function supportShare(
  clientsByAccount: Iterable<[string, Iterable<ObservedClient>]>,
  snapshot: LicensingSnapshot,
  policy: AccessPolicy,
  now: Instant,
): SupportShare {
  let accounts = 0;
  let supportedAccounts = 0;
  for (const [, clients] of clientsByAccount) {
    accounts++;
    let all = true;
    for (const c of clients) {
      if (unsupportedReason(c, snapshot, policy, now) !== undefined) {
        all = false;
        break;
      }
    }
    if (all) supportedAccounts++;
  }
  return { accounts, supportedAccounts, share: accounts === 0 ? null : supportedAccounts / accounts };
}

const STATUS_ORDER: Record<VerificationStatus, number> = { verified: 0, unverified: 1, unknown: 2 };

/** Newest version first; versions that are not dotted numeric sort after, by text. */
function compareVersionsDesc(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  const va = isValidVersion(a);
  const vb = isValidVersion(b);
  if (va && vb) return compareVersions(b, a) || a.localeCompare(b);
  if (va !== vb) return va ? -1 : 1;
  return a.localeCompare(b);
}

/** Table order: by status, then app (unknown last), newest version first, then platform. */
export function compareClients(
  a: {
    clientId: string | null;
    version: string | null;
    status: VerificationStatus;
    platform?: string | null;
  },
  b: {
    clientId: string | null;
    version: string | null;
    status: VerificationStatus;
    platform?: string | null;
  },
): number {
  return (
    STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
    (a.clientId ?? "\uffff").localeCompare(b.clientId ?? "\uffff") ||
    compareVersionsDesc(a.version, b.version) ||
    (a.platform ?? "\uffff").localeCompare(b.platform ?? "\uffff")
  );
}
