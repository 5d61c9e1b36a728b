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

/** Keys whose numbers are instants (epoch milliseconds) in audit records' before/after values. */
const INSTANT_KEY = /^(at|validFrom|validUntil|since|until|expires|[a-z]+At)$/;

/**
 * One value of an audit record as people read it: JSON, with the instants in ISO-8601 UTC
 * rather than epoch milliseconds (`"validUntil", 1830297600000` → `"2028-01-01T00:00:00.000Z"`,
 * and so in nested values such as a policy's stages). "—" for no value.
 */
export function auditValueText(key: string, value: unknown): string {
  if (value === undefined) return "—";
  return JSON.stringify(value, (k: string, v: unknown) =>
    typeof v === "number" && INSTANT_KEY.test(k === "" ? key : k) && Number.isFinite(v)
      ? new Date(v).toISOString()
      : v,
  );
}
