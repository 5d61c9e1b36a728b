import type Database from "better-sqlite3";
import { UnknownAccountError } from "./errors.js";

/**
 * Rejects writes for accounts that do not exist, with a clearer error than the foreign key
 * failure that would otherwise follow (which stays as the safety net).
 */
export class AccountGuard {
  readonly #exists: Database.Statement<[string], number>;

  constructor(db: Database.Database) {
    this.#exists = db.prepare<[string], number>("SELECT 1 FROM accounts WHERE username = ?").pluck();
  }

  exists(username: string): boolean {
    return this.#exists.get(username) !== undefined;
  }

  require(username: string): void {
    if (!this.exists(username)) throw new UnknownAccountError(username);
  }
}
