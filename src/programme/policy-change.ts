/** A saved policy change, read back from the audit log (kind "policy.set", with before and after). */

import type { Storage } from "../core/storage/types.js";
import { type AccessPolicy, AUDIT_ARCHIVE, type AuditRecord, DEFAULT_POLICY } from "../licensing/index.js";
import type { PolicyChange } from "./audience.js";
import { ProgrammeError } from "./errors.js";

/** The policy change recorded under `auditId`, or the most recent one when absent. */
export async function policyChangeFromAudit(storage: Storage, auditId?: number): Promise<PolicyChange> {
  const audit = storage.archive<AuditRecord>(AUDIT_ARCHIVE);
  const [entry] =
    auditId === undefined
      ? await audit.query({ kind: "policy.set", newestFirst: true, limit: 1 })
      : await audit.query({ afterId: auditId - 1, limit: 1 });
  if (!entry || (auditId !== undefined && entry.id !== auditId)) {
    throw new ProgrammeError(
      auditId === undefined ? "the policy has never been changed" : `no audit record ${auditId}`,
      "not-found",
    );
  }
  if (entry.kind !== "policy.set")
    throw new ProgrammeError(`audit record ${entry.id} is not a policy change`, "invalid");
  return {
    before: (entry.data.before as AccessPolicy | undefined) ?? DEFAULT_POLICY,
    after: entry.data.after as AccessPolicy,
    auditId: entry.id,
    at: entry.at,
  };
}
