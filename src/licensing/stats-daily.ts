/**
 * Daily activity: one document per account and UTC day in `documents("licensing-daily")`,
 * key `<YYYY-MM-DD>|<account>`, listing every distinct client (app, version, platform, key,
 * verified or not) the account used that day; the per-version rows count them all.
 * For the headline an account is supported only when each client it still runs is: of each
 * app on each platform the latest version seen counts (an upgrade during the day replaces
 * the older version), and different apps or platforms all count (an account that also runs
 * an unlicensed client would lose it at the cutoff).
 */
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Instant } from "./model.js";
import type { LicensingSnapshot } from "./registry.js";
import { compareClients, supportShare } from "./stats-evaluate.js";
import type { DailyClient, DailyFigures, DailyRecord, DailyRow, ObservedClient } from "./stats-model.js";
import { statusOf, utcDay } from "./stats-model.js";

export const DAILY_STORE = "licensing-daily";
/** An account cycling through clients keeps its most recent ones. */
export const MAX_CLIENTS_PER_DAY = 16;
const DAY_MS = 86_400_000;

export function dailyStore(storage: Storage): DocumentStore<DailyRecord> {
  return storage.documents<DailyRecord>(DAILY_STORE);
}

export function dailyKey(day: string, account: string): string {
  return `${day}|${account}`;
}

/** Identity of a client within a day: what the figures distinguish. */
export function clientFingerprint(c: ObservedClient): string {
  return [c.verified ? "v" : "u", c.clientId ?? "", c.version ?? "", c.platform ?? "", c.keyId ?? ""].join(
    "\u0000",
  );
}

/** Adds `client` to the account's record of `day` unless it is already there (atomic across processes). */
export async function recordDailyClient(
  store: DocumentStore<DailyRecord>,
  day: string,
  account: string,
  client: ObservedClient,
  ok: boolean,
  now: Instant,
): Promise<void> {
  const fp = clientFingerprint(client);
  await store.update(dailyKey(day, account), (current) => {
    const rec: DailyRecord = current ?? { firstSeen: now, lastSeen: now, clients: [] };
    rec.lastSeen = Math.max(rec.lastSeen, now);
    if (!rec.clients.some((c) => clientFingerprint(c) === fp)) {
      const entry: DailyClient = { ...client, ok, firstSeen: now };
      rec.clients.push(entry);
      if (rec.clients.length > MAX_CLIENTS_PER_DAY)
        rec.clients.splice(0, rec.clients.length - MAX_CLIENTS_PER_DAY);
    }
    return rec;
  });
}

/** The clients an account still runs: the latest seen of each app (or unknown client) on each platform. */
export function currentClients(clients: DailyClient[]): DailyClient[] {
  const latest = new Map<string, DailyClient>();
  for (const c of clients) {
    const slot = JSON.stringify([c.verified, c.clientId ?? null, c.platform ?? null]);
    const prev = latest.get(slot);
    if (!prev || c.firstSeen >= prev.firstSeen) latest.set(slot, c);
  }
  return [...latest.values()];
}

/**
 * The figures of one day: distinct accounts per app/version/status, and the share of accounts
 * whose every current client is supported under the snapshot's current policy at `now`.
 */
export async function dailyFigures(
  storage: Storage,
  day: string,
  snapshot: LicensingSnapshot,
  now: Instant,
): Promise<DailyFigures> {
  const docs = await dailyStore(storage).list({ prefix: `${day}|` });
  const rows = new Map<string, { row: Omit<DailyRow, "accounts">; accounts: Set<string> }>();
  const byAccount: [string, DailyClient[]][] = [];
  for (const { key, value } of docs) {
    const account = key.slice(day.length + 1);
    const clients = Array.isArray(value?.clients) ? value.clients : [];
    byAccount.push([account, currentClients(clients)]);
    for (const c of clients) {
      const row = { clientId: c.clientId ?? null, version: c.version ?? null, status: statusOf(c) };
      const k = JSON.stringify(row);
      let r = rows.get(k);
      if (!r) {
        r = { row, accounts: new Set() };
        rows.set(k, r);
      }
      r.accounts.add(account);
    }
  }
  return {
    day,
    accounts: byAccount.length,
    rows: [...rows.values()]
      .map(({ row, accounts }) => ({ ...row, accounts: accounts.size }))
      .sort(compareClients),
    supported: supportShare(byAccount, snapshot, snapshot.policy, now),
  };
}

/** Deletes the daily documents of days more than `retentionDays` before `today`; returns how many. */
export async function pruneDaily(storage: Storage, today: string, retentionDays: number): Promise<number> {
  const store = dailyStore(storage);
  const keepFrom = utcDay(Date.parse(`${today}T00:00:00Z`) - retentionDays * DAY_MS);
  let removed = 0;
  for (;;) {
    const [oldest] = await store.list({ limit: 1 });
    if (!oldest) break;
    const day = oldest.key.slice(0, oldest.key.indexOf("|"));
    if (day >= keepFrom) break;
    const batch = await store.list({ prefix: `${day}|`, limit: 1000 });
    // A key without the day|account shape would otherwise stop the sweep here for ever.
    if (batch.length === 0) batch.push(oldest);
    for (const d of batch) if (await store.delete(d.key)) removed++;
  }
  return removed;
}
