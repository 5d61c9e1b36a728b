/**
 * The message archive's section of the configuration (`archive:`): how long messages are
 * kept, the default archiving preference of an account that set none, and page sizes.
 * SWITCHBOARD_ARCHIVE_RETENTION_DAYS sets `archive.retentionDays`.
 */
import { z } from "zod";
import type { ConfigSection } from "../../core/config.js";
import { DEFAULT_MAX_APPEND_WAIT_SECONDS } from "../../core/storage/append-room.js";

export const ArchiveSchema = z
  .object({
    /** Days a message stays in an account's archive; 0 keeps messages forever. */
    retentionDays: z.number().min(0).default(0),
    /** Minutes between two removals of expired messages (when retentionDays > 0). */
    cleanupIntervalMinutes: z.number().min(1).default(60),
    /** XEP-0441 default for accounts that set no preference: always, never, or roster (contacts only). */
    defaultMode: z.enum(["always", "never", "roster"]).default("always"),
    /** Results per page when a query asks for no size (RSM <max/>). */
    defaultPageSize: z.number().int().min(1).default(50),
    /** Most results one page returns, whatever the query asks. */
    maxPageSize: z.number().int().min(1).default(250),
    /** JIDs per preference list (<always/>, <never/>). */
    maxPreferenceJids: z.number().int().min(0).default(1000),
    /**
     * Longest a message waits for room while its archive's queue of appends is full (the
     * database slower than the traffic); then it goes on without being archived (counted in
     * switchboard_archive_failures_total). Applies to room archives too.
     */
    maxAppendWaitSeconds: z.number().min(0).default(DEFAULT_MAX_APPEND_WAIT_SECONDS),
  })
  .prefault({});

export type ArchiveConfig = z.infer<typeof ArchiveSchema>;

export const archiveConfigSection: ConfigSection = {
  keys: { archive: ArchiveSchema },
  environment(env) {
    const days = env.SWITCHBOARD_ARCHIVE_RETENTION_DAYS;
    return days !== undefined && days !== "" ? { archive: { retentionDays: Number(days) } } : {};
  },
};

declare module "../../core/config.js" {
  interface ConfigSections {
    archive: ArchiveConfig;
  }
}
