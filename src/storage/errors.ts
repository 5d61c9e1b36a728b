/** Errors every storage backend reports the same way, so callers need not know the backend. */

/** A write was attempted for an account that does not exist (data never outlives its account). */
export class UnknownAccountError extends Error {
  override readonly name = "UnknownAccountError";
  constructor(readonly username: string) {
    super(`no such account: ${username}`);
  }
}

/** The database was migrated by a newer Switchboard; opening it with this one could corrupt it. */
export class SchemaTooNewError extends Error {
  override readonly name = "SchemaTooNewError";
  constructor(
    readonly databaseVersion: number,
    readonly supportedVersion: number,
  ) {
    super(
      `database schema version ${databaseVersion} is newer than this version of Switchboard supports ` +
        `(${supportedVersion}); upgrade Switchboard or open a different database`,
    );
  }
}

/** Defined in the core, which recognises it on the stanza path (see core/storage/unavailable.ts). */
export { StorageUnavailableError } from "../core/storage/unavailable.js";
