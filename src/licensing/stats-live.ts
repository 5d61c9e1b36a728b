/**
 * Live snapshots: each server node writes its live figures to `documents("licensing-stats")`,
 * key `live:<nodeId>`, every few seconds, so another process (the CLI) can read them. A
 * snapshot older than the staleness limit belongs to a node that stopped or crashed and is
 * ignored. Figures of several nodes are added up: in a cluster each node counts the accounts
 * whose sessions on the first node by name are its own (all their sessions, on every node), so
 * an account with sessions on two nodes counts once.
 */
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Instant } from "./model.js";
import { compareClients } from "./stats-evaluate.js";
import type { CutoffPreview, CutoffRow, LiveRow, LiveSnapshot, SupportShare, Tally } from "./stats-model.js";

export const STATS_STORE = "licensing-stats";
export const LIVE_PREFIX = "live:";
/** Readers ignore snapshots older than this. */
export const STALE_AFTER_MS = 30_000;
/** Snapshots this old are deleted by the daily pruning (their node is long gone). */
export const DEAD_AFTER_MS = 86_400_000;

export function statsStore(storage: Storage): DocumentStore<LiveSnapshot> {
  return storage.documents<LiveSnapshot>(STATS_STORE);
}

export function writeLiveSnapshot(storage: Storage, snapshot: LiveSnapshot): Promise<void> {
  return statsStore(storage).put(LIVE_PREFIX + snapshot.nodeId, snapshot);
}

export function deleteLiveSnapshot(storage: Storage, nodeId: string): Promise<boolean> {
  return statsStore(storage).delete(LIVE_PREFIX + nodeId);
}

export interface NodeStamp {
  nodeId: string;
  at: Instant;
}

/** The snapshots fresh at `now`, and the nodes whose last snapshot is stale. */
export async function readLiveSnapshots(
  storage: Storage,
  now: Instant,
  staleAfterMs = STALE_AFTER_MS,
): Promise<{ fresh: LiveSnapshot[]; stale: NodeStamp[] }> {
  const fresh: LiveSnapshot[] = [];
  const stale: NodeStamp[] = [];
  for (const { value } of await statsStore(storage).list({ prefix: LIVE_PREFIX })) {
    if (now - value.at > staleAfterMs) stale.push({ nodeId: value.nodeId, at: value.at });
    else fresh.push(value);
  }
  return { fresh, stale };
}

/** Deletes snapshots no node has refreshed for `maxAgeMs`; returns how many. */
export async function pruneDeadSnapshots(
  storage: Storage,
  now: Instant,
  maxAgeMs = DEAD_AFTER_MS,
): Promise<number> {
  const store = statsStore(storage);
  let removed = 0;
  for (const { key, value } of await store.list({ prefix: LIVE_PREFIX })) {
    if (now - value.at > maxAgeMs && (await store.delete(key))) removed++;
  }
  return removed;
}

/** Live figures of every fresh node together. */
export interface LiveFigures {
  nodes: (NodeStamp & { revision: number })[];
  sessions: number;
  accounts: number;
  rows: LiveRow[];
  supported: SupportShare;
  cutoff: CutoffPreview;
}

function addTally(a: Tally, b: Tally): Tally {
  return { sessions: a.sessions + b.sessions, accounts: a.accounts + b.accounts };
}

function sumRows<R extends { sessions: number; accounts: number }>(
  lists: R[][],
  keyOf: (r: R) => string,
): R[] {
  const out = new Map<string, R>();
  for (const list of lists) {
    for (const r of list) {
      const k = keyOf(r);
      const prev = out.get(k);
      out.set(
        k,
        prev
          ? { ...prev, sessions: prev.sessions + r.sessions, accounts: prev.accounts + r.accounts }
          : { ...r },
      );
    }
  }
  return [...out.values()];
}

export function mergeLive(snapshots: LiveSnapshot[]): LiveFigures {
  const supported = snapshots.reduce(
    (s, n) => ({
      accounts: s.accounts + n.supported.accounts,
      supportedAccounts: s.supportedAccounts + n.supported.supportedAccounts,
    }),
    { accounts: 0, supportedAccounts: 0 },
  );
  const cutoffs = snapshots.map((n) => n.cutoff);
  const liveKey = (r: LiveRow) => JSON.stringify([r.clientId, r.version, r.platform, r.status]);
  const cutKey = (r: CutoffRow) => JSON.stringify([r.clientId, r.version, r.status, r.reason]);
  return {
    nodes: snapshots.map((n) => ({ nodeId: n.nodeId, at: n.at, revision: n.revision })),
    sessions: snapshots.reduce((s, n) => s + n.sessions, 0),
    accounts: snapshots.reduce((s, n) => s + n.accounts, 0),
    rows: sumRows(
      snapshots.map((n) => n.rows),
      liveKey,
    ).sort(compareClients),
    supported: {
      ...supported,
      share: supported.accounts === 0 ? null : supported.supportedAccounts / supported.accounts,
    },
    cutoff: {
      at: Math.max(0, ...cutoffs.map((c) => c.at)),
      sessions: cutoffs.reduce((s, c) => s + c.sessions, 0),
      accounts: cutoffs.reduce((s, c) => s + c.accounts, 0),
      rows: sumRows(
        cutoffs.map((c) => c.rows),
        cutKey,
      ).sort((a, b) => b.sessions - a.sessions || compareClients(a, b)),
      spared: {
        exempt: cutoffs.reduce((t, c) => addTally(t, c.spared.exempt), { sessions: 0, accounts: 0 }),
        rollout: cutoffs.reduce((t, c) => addTally(t, c.spared.rollout), { sessions: 0, accounts: 0 }),
      },
    },
  };
}
