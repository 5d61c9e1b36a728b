/**
 * Waiting for room in a full archive, for a limited time. A message waits while its archive's
 * queue of appends is full (backpressure, `MessageArchiveStore.roomToAppend`); a database that
 * never lets go (a lock held, a server hung without closing its connections) must not hold
 * chat for ever, so past `maxWaitMs` the message goes on without being archived (counted and
 * logged by the caller, as a failed write is).
 */
import type { MessageArchiveStore } from "./types.js";

/** Default of `archive.maxAppendWaitSeconds`. */
export const DEFAULT_MAX_APPEND_WAIT_SECONDS = 10;

/**
 * undefined when the store takes appends now (no promise on the message path); otherwise
 * whether room came within `maxWaitMs` (true) or the wait gave up (false).
 */
export function roomWithin(store: MessageArchiveStore, maxWaitMs: number): Promise<boolean> | undefined {
  const room = store.roomToAppend?.();
  if (!room) return undefined;
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), maxWaitMs);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    // A failed wait lets the append be tried: its own failure is counted where it happens.
    room.then(done, done);
  });
}
