/**
 * The client statistics as one report, read from storage only, so any process can produce
 * it: the CLI (`switchboard stats clients`), the HTTP API, the console. Live figures come
 * from the nodes' snapshots (stale ones ignored); daily figures and the headline are computed
 * against the registry's current policy.
 */
import type { Clock } from "../core/clock.js";
import type { Storage } from "../core/storage/types.js";
import type { Instant, PolicyMode, PolicyStage } from "./model.js";
import { LicensingRegistry, type LicensingSnapshot, nextStageAfter, stageAt } from "./registry.js";
import { dailyFigures } from "./stats-daily.js";
import {
  type LiveFigures,
  mergeLive,
  type NodeStamp,
  readLiveSnapshots,
  STALE_AFTER_MS,
} from "./stats-live.js";
import type { DailyFigures } from "./stats-model.js";
import { utcDay } from "./stats-model.js";

export interface ClientStatsReport {
  at: Instant;
  policy: { revision: number; mode: PolicyMode; percentage: number; nextStage?: PolicyStage };
  /** Null when no node wrote a fresh snapshot (no server running, or it stopped). */
  live: LiveFigures | null;
  /** Nodes whose last snapshot is too old to count. */
  staleNodes: NodeStamp[];
  /** Daily figures; `daily.supported` is the headline share. */
  daily: DailyFigures;
}

export interface ClientStatsOptions {
  /** The registry snapshot to evaluate against; read from storage when absent. */
  snapshot?: LicensingSnapshot;
  /** UTC day "YYYY-MM-DD" of the daily figures (default: today). */
  day?: string;
  staleAfterMs?: number;
}

export async function clientStatsReport(
  storage: Storage,
  clock: Clock,
  opts: ClientStatsOptions = {},
): Promise<ClientStatsReport> {
  const now = clock.now();
  const snapshot = opts.snapshot ?? (await new LicensingRegistry(storage, clock).snapshot());
  const { fresh, stale } = await readLiveSnapshots(storage, now, opts.staleAfterMs ?? STALE_AFTER_MS);
  const stage = stageAt(snapshot.policy, now);
  const next = nextStageAfter(snapshot.policy, now);
  return {
    at: now,
    policy: {
      revision: snapshot.revision,
      mode: stage.mode,
      percentage: stage.percentage,
      ...(next ? { nextStage: next } : {}),
    },
    live: fresh.length > 0 ? mergeLive(fresh) : null,
    staleNodes: stale,
    daily: await dailyFigures(storage, opts.day ?? utcDay(now), snapshot, now),
  };
}
