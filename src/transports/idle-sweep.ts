/**
 * Idle connections, found by one sweep a second instead of a timer each. Node's
 * `socket.setTimeout` keeps a `Timeout`, its bound callback and a one-shot listener's wrapper
 * for every socket, about 0.4 KB of each idle session's heap (docs/benchmarks.md, "Idle
 * streams"); a watched connection here is one entry in a set and three fields of its own.
 *
 * A connection marks its traffic (`idleActive = true`, a field store on every read and
 * write); a sweep that finds the mark clears it and restarts the quiet period from the
 * sweep's time. So a connection is declared idle no earlier than its limit after its last
 * traffic, and at most two sweeps later. (The parser's tokenizer sweep in core/xml/parser.ts
 * has the same shape; the XML layer may not import from the transports, so each keeps its own.)
 */
import { performance } from "node:perf_hooks";

export const IDLE_SWEEP_MS = 1_000;

/** What a connection keeps for the sweep. */
export interface IdleWatched {
  /** Traffic since the last sweep: set by the connection, cleared by the sweep. */
  idleActive: boolean;
  /** The sweep's clock when the quiet period began. */
  idleSince: number;
  /** How long a quiet period may last. */
  idleLimitMs: number;
  /** Called once, when the quiet period reached the limit; the connection is then no longer watched. */
  onIdle(): void;
}

const watched = new Set<IdleWatched>();
let sweepTimer: NodeJS.Timeout | undefined;

/** Starts (or restarts, with another limit) watching `conn`; its quiet period begins now. */
export function watchIdle(conn: IdleWatched): void {
  conn.idleActive = false;
  conn.idleSince = performance.now();
  watched.add(conn);
  if (sweepTimer === undefined) {
    sweepTimer = setInterval(() => sweepIdle(performance.now()), IDLE_SWEEP_MS);
    sweepTimer.unref();
  }
}

export function unwatchIdle(conn: IdleWatched): void {
  if (!watched.delete(conn)) return;
  if (watched.size === 0 && sweepTimer !== undefined) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
}

/**
 * One sweep at time `now` (the `performance.now()` clock): calls `onIdle` of every watched
 * connection quiet for its limit, after taking it off the watch. Returns how many. Runs on a
 * timer; tests call it with a time of their choosing.
 */
export function sweepIdle(now: number): number {
  let idle = 0;
  for (const conn of watched) {
    if (conn.idleActive) {
      conn.idleActive = false;
      conn.idleSince = now;
    } else if (now - conn.idleSince >= conn.idleLimitMs) {
      unwatchIdle(conn);
      idle++;
      conn.onIdle();
    }
  }
  return idle;
}
