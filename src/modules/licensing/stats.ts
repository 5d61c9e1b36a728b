/**
 * Client statistics inside the server. The licensing module creates one LicensingStats and
 * calls `install(ctx)`: it then
 * - records, when a session is bound (and again whenever the client record of a session
 *   changes, or at the latest at the next tick), that the account was active today with that
 *   client (`documents("licensing-daily")`);
 * - every `intervalMs` (5 s) computes the live figures from the bound sessions and writes
 *   them to `documents("licensing-stats")` under `live:<nodeId>` with a timestamp;
 * - once a day prunes daily documents older than `retentionDays`.
 * Live figures are computed from the session list each time, never from counters, so they
 * always agree with the sessions actually open. In a cluster each node's figures cover the
 * accounts it counts: those with a session here and none on a node earlier by name, with all
 * their sessions, this node's and the others' (what their nodes told the directory of their
 * clients). The readers add the nodes' figures up, so an account with sessions on two nodes
 * counts once, and whether every session of an account runs a supported client is judged on
 * all of them.
 */
import os from "node:os";
import type { Clock } from "../../core/clock.js";
import type { ModuleContext } from "../../core/module.js";
import type { PeerSessions } from "../../core/peer-sessions.js";
import type { ClientSession } from "../../core/session.js";
import type { Storage } from "../../core/storage/types.js";
import type {
  AccessPolicy,
  CutoffPreview,
  LicensingSnapshot,
  LiveSnapshot,
  ObservedClient,
} from "../../licensing/index.js";
import {
  clientFingerprint,
  dailyStore,
  deleteLiveSnapshot,
  emptySnapshot,
  enforcementNow,
  liveRows,
  observedClient,
  previewCutoff,
  pruneDaily,
  pruneDeadSnapshots,
  recordDailyClient,
  type SessionEntry,
  supportShare,
  unsupportedReason,
  utcDay,
  writeLiveSnapshot,
} from "../../licensing/index.js";
import { observedPeerClient } from "./session-info.js";

export interface LicensingStatsOptions {
  storage: Storage;
  clock: Clock;
  /** The bound sessions (the server's SessionDirectory), and in a cluster the other nodes'. */
  sessions: { all(): Iterable<ClientSession>; readonly peers?: PeerSessions | undefined };
  /** The registry snapshot the module enforces now (undefined before the first load). */
  snapshot: () => LicensingSnapshot | undefined;
  /** Names this server's live snapshot; defaults to the host name. */
  nodeId?: string;
  /** Daily documents older than this many days are deleted (default 90). */
  retentionDays?: number;
  /** How often the live snapshot is written (default 5000 ms). */
  intervalMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

/** Runs after the licensing module's own session/bound handler (priority 0) has recorded the client. */
export const STATS_BOUND_PRIORITY = -100;

export class LicensingStats {
  readonly nodeId: string;
  readonly intervalMs: number;
  readonly retentionDays: number;
  /** The UTC day `recorded` is about. */
  private day = "";
  /** account → client fingerprints already written for `day` (saves a write per repeated login). */
  private readonly recorded = new Map<string, Set<string>>();
  private readonly pending = new Set<Promise<void>>();
  private ticking: Promise<void> | undefined;
  private prunedOn = "";
  private stopped = false;

  constructor(private readonly opts: LicensingStatsOptions) {
    this.nodeId = opts.nodeId ?? os.hostname();
    this.intervalMs = opts.intervalMs ?? 5_000;
    this.retentionDays = opts.retentionDays ?? 90;
  }

  /** Hooks session binding, starts the snapshot timer and removes this node's snapshot at unload. */
  install(ctx: Pick<ModuleContext<unknown>, "hook" | "setInterval" | "onUnload">): void {
    ctx.hook(
      "session/bound",
      ({ session }) => {
        this.onBound(session);
      },
      STATS_BOUND_PRIORITY,
    );
    ctx.setInterval(() => void this.tick(), this.intervalMs);
    ctx.onUnload(() => this.stop());
  }

  /** A session was bound: its account is active today with its client. */
  onBound(session: ClientSession): void {
    this.record(session);
  }

  /** The client record of a session changed (e.g. a XEP-0092 answer arrived). */
  onClientInfo(session: ClientSession): void {
    this.record(session);
  }

  private snapshot(): LicensingSnapshot {
    return this.opts.snapshot() ?? emptySnapshot();
  }

  /** The bound sessions of this node with their clients. */
  entries(): SessionEntry[] {
    const out: SessionEntry[] = [];
    for (const s of this.opts.sessions.all()) {
      if (s.username === undefined || s.closed) continue;
      out.push({ account: s.username, client: observedClient(s) });
    }
    return out;
  }

