/** A saved policy change, read back from the audit log (kind "policy.set", with before and after). */
import { CommandError } from "../core/commands.js";
import type { Storage } from "../core/storage/types.js";
import { type AccessPolicy, AUDIT_ARCHIVE, type AuditRecord, DEFAULT_POLICY } from "../licensing/index.js";
import type { PolicyChange } from "./audience.js";

/** The policy change recorded under `auditId`, or the most recent one when absent. */
export async function policyChangeFromAudit(storage: Storage, auditId?: number): Promise<PolicyChange> {
  const audit = storage.archive<AuditRecord>(AUDIT_ARCHIVE);
  const [entry] =
    auditId === undefined
      ? await audit.query({ kind: "policy.set", newestFirst: true, limit: 1 })
      : await audit.query({ afterId: auditId - 1, limit: 1 });
  if (!entry || (auditId !== undefined && entry.id !== auditId)) {
    throw new CommandError(
      auditId === undefined ? "the policy has never been changed" : `no audit record ${auditId}`,
      404,
    );
  }
  if (entry.kind !== "policy.set")
    throw new CommandError(`audit record ${entry.id} is not a policy change`, 400);
  return {
    before: (entry.data.before as AccessPolicy | undefined) ?? DEFAULT_POLICY,
    after: entry.data.after as AccessPolicy,
    auditId: entry.id,
    at: entry.at,
  };
}
