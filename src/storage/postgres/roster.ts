import type { PendingSubscription, RosterItem, RosterStore } from "../../core/storage/types.js";
import { UnknownAccountError } from "../errors.js";
import { type PostgresDatabase, sql } from "./database.js";
import { forAccount } from "./errors.js";

interface ItemRow {
  jid: string;
  name: string | null;
  subscription: RosterItem["subscription"];
  ask: boolean;
  approved: boolean;
  groups: string[];
}

const ITEM_COLUMNS = "jid, name, subscription, ask, approved, groups";

// The version and the items from one snapshot: one statement. An account without items
// gives one row of NULL item columns; an unknown account gives none.
const GET = sql(
  "roster.get",
  `SELECT a.roster_version, i.jid, i.name, i.subscription, i.ask, i.approved, i.groups
   FROM accounts a LEFT JOIN roster_items i ON i.username = a.username
   WHERE a.username = $1 ORDER BY i.jid`,
);
const GET_ITEM = sql(
  "roster.get-item",
  `SELECT ${ITEM_COLUMNS} FROM roster_items WHERE username = $1 AND jid = $2`,
);
// Versions come from one server-wide sequence, so an account deleted and re-created under
// the same name never repeats a version a client may have cached (RFC 6121 §2.6: an
// unchanged version means an unchanged roster). Updating the account row first locks it,
// so concurrent changes to one roster are ordered and their versions increase in that
// order; the item is written only when the account exists.
const SET_ITEM = sql(
  "roster.set-item",
  `WITH version AS (
     UPDATE accounts SET roster_version = nextval('roster_versions')
     WHERE username = $1 RETURNING roster_version
   ), item AS (
     INSERT INTO roster_items (username, jid, name, subscription, ask, approved, groups)
     SELECT $1, $2, $3, $4, $5, $6, $7 FROM version
     ON CONFLICT (username, jid) DO UPDATE SET name = excluded.name, subscription = excluded.subscription,
       ask = excluded.ask, approved = excluded.approved, groups = excluded.groups
   )
   SELECT roster_version FROM version`,
);
const LOCK_ACCOUNT = sql(
  "roster.lock-account",
  "SELECT roster_version FROM accounts WHERE username = $1 FOR UPDATE",
);
const DELETE_ITEM = sql("roster.delete-item", "DELETE FROM roster_items WHERE username = $1 AND jid = $2");
const BUMP = sql(
  "roster.bump",
  "UPDATE accounts SET roster_version = nextval('roster_versions') WHERE username = $1 RETURNING roster_version",
);
const GET_PENDING = sql(
  "roster.get-pending",
  "SELECT from_jid, stanza FROM pending_subscriptions WHERE username = $1 ORDER BY id",
);
const UPSERT_PENDING = sql(
  "roster.upsert-pending",
  `INSERT INTO pending_subscriptions (username, from_jid, stanza) VALUES ($1, $2, $3)
   ON CONFLICT (username, from_jid) DO UPDATE SET stanza = excluded.stanza`,
);
const DELETE_PENDING = sql(
  "roster.delete-pending",
  "DELETE FROM pending_subscriptions WHERE username = $1 AND from_jid = $2",
);

export class PostgresRosterStore implements RosterStore {
  constructor(private readonly db: PostgresDatabase) {}

  async get(username: string): Promise<{ version: number; items: RosterItem[] }> {
    const rows = await this.db.query<ItemRow & { roster_version: number }>(GET, [username]);
    return {
      version: rows[0]?.roster_version ?? 0,
      items: rows.filter((r) => r.jid !== null).map(toItem),
    };
  }

  async getItem(username: string, contact: string): Promise<RosterItem | undefined> {
    const [row] = await this.db.query<ItemRow>(GET_ITEM, [username, contact]);
    return row && toItem(row);
  }

  async setItem(username: string, item: RosterItem): Promise<number> {
    const [row] = await this.db.query<{ roster_version: number }>(SET_ITEM, [
      username,
      item.jid,
      item.name ?? null,
      item.subscription,
      item.ask,
      item.approved,
      // A repeated group name is dropped, the first place kept.
      [...new Set(item.groups)],
    ]);
    if (!row) throw new UnknownAccountError(username);
    return row.roster_version;
  }

  async removeItem(username: string, contact: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      // Account first, then the item: the same lock order as setItem, so the two cannot deadlock.
      const [account] = await tx.query<{ roster_version: number }>(LOCK_ACCOUNT, [username]);
      if (!account) return 0;
      if ((await tx.execute(DELETE_ITEM, [username, contact])) === 0) return account.roster_version;
      const [bumped] = await tx.query<{ roster_version: number }>(BUMP, [username]);
      return bumped!.roster_version;
    });
  }

  async getPending(username: string): Promise<PendingSubscription[]> {
    const rows = await this.db.query<{ from_jid: string; stanza: string }>(GET_PENDING, [username]);
    return rows.map((row) => ({ from: row.from_jid, stanza: row.stanza }));
  }

  async addPending(username: string, pending: PendingSubscription): Promise<void> {
    await forAccount(username, () =>
      this.db.execute(UPSERT_PENDING, [username, pending.from, pending.stanza]),
    );
  }

  async removePending(username: string, from: string): Promise<void> {
    await this.db.execute(DELETE_PENDING, [username, from]);
  }
}

function toItem(row: ItemRow): RosterItem {
  const item: RosterItem = {
    jid: row.jid,
    subscription: row.subscription,
    ask: row.ask,
    approved: row.approved,
    groups: row.groups,
  };
  if (row.name !== null) item.name = row.name;
  return item;
}
