/**
 * Who a policy change affects, for notices addressed to "affected" publishers.
 *
 * An app (and so its publisher) is affected by a change from policy `before` to `after` when:
 * 1. its minimum version rises (or is set for the first time);
 * 2. a version range of it becomes blocked that was not blocked before;
 * 3. enforcement comes earlier or covers more accounts (a new or earlier enforce stage, a
 *    larger rollout percentage, or the base mode turning to enforce) and the app will not have
 *    an active client licence at the cutoff (none, suspended, revoked, or expiring before it),
 *    or live sessions run the app without proving a licence (unverified sessions that name the
 *    app's client id or name, e.g. from XEP-0092), all of which enforcement would refuse;
 * 4. live sessions of the app (from the servers' live statistics, when a server is running)
 *    would be refused under `after` but not under `before`: counted, so the notice can say how
 *    many of the app's users are concerned.
 * Unlicensed clients of no registered app have no publisher to tell; the cutoff preview of
 * the statistics shows them.
 */
import type { AccessPolicy, ClientApp, Instant, LiveRow, PolicyStage } from "../licensing/index.js";
import {
  compareVersions,
  isValidVersion,
  type LicensingSnapshot,
  licenceStatusAt,
  unsupportedReason,
} from "../licensing/index.js";
import { when } from "./mail-templates.js";

export interface PolicyChange {
  before: AccessPolicy;
  after: AccessPolicy;
  /** The audit record of the change, when it was saved. */
  auditId?: number;
  at?: Instant;
}

export interface AffectedApp {
  clientId: string;
  name: string;
  reasons: string[];
  /** Live sessions of the app the new policy would refuse and the old one did not. */
  liveSessions: number;
}

export interface AffectedPublisher {
  publisherId: string;
  apps: AffectedApp[];
}

/** "Example Chat (com.example.chat): reason; reason" — one line per app, for the notice mail. */
export function reasonLines(p: AffectedPublisher): string[] {
  return p.apps.map((a) => `${a.name} (${a.clientId}): ${a.reasons.join("; ")}`);
}

interface EnforcementReach {
  /** First instant enforce applies to some accounts (undefined: never). */
  first?: Instant;
  /** First instant enforce applies to every account. */
  full?: Instant;
  /** Largest share of accounts ever under enforce. */
  share: number;
}

function reach(p: AccessPolicy): EnforcementReach {
  if (p.mode === "enforce") return { first: 0, full: 0, share: 100 };
  const stages = [...p.stages].sort((a, b) => a.at - b.at);
  const enforce = stages.filter((s: PolicyStage) => s.mode === "enforce");
  const full = enforce.find((s) => (s.percentage ?? 100) >= 100);
  return {
    ...(enforce[0] ? { first: enforce[0].at } : {}),
    ...(full ? { full: full.at } : {}),
    share: Math.max(0, ...enforce.map((s) => s.percentage ?? 100)),
  };
}

const earlier = (a: Instant | undefined, b: Instant | undefined) =>
  a !== undefined && (b === undefined || a < b);

/** Does `after` refuse unlicensed clients sooner or more widely than `before`? */
export function enforcementTightened(before: AccessPolicy, after: AccessPolicy): boolean {
  const b = reach(before);
  const a = reach(after);
  return earlier(a.first, b.first) || earlier(a.full, b.full) || a.share > b.share;
}

function minVersionReason(before: AccessPolicy, after: AccessPolicy, clientId: string): string | undefined {
  const was = before.apps[clientId]?.minVersion;
  const now = after.apps[clientId]?.minVersion;
  if (now === undefined || !isValidVersion(now)) return undefined;
  if (was === undefined) return `minimum version set to ${now}`;
  if (isValidVersion(was) && compareVersions(now, was) > 0)
    return `minimum version raised from ${was} to ${now}`;
  return undefined;
}

function blockedReasons(before: AccessPolicy, after: AccessPolicy, clientId: string): string[] {
  const was = new Set((before.apps[clientId]?.blocked ?? []).map((r) => `${r.from}-${r.to}`));
  return (after.apps[clientId]?.blocked ?? [])
    .filter((r) => !was.has(`${r.from}-${r.to}`))
    .map((r) => `versions ${r.from} to ${r.to} blocked${r.reason ? ` (${r.reason})` : ""}`);
}

function licenceReason(s: LicensingSnapshot, clientId: string, cutoff: Instant): string | undefined {
  const licences = (s.licences.get(clientId) ?? []).filter((l) => l.scope === "client");
  if (licences.some((l) => licenceStatusAt(l, cutoff) === "active")) return undefined;
  const at = when(cutoff);
  if (licences.length === 0) return `no client licence, and enforcement starts ${at}`;
  const latest = licences.at(-1)!;
  const status = licenceStatusAt(latest, cutoff);
  if (status === "expired") return `the licence expires before enforcement starts ${at}`;
  return `the licence is ${status}, and enforcement starts ${at}`;
}

/** Live rows that belong to `app`: verified ones by client id, unverified ones by client id or name. */
function rowsOf(app: ClientApp, rows: LiveRow[]): LiveRow[] {
  const name = app.name.toLowerCase();
  return rows.filter(
    (r) =>
      r.clientId !== null &&
      (r.clientId === app.clientId || (r.status !== "verified" && r.clientId.toLowerCase() === name)),
  );
}

export function affectedPublishers(
  change: PolicyChange,
  snapshot: LicensingSnapshot,
  now: Instant,
  live: LiveRow[] = [],
): AffectedPublisher[] {
  const { before, after } = change;
  const tightened = enforcementTightened(before, after);
  const cutoff = Math.max(now, reach(after).first ?? now);
  const byPublisher = new Map<string, AffectedApp[]>();
  for (const app of [...snapshot.apps.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : 1))) {
    const reasons: string[] = [];
    const min = minVersionReason(before, after, app.clientId);
    if (min) reasons.push(min);
    reasons.push(...blockedReasons(before, after, app.clientId));
    const rows = rowsOf(app, live);
    if (tightened) {
      const licence = licenceReason(snapshot, app.clientId, cutoff);
      if (licence) reasons.push(licence);
      const unproved = rows.filter((r) => r.status !== "verified").reduce((n, r) => n + r.sessions, 0);
      if (unproved > 0) reasons.push(`${unproved} live session(s) run the app without a licence proof`);
    }
    let liveSessions = 0;
    for (const r of rows) {
      if (r.status !== "verified") continue;
      const client = {
        clientId: app.clientId,
        verified: true,
        ...(r.version !== null ? { version: r.version } : {}),
      };
      const refusedAfter = unsupportedReason(client, snapshot, after, now) !== undefined;
      const refusedBefore = unsupportedReason(client, snapshot, before, now) !== undefined;
      if (refusedAfter && !refusedBefore) liveSessions += r.sessions;
    }
    if (liveSessions > 0) {
      reasons.push(`${liveSessions} live session(s) run versions the new policy refuses`);
    }
    if (reasons.length === 0) continue;
    const list = byPublisher.get(app.publisherId) ?? [];
    list.push({ clientId: app.clientId, name: app.name, reasons, liveSessions });
    byPublisher.set(app.publisherId, list);
  }
  return [...byPublisher.entries()]
    .filter(([publisherId]) => snapshot.publishers.has(publisherId))
    .map(([publisherId, apps]) => ({ publisherId, apps }));
}
