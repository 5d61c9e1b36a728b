/**
 * A full storage: the disk under the database, or the database's own limit. The backends'
 * drivers report it with their own codes (SQLite's SQLITE_FULL, PostgreSQL's 53100 disk_full,
 * the system's ENOSPC); the core recognises them by those codes, so a write refused for want
 * of space is answered as what it is — resource-constraint, try again later — whatever the
 * backend, and not as an internal error.
 */
import { StanzaError } from "../errors.js";
import { errorCode, hasCause } from "./causes.js";

const FULL_CODES: ReadonlySet<string> = new Set(["SQLITE_FULL", "53100", "ENOSPC"]);

/** Whether an error (or an error it was caused by) says the storage is full. */
export function isStorageFull(err: unknown): boolean {
  return hasCause(err, (e) => FULL_CODES.has(errorCode(e) ?? ""));
}

/** The answer to a stanza whose handling needed a write the full storage refused. */
export function storageFullError(): StanzaError {
  return new StanzaError(
    "resource-constraint",
    "the server cannot store this now (its storage is full); try again later",
  );
}
