import type { OfflineMessage, OfflineStore } from "../../core/storage/types.js";
import { UnknownAccountError } from "../errors.js";
import { type PostgresDatabase, sql } from "./database.js";

const COUNT = sql("offline.count", "SELECT count(*) AS n FROM offline_messages WHERE username = $1");
const LOCK_ACCOUNT = sql("offline.lock-account", "SELECT 1 FROM accounts WHERE username = $1 FOR UPDATE");
// Runs after the lock, in a statement of its own: its snapshot then includes every push
// that committed while this one waited for the lock.
const INSERT_UNDER_QUOTA = sql(
  "offline.insert-under-quota",
  `INSERT INTO offline_messages (username, stanza, stored_at)
   SELECT $1, $2, $3 WHERE (SELECT count(*) FROM offline_messages WHERE username = $1) < $4::double precision`,
);
const LIST = sql(
  "offline.list",
  "SELECT id, stanza, stored_at FROM offline_messages WHERE username = $1 ORDER BY id",
);
// Scoped by account so one user's delivery can never remove another user's messages.
const DELETE_SOME = sql(
  "offline.delete-some",
  "DELETE FROM offline_messages WHERE username = $1 AND id = ANY ($2::bigint[])",
);
const DELETE_ALL = sql("offline.delete-all", "DELETE FROM offline_messages WHERE username = $1");

export class PostgresOfflineStore implements OfflineStore {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly now: () => number,
  ) {}

  async push(username: string, stanza: string, quota: number): Promise<boolean> {
    if (Number.isNaN(quota)) throw new RangeError("quota must be a number");
    return this.db.transaction(async (tx) => {
      // The account row's lock orders pushes for one account, also across processes, so the
      // count and the insert cannot be overtaken by another push.
      if ((await tx.query(LOCK_ACCOUNT, [username])).length === 0) throw new UnknownAccountError(username);
      return (await tx.execute(INSERT_UNDER_QUOTA, [username, stanza, this.now(), quota])) > 0;
    });
  }

  async list(username: string): Promise<OfflineMessage[]> {
    const rows = await this.db.query<{ id: number; stanza: string; stored_at: number }>(LIST, [username]);
    return rows.map((row) => ({ id: row.id, stanza: row.stanza, storedAt: row.stored_at }));
  }

  async count(username: string): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(COUNT, [username]);
    return row!.n;
  }

  async remove(username: string, ids?: number[]): Promise<void> {
    if (ids === undefined) await this.db.execute(DELETE_ALL, [username]);
    else if (ids.length > 0) await this.db.execute(DELETE_SOME, [username, ids]);
  }
}
