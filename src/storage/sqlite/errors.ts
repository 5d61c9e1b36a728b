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

/**
 * Runs a single-statement write whose only foreign key is the account, reporting a missing
 * account as UnknownAccountError instead of a bare constraint failure.
 */
export function forAccount<T>(username: string, write: () => T): T {
  try {
    return write();
  } catch (error) {
    if ((error as { code?: unknown }).code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
      throw new UnknownAccountError(username);
    }
    throw error;
  }
}
