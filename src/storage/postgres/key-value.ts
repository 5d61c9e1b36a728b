import type { KeyValueStore } from "../../core/storage/types.js";
import { type PostgresDatabase, sql } from "./database.js";
import { forAccount } from "./errors.js";

const GET = sql("kv.get", "SELECT value FROM key_values WHERE username = $1 AND store = $2 AND key = $3");
const SET = sql(
  "kv.set",
  `INSERT INTO key_values (username, store, key, value) VALUES ($1, $2, $3, $4)
   ON CONFLICT (username, store, key) DO UPDATE SET value = excluded.value`,
);
const DELETE = sql("kv.delete", "DELETE FROM key_values WHERE username = $1 AND store = $2 AND key = $3");
const KEYS = sql("kv.keys", "SELECT key FROM key_values WHERE username = $1 AND store = $2 ORDER BY key");

/** One feature's namespace over the shared key_values table. */
export class PostgresKeyValueStore implements KeyValueStore {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly store: string,
  ) {}

  async get(username: string, key: string): Promise<string | undefined> {
    const [row] = await this.db.query<{ value: string }>(GET, [username, this.store, key]);
    return row?.value;
  }

  async set(username: string, key: string, value: string): Promise<void> {
    await forAccount(username, () => this.db.execute(SET, [username, this.store, key, value]));
  }

  async delete(username: string, key: string): Promise<void> {
    await this.db.execute(DELETE, [username, this.store, key]);
  }

  async keys(username: string): Promise<string[]> {
    return (await this.db.query<{ key: string }>(KEYS, [username, this.store])).map((r) => r.key);
  }
}