  /** The bound sessions of every node of the cluster with their clients (this node's alone on a single server). */
  clusterEntries(): SessionEntry[] {
    const out = this.entries();
    for (const p of this.opts.sessions.peers?.all() ?? []) {
      out.push({ account: p.username, client: observedPeerClient(p.client) });
    }
    return out;
  }

  /**
   * The sessions this node's live figures count: on a single server, its own; in a cluster,
   * every session of the accounts it counts (see the top of this file).
   */
  countedEntries(): SessionEntry[] {
    const own = this.entries();
    const peers = this.opts.sessions.peers;
    if (!peers) return own;
    const out: SessionEntry[] = [];
    const byAccount = new Map<string, SessionEntry[]>();
    for (const e of own) {
      const list = byAccount.get(e.account);
      if (list) list.push(e);
      else byAccount.set(e.account, [e]);
    }
    for (const [account, entries] of byAccount) {
      const others = peers.ofAccount(account);
      if (others.some((p) => p.node < peers.node)) continue;
      out.push(...entries);
      for (const p of others) out.push({ account, client: observedPeerClient(p.client) });
    }
    return out;
  }

  /** Live figures now, against the policy in force. */
  live(): LiveSnapshot {
    const now = this.opts.clock.now();
    const snap = this.snapshot();
    const entries = this.countedEntries();
    const byAccount = new Map<string, ObservedClient[]>();
    for (const e of entries) {
      const list = byAccount.get(e.account);
      if (list) list.push(e.client);
      else byAccount.set(e.account, [e.client]);
    }
    return {
      nodeId: this.nodeId,
      at: now,
      revision: snap.revision,
      sessions: entries.length,
      accounts: byAccount.size,
      rows: liveRows(entries),
      supported: supportShare(byAccount, snap, snap.policy, now),
      cutoff: previewCutoff(entries, snap, enforcementNow(snap.policy), now),
    };
  }

  /**
   * What `policy` would cut off among the live sessions of every node now; without a policy,
   * what enforcement for every account starting now would. For the policy editor's preview of a change.
   */
  previewCutoff(policy?: AccessPolicy): CutoffPreview {
    const snap = this.snapshot();
    return previewCutoff(
      this.clusterEntries(),
      snap,
      policy ?? enforcementNow(snap.policy),
      this.opts.clock.now(),
    );
  }

  private record(session: ClientSession): void {
    const account = session.username;
    // A session refused at binding (closed by the licensing module's own handler) was not active.
    if (account === undefined || session.closed || this.stopped) return;
    const now = this.opts.clock.now();
    const day = utcDay(now);
    if (day !== this.day) {
      this.day = day;
      this.recorded.clear();
    }
    const client = observedClient(session);
    const fp = clientFingerprint(client);
    let seen = this.recorded.get(account);
    if (!seen) {
      seen = new Set();
      this.recorded.set(account, seen);
    }
    if (seen.has(fp)) return;
    seen.add(fp);
    const snap = this.snapshot();
    const ok = unsupportedReason(client, snap, snap.policy, now) === undefined;
    const write = recordDailyClient(dailyStore(this.opts.storage), day, account, client, ok, now)
      .catch((err: unknown) => {
        // Forget it so the next tick tries again.
        if (this.day === day) this.recorded.get(account)?.delete(fp);
        this.opts.log?.warn({ err, account }, "recording daily client statistics failed");
      })
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }

  /** Waits for the daily records written so far. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Records every live session for today, writes the live snapshot, prunes once a day. */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.ticking ??= this.runTick().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    try {
      // Sessions still open at midnight, and clients identified after binding, count too.
      for (const s of this.opts.sessions.all()) if (!s.closed) this.record(s);
      await writeLiveSnapshot(this.opts.storage, this.live());
      await this.flush();
      const today = utcDay(this.opts.clock.now());
      if (this.prunedOn !== today) {
        this.prunedOn = today;
        await pruneDaily(this.opts.storage, today, this.retentionDays);
        await pruneDeadSnapshots(this.opts.storage, this.opts.clock.now());
      }
    } catch (err) {
      this.opts.log?.warn({ err }, "writing client statistics failed");
    }
  }

  /** Stops recording and removes this node's live snapshot (readers must not take it for live). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.ticking;
    await this.flush();
    try {
      await deleteLiveSnapshot(this.opts.storage, this.nodeId);
    } catch (err) {
      this.opts.log?.warn({ err }, "removing the live client statistics failed");
    }
  }
}
