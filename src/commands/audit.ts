/** Audit records of changes made by admin commands (the log itself: src/core/audit.ts). */
import { recordAudit } from "../core/audit.js";
import type { CommandContext } from "../core/commands.js";

export { AUDIT_ARCHIVE, type AuditData, recordAudit } from "../core/audit.js";

/** Records a change made by a command, as its actor. */
export function auditCommand(
  ctx: CommandContext,
  kind: string,
  subject: string,
  change: { before?: unknown; after?: unknown } = {},
): Promise<void> {
  return recordAudit(ctx.storage, ctx.clock, kind, { actor: ctx.actor ?? "unknown", subject, ...change });
}
