/**
 * What a policy would cut off now, for the editor's preview before saving: the live
 * sessions of this server (in-process statistics, when available) and the accounts active
 * today (daily documents), each both under the policy as it would be right after saving
 * and as if enforcement reached every account now (what a scheduled cutoff would do).
 * The evaluation is the statistics module's own (previewCutoff), given the changed policy.
 */
import type { Clock } from "../../core/clock.js";
import type { Storage } from "../../core/storage/types.js";
import type { AccessPolicy, CutoffPreview } from "../../licensing/index.js";
import {
  currentClients,
  dailyStore,
  enforcementNow,
  LicensingRegistry,
  previewCutoff,
  type SessionEntry,
  utcDay,
} from "../../licensing/index.js";

export interface PolicyPreview {
  policy: AccessPolicy;
  /** Live sessions: after saving, and with enforcement for every account now (absent without live statistics). */
  live?: { afterSave: CutoffPreview; enforced: CutoffPreview };
  /** Accounts active today with each client they still run (a "session" here is one account's client). */
  today: { accounts: number; afterSave: CutoffPreview; enforced: CutoffPreview };
}

/** The clients each account active today still runs, as entries to evaluate. */
async function todayEntries(
  storage: Storage,
  now: number,
): Promise<{ entries: SessionEntry[]; accounts: number }> {
  const day = utcDay(now);
  const entries: SessionEntry[] = [];
  const docs = await dailyStore(storage).list({ prefix: `${day}|` });
  for (const { key, value } of docs) {
    const account = key.slice(day.length + 1);
    for (const client of currentClients(Array.isArray(value?.clients) ? value.clients : [])) {
      entries.push({ account, client });
    }
  }
  return { entries, accounts: docs.length };
}

export async function previewPolicy(
  storage: Storage,
  clock: Clock,
  policy: AccessPolicy,
  livePreview: ((policy: AccessPolicy) => CutoffPreview) | undefined,
): Promise<PolicyPreview> {
  const now = clock.now();
  const snapshot = await new LicensingRegistry(storage, clock).snapshot();
  const { entries, accounts } = await todayEntries(storage, now);
  const enforced = enforcementNow(policy);
  return {
    policy,
    ...(livePreview ? { live: { afterSave: livePreview(policy), enforced: livePreview(enforced) } } : {}),
    today: {
      accounts,
      afterSave: previewCutoff(entries, snapshot, policy, now),
      enforced: previewCutoff(entries, snapshot, enforced, now),
    },
  };
}
