import type Database from "better-sqlite3";
import type { KeyValueStore } from "../../core/storage/types.js";
import { forAccount } from "./errors.js";

/** The statements shared by every key-value store; each store is a namespace over one table. */
export class SqliteKeyValueTable {
  readonly select: Database.Statement<[string, string, string], string>;
  readonly upsert: Database.Statement<[string, string, string, string], unknown>;
  readonly delete: Database.Statement<[string, string, string], unknown>;
  readonly keys: Database.Statement<[string, string], string>;

  constructor(db: Database.Database) {
    this.select = db
      .prepare<[string, string, string], string>(
        "SELECT value FROM key_values WHERE username = ? AND store = ? AND key = ?",
      )
      .pluck();
    this.upsert = db.prepare(
      `INSERT INTO key_values (username, store, key, value) VALUES (?, ?, ?, ?)
       ON CONFLICT (username, store, key) DO UPDATE SET value = excluded.value`,
    );
    this.delete = db.prepare("DELETE FROM key_values WHERE username = ? AND store = ? AND key = ?");
    this.keys = db
      .prepare<[string, string], string>(
        "SELECT key FROM key_values WHERE username = ? AND store = ? ORDER BY key",
      )
      .pluck();
  }
}

export class SqliteKeyValueStore implements KeyValueStore {
  constructor(
    private readonly table: SqliteKeyValueTable,
    private readonly store: string,
  ) {}

  async get(username: string, key: string): Promise<string | undefined> {
    return this.table.select.get(username, this.store, key);
  }

  async set(username: string, key: string, value: string): Promise<void> {
    forAccount(username, () => this.table.upsert.run(username, this.store, key, value));
  }

  async delete(username: string, key: string): Promise<void> {
    this.table.delete.run(username, this.store, key);
  }

  async keys(username: string): Promise<string[]> {
    return this.table.keys.all(username, this.store);
  }
}
