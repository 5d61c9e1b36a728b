/**
 * Access decisions, as pure functions of a registry snapshot and an instant:
 * the standing of an app's key and licence, the version rules (applied to
 * licensed apps in every mode), licence session limits, what an unlicensed
 * client gets in the account's mode, and the instants at which any of these
 * can change (for the enforcement timer).
 */

import type { ClientInfo } from "./client-info.js";
import { isLicensed } from "./client-info.js";
import type { AccessPolicy, AppKey, ClientApp, Instant, Licence, PolicyMode, PolicyStage } from "./model.js";
import { isoInstant, type Refusal } from "./protocol.js";
import {
  allLicences,
  clientLicenceStanding,
  type LicensingSnapshot,
  modeFor,
  nextEnforceStage,
  nextStageAfter,
  stageAt,
} from "./registry.js";
import { compareVersions, formatVersionRange, inRange } from "./version.js";

export function isExempt(policy: AccessPolicy, username: string | undefined): boolean {
  return username !== undefined && policy.exemptions.includes(username);
}

/** The mode an account is in now (rollout and exemptions applied). */
export function accountMode(policy: AccessPolicy, now: Instant, username: string | undefined): PolicyMode {
  if (isExempt(policy, username)) return "open";
  return modeFor(policy, now, username);
}

/** The network's mode now, as announced in the stream feature. */
export function networkMode(policy: AccessPolicy, now: Instant): PolicyMode {
  return stageAt(policy, now).mode;
}

/** The next scheduled enforce stage (the cutoff announced in the stream feature). */
export function nextEnforceAt(policy: AccessPolicy, now: Instant): Instant | undefined {
  return nextEnforceStage(policy, now)?.at;
}

/** When enforcement reaches this account (its rollout bucket included), if it is scheduled. */
export function cutoffFor(
  policy: AccessPolicy,
  now: Instant,
  username: string | undefined,
): Instant | undefined {
  return policy.stages
    .filter((s) => s.at > now)
    .sort((a, b) => a.at - b.at)
    .find((s) => accountMode(policy, s.at, username) === "enforce")?.at;
}

export function upgradeUrlFor(policy: AccessPolicy, clientId: string): string | undefined {
  return policy.apps[clientId]?.upgradeUrl ?? policy.upgradeUrl;
}

const withUrl = (text: string, url: string | undefined) =>
  url === undefined ? text : `${text} Upgrade: ${url}`;

/** Refused when below the app's minimum or inside a blocked range; undefined when the version may connect. */
export function versionRefusal(policy: AccessPolicy, app: ClientApp, version: string): Refusal | undefined {
  const rules = policy.apps[app.clientId];
  if (!rules) return undefined;
  const url = upgradeUrlFor(policy, app.clientId);
  const min = rules.minVersion;
  if (min !== undefined && compareVersions(version, min) < 0) {
    return {
      reason: "version-too-old",
      text: withUrl(
        `${app.name} ${version} is no longer supported on this network: version ${min} or later is required.`,
        url,
      ),
      details: { minimum: min, "upgrade-url": url },
    };
  }
  const blocked = rules.blocked?.find((r) => inRange(version, r));
  if (blocked) {
    const why = blocked.reason ? ` (${blocked.reason})` : "";
    return {
      reason: "version-blocked",
      text: withUrl(
        `${app.name} ${version} is blocked on this network${why}: versions ${formatVersionRange(blocked)} may not connect.`,
        url,
      ),
      details: { from: blocked.from, to: blocked.to, minimum: min, "upgrade-url": url },
    };
  }
  return undefined;
}

/** The version to suggest when the client runs an older one than recommended. */
export function recommendedFor(
  policy: AccessPolicy,
  clientId: string,
  version: string,
): { version: string; url: string | undefined } | undefined {
  const rec = policy.apps[clientId]?.recommendedVersion;
  if (rec === undefined || compareVersions(version, rec) >= 0) return undefined;
  return { version: rec, url: upgradeUrlFor(policy, clientId) };
}

/** The licence an app connects under now, or why it has none. */
export function licenceRefusal(
  snapshot: LicensingSnapshot,
  app: ClientApp,
  now: Instant,
): { licence: Licence } | Refusal {
  const standing = clientLicenceStanding(snapshot, app.clientId, now);
  if (!standing) {
    return { reason: "unlicensed-client", text: `${app.name} holds no client licence on this network` };
  }
  switch (standing.status) {
    case "active":
      return { licence: standing.licence };
    case "suspended":
      return { reason: "licence-suspended", text: `the licence of ${app.name} is suspended` };
    case "revoked":
      return { reason: "licence-revoked", text: `the licence of ${app.name} has been revoked` };
    case "expired":
      return { reason: "licence-expired", text: `the licence of ${app.name} has expired` };
    case "pending":
      return {
        reason: "unlicensed-client",
        text: `the licence of ${app.name} is valid from ${isoInstant(standing.licence.validFrom)}`,
      };
  }
}

/** A key that is revoked refuses the client; otherwise the app's licence decides. */
export function keyAndLicence(
  snapshot: LicensingSnapshot,
  app: ClientApp,
  key: AppKey,
  now: Instant,
): { licence: Licence } | Refusal {
  if (key.revokedAt !== undefined && key.revokedAt <= now) {
    return { reason: "key-revoked", text: `key "${key.keyId}" of ${app.name} has been revoked` };
  }
  return licenceRefusal(snapshot, app, now);
}

