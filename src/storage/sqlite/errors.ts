import { UnknownAccountError } from "../errors.js";

export { SchemaTooNewError, UnknownAccountError } from "../errors.js";

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
