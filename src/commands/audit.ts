/**
 * The audit log: `storage.archive("audit")`, one record per change made by an admin face
 * (CLI, API, console) — its kind ("licence.grant", "notice.send"…), who made it ("cli:root",
 * "api:deploy-bot", "console:alice"), what it was about and, where it helps, the values
 * before and after. The licensing registry and the admin store write their own records the
 * same way; `audit list` and the console's audit page read them all.
 */
import type { Clock } from "../core/clock.js";
import type { CommandContext } from "../core/commands.js";
import type { Storage } from "../core/storage/types.js";

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

/** Records a change made by a command, as its actor. */
export function auditCommand(
  ctx: CommandContext,
  kind: string,
  subject: string,
  change: { before?: unknown; after?: unknown } = {},
): Promise<void> {
  return recordAudit(ctx.storage, ctx.clock, kind, { actor: ctx.actor ?? "unknown", subject, ...change });
}
