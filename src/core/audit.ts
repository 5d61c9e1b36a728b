/**
 * The audit log: `storage.archive("audit")`, one record per change made by an admin face
 * (CLI, API, console) — its kind ("licence.grant", "notice.send"…), who made it ("cli:root",
 * "api:deploy-bot", "console:alice"), what it was about and, where it helps, the values
 * before and after. Commands, the licensing registry and the admin store write their
 * records the same way; `audit list` and the console's audit page read them all.
 */
import type { Clock } from "./clock.js";
import type { Storage } from "./storage/types.js";

export const AUDIT_ARCHIVE = "audit";

export interface AuditData {
  actor: string;
  /** What was changed, e.g. "account:alice", "application:apl_…", "notice:ntc_…". */
  subject: string;
  before?: unknown;
  after?: unknown;
}

export async function recordAudit(
  storage: Storage,
  clock: Clock,
  kind: string,
  data: AuditData,
): Promise<void> {
  await storage.archive<AuditData>(AUDIT_ARCHIVE).append({ at: clock.now(), kind, data });
}
