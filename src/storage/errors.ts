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

/** The storage could not be reached or opened (a database server that is down, a wrong URL). */
export class StorageUnavailableError extends Error {
  override readonly name = "StorageUnavailableError";
}