/** `others`: live sessions already using the licence. */
export function sessionLimitRefusal(app: ClientApp, licence: Licence, others: number): Refusal | undefined {
  const max = licence.maxSessions;
  if (max === undefined || others < max) return undefined;
  return {
    reason: "too-many-sessions",
    text: `the licence of ${app.name} allows ${max} concurrent session${max === 1 ? "" : "s"}, and all are in use`,
    details: { limit: String(max) },
  };
}

export function unlicensedRefusal(policy: AccessPolicy): Refusal {
  const where = policy.infoUrl === undefined ? "" : ` Licensed clients: ${policy.infoUrl}`;
  return {
    reason: "unlicensed-client",
    text: `This network admits licensed client software only, and this client did not prove a licence.${where}`,
    details: { "info-url": policy.infoUrl },
  };
}

export type Standing = { ok: true; app: ClientApp; licence: Licence } | ({ ok: false } & Refusal);

/**
 * Whether a verified session may stay, now: its app and key still registered, the key not
 * revoked, a licence in force, the version allowed. Session limits are counted by the caller.
 */
export function licensedStanding(
  snapshot: LicensingSnapshot,
  info: ClientInfo & { clientId: string },
  now: Instant,
): Standing {
  const app = snapshot.apps.get(info.clientId);
  const key = info.keyId === undefined ? undefined : snapshot.keys.get(info.clientId)?.get(info.keyId);
  if (!app || !key) {
    return {
      ok: false,
      reason: "unknown-key",
      text: `key "${info.keyId}" is no longer registered for client "${info.clientId}"`,
    };
  }
  const standing = keyAndLicence(snapshot, app, key, now);
  if ("reason" in standing) return { ok: false, ...standing };
  const version = info.version === undefined ? undefined : versionRefusal(snapshot.policy, app, info.version);
  if (version) return { ok: false, ...version };
  return { ok: true, app, licence: standing.licence };
}

/**
 * The decision for a session (bound or about to be), leaving out session limits:
 * licensed clients by their standing, the others by the account's mode.
 */
export function sessionRefusal(
  snapshot: LicensingSnapshot,
  info: ClientInfo | undefined,
  username: string | undefined,
  now: Instant,
): Refusal | undefined {
  if (isLicensed(info)) {
    const s = licensedStanding(snapshot, info, now);
    return s.ok ? undefined : s;
  }
  if (accountMode(snapshot.policy, now, username) === "enforce") return unlicensedRefusal(snapshot.policy);
  return undefined;
}

/**
 * The next instant after `now` at which a decision can change by itself: a policy stage,
 * a licence (an app's or a domain's) starting or ending, a key revocation taking effect.
 */
export function nextChangeAt(snapshot: LicensingSnapshot, now: Instant): Instant | undefined {
  let next = nextStageAfter(snapshot.policy, now)?.at;
  const consider = (t: Instant | undefined) => {
    if (t !== undefined && t > now && (next === undefined || t < next)) next = t;
  };
  for (const l of allLicences(snapshot)) {
    consider(l.validFrom);
    consider(l.validUntil);
  }
  for (const keys of snapshot.keys.values()) for (const k of keys.values()) consider(k.revokedAt);
  return next;
}

const STRICTNESS: Record<PolicyMode, number> = { open: 0, warn: 1, enforce: 2 };

/** A stage that loosens what an earlier stage (or the base mode) imposed on some accounts. */
export interface ScheduleRelaxation {
  stage: PolicyStage;
  /** The strictest mode some of the stage's accounts were in just before it. */
  before: PolicyMode;
  /** One line for the operator. */
  text: string;
}

/**
 * The stages of a schedule that relax enforcement: an `enforce` stage followed by `warn`
 * or `open` (or a `warn` one by `open`) for accounts the earlier stage covered. Allowed —
 * a trial cutoff may end — but worth a warning: the cutoff announced to clients then lies
 * after a time of enforcement, and accounts go back and forth.
 */
export function scheduleRelaxations(policy: AccessPolicy): ScheduleRelaxation[] {
  const stages = [...policy.stages].sort((a, b) => a.at - b.at);
  const out: ScheduleRelaxation[] = [];
  // An account's mode before stage i: the last earlier stage that covers its bucket, else the base mode.
  const modeBefore = (i: number, bucket: number): PolicyMode => {
    for (let j = i - 1; j >= 0; j--) if (bucket < (stages[j]!.percentage ?? 100)) return stages[j]!.mode;
    return policy.mode;
  };
  stages.forEach((stage, i) => {
    const share = stage.percentage ?? 100;
    // The mode is constant between the earlier stages' percentages: one bucket per interval.
    const buckets = [0, ...stages.slice(0, i).map((s) => s.percentage ?? 100)].filter((b) => b < share);
    const before = buckets
      .map((b) => modeBefore(i, b))
      .reduce<PolicyMode>((a, m) => (STRICTNESS[m] > STRICTNESS[a] ? m : a), "open");
    if (STRICTNESS[stage.mode] < STRICTNESS[before]) {
      out.push({
        stage,
        before,
        text:
          `the stage of ${isoInstant(stage.at)} (${stage.mode}${share < 100 ? ` for ${share} % of accounts` : ""}) ` +
          `relaxes enforcement: accounts in ${before} before it go back to ${stage.mode}`,
      });
    }
  });
  return out;
}
