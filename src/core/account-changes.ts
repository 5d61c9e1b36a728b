/**
 * Account changes made by admin commands reach every running server through storage: the
 * command (CLI, HTTP API or console, in whatever process) appends a record, and each server
 * polls for new records (module account-changes) and applies them — closes the account's
 * sessions, and for a deletion tells the modules (`account/deleted`), which drop what they
 * keep in memory about the account.
 */
import type { Clock } from "./clock.js";
import type { ArchiveStore, Storage } from "./storage/types.js";

export const ACCOUNT_CHANGES = "account-changes";

export type AccountChangeKind = "deleted" | "disabled";

export interface AccountChange {
  username: string;
  /** The text the closed sessions get with their stream error. */
  reason: string;
}

export function accountChanges(storage: Storage): ArchiveStore<AccountChange> {
  return storage.archive<AccountChange>(ACCOUNT_CHANGES);
}

/** Records a change for running servers to apply (within their polling interval). */
export function recordAccountChange(
  storage: Storage,
  clock: Clock,
  kind: AccountChangeKind,
  change: AccountChange,
): Promise<number> {
  return accountChanges(storage).append({ at: clock.now(), kind, data: change });
}
