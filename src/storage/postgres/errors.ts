import { UnknownAccountError } from "../errors.js";
import { errorCode } from "./database.js";

/** SQLSTATE foreign_key_violation: in this schema, always the reference to the account. */
const FOREIGN_KEY_VIOLATION = "23503";

/** Reports a write refused by the account foreign key as UnknownAccountError. */
export async function forAccount<T>(username: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (errorCode(error) === FOREIGN_KEY_VIOLATION) throw new UnknownAccountError(username);
    throw error;
  }
}
