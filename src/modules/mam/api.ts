/** The message archive's API for other modules and tests (published as ctx.api("mam")). */
export interface MamApi {
  /** Removes the messages older than `archive.retentionDays` now (the scheduled cleanup's work); returns how many. */
  pruneExpired(): Promise<number>;
}
