/**
 * A storage that cannot be reached: a database server that is down, restarting or refusing
 * connections, or a database locked by another process past its timeout. The backends report
 * it as StorageUnavailableError (with the driver's error as its cause); the core answers a
 * stanza that needed the storage then as a temporary failure — internal-server-error of type
 * wait, with a text — so the client may try again, and the operator's log says what it is.
 */
import { StanzaError } from "../errors.js";
import { errorCode, hasCause } from "./causes.js";

/** The storage could not be reached or opened (a database server that is down, a wrong URL). */
export class StorageUnavailableError extends Error {
  override readonly name = "StorageUnavailableError";
}

/** SQLite's code for a database another process kept locked past the busy timeout. */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set(["SQLITE_BUSY"]);

/** Whether a driver's error code says the storage cannot be reached now (e.g. a lock held). */
export function isUnavailableCode(code: string | undefined): boolean {
  return code !== undefined && UNAVAILABLE_CODES.has(code);
}

/** Whether an error (or an error it was caused by) says the storage cannot be reached now. */
export function isStorageUnavailable(err: unknown): boolean {
  return hasCause(err, (e) => e instanceof StorageUnavailableError || isUnavailableCode(errorCode(e)));
}

/** The answer to a stanza whose handling needed a storage that cannot be reached now. */
export function storageUnavailableError(): StanzaError {
  return new StanzaError(
    "internal-server-error",
    "the server cannot reach its storage now; try again later",
    { type: "wait" },
  );
}
