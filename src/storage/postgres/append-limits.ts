/**
 * The bounds of the message archives' batched appends on PostgreSQL (message-appends.ts), apart
 * from the driver so the configuration can take its defaults without loading it.
 */

export interface MessageAppendLimits {
  /** Rows one write (one statement, one transaction) holds at most. */
  batchRows: number;
  /** Bytes of row values one write holds at most (a larger single row is written alone). */
  batchBytes: number;
  /** Rows a store holds, waiting or being written, before appends wait for room (`storage.archiveQueueRows`). */
  queueRows: number;
  /** Bytes those rows hold at most (a larger single row is taken when nothing else waits; `storage.archiveQueueBytes`). */
  queueBytes: number;
  /** Writes of one store running at once: each holds one connection of the pool. */
  inFlight: number;
}

/**
 * Two writes at once let other owners' rows go while one commits (a pool of 10 keeps 6 for
 * the rest with both archives busy); 5,000 rows are five seconds of the archive load that
 * filled a pool before (1,000 rows/s, docs/benchmarks.md), and a few megabytes.
 */
export const DEFAULT_MESSAGE_APPEND_LIMITS: MessageAppendLimits = {
  batchRows: 500,
  batchBytes: 4 * 1024 * 1024,
  queueRows: 5_000,
  queueBytes: 16 * 1024 * 1024,
  inFlight: 2,
};
