import type Database from "better-sqlite3";
import type { BlocklistStore } from "../../core/storage/types.js";
import type { AccountGuard } from "./account-guard.js";

export class SqliteBlocklistStore implements BlocklistStore {
  readonly #select: Database.Statement<[string], string>;
  readonly #deleteAll: Database.Statement<[string], unknown>;

  readonly #add: (username: string, jids: string[]) => void;
  readonly #removeMany: (username: string, jids: string[]) => void;

  constructor(db: Database.Database, guard: AccountGuard) {
    this.#select = db
      .prepare<[string], string>("SELECT jid FROM blocklist WHERE username = ? ORDER BY jid")
      .pluck();
    const insert = db.prepare<[string, string]>(
      "INSERT INTO blocklist (username, jid) VALUES (?, ?) ON CONFLICT (username, jid) DO NOTHING",
    );
    const deleteOne = db.prepare<[string, string]>("DELETE FROM blocklist WHERE username = ? AND jid = ?");
    this.#deleteAll = db.prepare("DELETE FROM blocklist WHERE username = ?");

    const add = db.transaction((username: string, jids: string[]) => {
      guard.require(username);
      for (const jid of jids) insert.run(username, jid);
    });
    this.#add = (username, jids) => add.immediate(username, jids);

    const removeMany = db.transaction((username: string, jids: string[]) => {
      for (const jid of jids) deleteOne.run(username, jid);
    });
    this.#removeMany = (username, jids) => removeMany.immediate(username, jids);
  }

  async list(username: string): Promise<string[]> {
    return this.#select.all(username);
  }

  async add(username: string, jids: string[]): Promise<void> {
    this.#add(username, jids);
  }

  /** Removes the given JIDs, or the whole list when jids is omitted (XEP-0191 unblock-all). */
  async remove(username: string, jids?: string[]): Promise<void> {
    if (jids === undefined) this.#deleteAll.run(username);
    else this.#removeMany(username, jids);
  }
}
