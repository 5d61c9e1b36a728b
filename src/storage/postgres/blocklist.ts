import type { BlocklistStore } from "../../core/storage/types.js";
import { UnknownAccountError } from "../errors.js";
import { type PostgresDatabase, sql } from "./database.js";
import { forAccount } from "./errors.js";

const LIST = sql("blocklist.list", "SELECT jid FROM blocklist WHERE username = $1 ORDER BY jid");
const EXISTS = sql("blocklist.account-exists", "SELECT 1 FROM accounts WHERE username = $1");
const ADD = sql(
  "blocklist.add",
  `INSERT INTO blocklist (username, jid) SELECT $1, jid FROM unnest($2::text[]) AS jid
   ON CONFLICT (username, jid) DO NOTHING`,
);
const REMOVE_SOME = sql(
  "blocklist.remove-some",
  "DELETE FROM blocklist WHERE username = $1 AND jid = ANY ($2::text[])",
);
const REMOVE_ALL = sql("blocklist.remove-all", "DELETE FROM blocklist WHERE username = $1");

export class PostgresBlocklistStore implements BlocklistStore {
  constructor(private readonly db: PostgresDatabase) {}

  async list(username: string): Promise<string[]> {
    return (await this.db.query<{ jid: string }>(LIST, [username])).map((r) => r.jid);
  }

  async add(username: string, jids: string[]): Promise<void> {
    if (jids.length === 0) {
      // Nothing to insert, so no foreign key to check: the account is checked here instead.
      if ((await this.db.query(EXISTS, [username])).length === 0) throw new UnknownAccountError(username);
      return;
    }
    await forAccount(username, () => this.db.execute(ADD, [username, jids]));
  }

  /** Removes the given JIDs, or the whole list when jids is omitted (XEP-0191 unblock-all). */
  async remove(username: string, jids?: string[]): Promise<void> {
    if (jids === undefined) await this.db.execute(REMOVE_ALL, [username]);
    else if (jids.length > 0) await this.db.execute(REMOVE_SOME, [username, jids]);
  }
}
