/**
 * The shared idle sweep (src/transports/idle-sweep.ts): a connection is idle no earlier than
 * its limit after its last traffic and at most two sweeps later, once, and not after it was
 * taken off the watch.
 */
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { afterEach, test } from "node:test";
import {
  IDLE_SWEEP_MS,
  type IdleWatched,
  sweepIdle,
  unwatchIdle,
  watchIdle,
} from "../../src/transports/idle-sweep.js";

function connection(limitMs: number): IdleWatched & { idleCalls: number } {
  const conn = {
    idleActive: false,
    idleSince: 0,
    idleLimitMs: limitMs,
    idleCalls: 0,
    onIdle() {
      conn.idleCalls++;
    },
  };
  return conn;
}

/**
 * Sweep times in whole milliseconds from just after the watch began: the clock is fractional,
 * and `(t + a) - t` need not equal `a` in floating point, which put a boundary a hair short.
 */
function sweepBase(conn: IdleWatched): number {
  return Math.ceil(conn.idleSince);
}

const watchedHere: IdleWatched[] = [];
afterEach(() => {
  for (const c of watchedHere.splice(0)) unwatchIdle(c);
});

function watch(limitMs: number): ReturnType<typeof connection> {
  const conn = connection(limitMs);
  watchIdle(conn);
  watchedHere.push(conn);
  return conn;
}

test("a quiet connection is idle at its limit, once", () => {
  const conn = watch(3 * IDLE_SWEEP_MS);
  const t0 = sweepBase(conn);
  assert.ok(Math.abs(t0 - performance.now()) < 1000, "the quiet period starts when the watch does");
  assert.equal(sweepIdle(t0 + 2 * IDLE_SWEEP_MS), 0);
  assert.equal(conn.idleCalls, 0);
  assert.equal(sweepIdle(t0 + 3 * IDLE_SWEEP_MS), 1);
  assert.equal(conn.idleCalls, 1);
  assert.equal(sweepIdle(t0 + 10 * IDLE_SWEEP_MS), 0, "no longer watched once found idle");
  assert.equal(conn.idleCalls, 1);
});

test("traffic restarts the quiet period from the sweep that sees it", () => {
  const conn = watch(3 * IDLE_SWEEP_MS);
  const t0 = sweepBase(conn);
  conn.idleActive = true;
  sweepIdle(t0 + 2 * IDLE_SWEEP_MS);
  assert.equal(conn.idleActive, false, "the sweep takes the mark");
  assert.equal(sweepIdle(t0 + 4 * IDLE_SWEEP_MS), 0, "4 s after the start, 2 s after the traffic was seen");
  assert.equal(sweepIdle(t0 + 5 * IDLE_SWEEP_MS - 1), 0);
  assert.equal(sweepIdle(t0 + 5 * IDLE_SWEEP_MS), 1);
  assert.equal(conn.idleCalls, 1);
});

test("connections are judged each by its own limit and traffic", () => {
  const short = watch(2 * IDLE_SWEEP_MS);
  const long = watch(6 * IDLE_SWEEP_MS);
  const busy = watch(2 * IDLE_SWEEP_MS);
  const t0 = Math.max(sweepBase(short), sweepBase(long), sweepBase(busy));
  for (let s = 1; s <= 5; s++) {
    busy.idleActive = true;
    sweepIdle(t0 + s * IDLE_SWEEP_MS);
  }
  assert.deepEqual([short.idleCalls, long.idleCalls, busy.idleCalls], [1, 0, 0]);
  sweepIdle(t0 + 6 * IDLE_SWEEP_MS);
  assert.deepEqual([short.idleCalls, long.idleCalls, busy.idleCalls], [1, 1, 0]);
});

test("a connection taken off the watch is never idle", () => {
  const conn = watch(IDLE_SWEEP_MS);
  unwatchIdle(conn);
  assert.equal(sweepIdle(conn.idleSince + 100 * IDLE_SWEEP_MS), 0);
  assert.equal(conn.idleCalls, 0);
});

test("watching again restarts the quiet period with the new limit", () => {
  const conn = watch(IDLE_SWEEP_MS);
  const t0 = sweepBase(conn);
  conn.idleLimitMs = 5 * IDLE_SWEEP_MS;
  watchIdle(conn);
  assert.equal(sweepIdle(t0 + 2 * IDLE_SWEEP_MS), 0);
  assert.equal(conn.idleCalls, 0);
});
