import type Database from "better-sqlite3";
import type { PendingSubscription, RosterItem, RosterStore } from "../../core/storage/types.js";
import { forAccount, UnknownAccountError } from "./errors.js";

interface ItemRow {
  jid: string;
  name: string | null;
  subscription: RosterItem["subscription"];
  ask: number;
  approved: number;
}

interface GroupRow {
  jid: string;
  name: string;
}

interface PendingRow {
  from_jid: string;
  stanza: string;
}

type ItemParams = {
  username: string;
  jid: string;
  name: string | null;
  subscription: string;
  ask: number;
  approved: number;
};

export class SqliteRosterStore implements RosterStore {
  /** Gives the account the next version; undefined when there is no such account. Inside a transaction. */
  readonly #bumpVersion: (username: string) => number | undefined;
  readonly #selectVersion: Database.Statement<[string], number>;
  readonly #upsertItem: Database.Statement<[ItemParams], unknown>;
  readonly #deleteGroups: Database.Statement<[string, string], unknown>;
  readonly #insertGroup: Database.Statement<[string, string, string, number], unknown>;
  readonly #selectItems: Database.Statement<[string], ItemRow>;
  readonly #selectGroups: Database.Statement<[string], GroupRow>;
  readonly #selectItem: Database.Statement<[string, string], ItemRow>;
  readonly #selectItemGroups: Database.Statement<[string, string], string>;
  readonly #deleteItem: Database.Statement<[string, string], unknown>;
  readonly #selectPending: Database.Statement<[string], PendingRow>;
  readonly #upsertPending: Database.Statement<[string, string, string], unknown>;
  readonly #deletePending: Database.Statement<[string, string], unknown>;

  readonly #get: (username: string) => { version: number; items: RosterItem[] };
  readonly #getItem: (username: string, contact: string) => RosterItem | undefined;
  readonly #setItem: (username: string, item: RosterItem) => number;
  readonly #removeItem: (username: string, contact: string) => number;

  constructor(db: Database.Database) {
    // Versions come from one server-wide sequence, so an account deleted and re-created
    // under the same name never repeats a version a client may have cached (RFC 6121 §2.6:
    // an unchanged version means an unchanged roster). Bumping first doubles as the
    // existence check and takes the write lock.
    const bumpAccount = db
      .prepare<[string], number>(
        `UPDATE accounts SET roster_version = (SELECT value + 1 FROM roster_version_sequence)
         WHERE username = ? RETURNING roster_version`,
      )
      .pluck();
    const advanceSequence = db.prepare("UPDATE roster_version_sequence SET value = value + 1");
    this.#bumpVersion = (username) => {
      const version = bumpAccount.get(username);
      if (version !== undefined) advanceSequence.run();
      return version;
    };
    this.#selectVersion = db
      .prepare<[string], number>("SELECT roster_version FROM accounts WHERE username = ?")
      .pluck();
    this.#upsertItem = db.prepare(
      `INSERT INTO roster_items (username, jid, name, subscription, ask, approved)
       VALUES (@username, @jid, @name, @subscription, @ask, @approved)
       ON CONFLICT (username, jid) DO UPDATE SET
         name = excluded.name, subscription = excluded.subscription,
         ask = excluded.ask, approved = excluded.approved`,
    );
    this.#deleteGroups = db.prepare("DELETE FROM roster_groups WHERE username = ? AND jid = ?");
    // OR IGNORE drops a repeated group name instead of failing the whole item.
    this.#insertGroup = db.prepare(
      "INSERT OR IGNORE INTO roster_groups (username, jid, name, position) VALUES (?, ?, ?, ?)",
    );
    this.#selectItems = db.prepare(
      "SELECT jid, name, subscription, ask, approved FROM roster_items WHERE username = ? ORDER BY jid",
    );
    this.#selectGroups = db.prepare(
      "SELECT jid, name FROM roster_groups WHERE username = ? ORDER BY jid, position",
    );
    this.#selectItem = db.prepare(
      "SELECT jid, name, subscription, ask, approved FROM roster_items WHERE username = ? AND jid = ?",
    );
    this.#selectItemGroups = db
      .prepare<[string, string], string>(
        "SELECT name FROM roster_groups WHERE username = ? AND jid = ? ORDER BY position",
      )
      .pluck();
    this.#deleteItem = db.prepare("DELETE FROM roster_items WHERE username = ? AND jid = ?");
    this.#selectPending = db.prepare(
      "SELECT from_jid, stanza FROM pending_subscriptions WHERE username = ? ORDER BY rowid",
    );
    this.#upsertPending = db.prepare(
      `INSERT INTO pending_subscriptions (username, from_jid, stanza) VALUES (?, ?, ?)
       ON CONFLICT (username, from_jid) DO UPDATE SET stanza = excluded.stanza`,
    );
    this.#deletePending = db.prepare("DELETE FROM pending_subscriptions WHERE username = ? AND from_jid = ?");

    // Reads run in one transaction so the version matches the items even if another process writes.
    const get = db.transaction((username: string) => {
      const groups = new Map<string, string[]>();
      for (const row of this.#selectGroups.all(username)) {
        const list = groups.get(row.jid);
        if (list) list.push(row.name);
        else groups.set(row.jid, [row.name]);
      }
      const items = this.#selectItems.all(username).map((row) => toItem(row, groups.get(row.jid) ?? []));
      return { version: this.#selectVersion.get(username) ?? 0, items };
    });
    this.#get = (username) => get.deferred(username);

    const getItem = db.transaction((username: string, contact: string) => {
      const row = this.#selectItem.get(username, contact);
      return row && toItem(row, this.#selectItemGroups.all(username, contact));
    });
    this.#getItem = (username, contact) => getItem.deferred(username, contact);

    const setItem = db.transaction((username: string, item: RosterItem) => {
      const version = this.#bumpVersion(username);
      if (version === undefined) throw new UnknownAccountError(username);
      this.#upsertItem.run({
        username,
        jid: item.jid,
        name: item.name ?? null,
        subscription: item.subscription,
        ask: item.ask ? 1 : 0,
        approved: item.approved ? 1 : 0,
      });
      this.#deleteGroups.run(username, item.jid);
      item.groups.forEach((group, position) => {
        this.#insertGroup.run(username, item.jid, group, position);
      });
      return version;
    });
    this.#setItem = (username, item) => setItem.immediate(username, item);

    const removeItem = db.transaction((username: string, contact: string) => {
      if (this.#deleteItem.run(username, contact).changes === 0) {
        return this.#selectVersion.get(username) ?? 0;
      }
      return this.#bumpVersion(username)!;
    });
    this.#removeItem = (username, contact) => removeItem.immediate(username, contact);
  }

  async get(username: string): Promise<{ version: number; items: RosterItem[] }> {
    return this.#get(username);
  }

  async getItem(username: string, contact: string): Promise<RosterItem | undefined> {
    return this.#getItem(username, contact);
  }

  async setItem(username: string, item: RosterItem): Promise<number> {
    return this.#setItem(username, item);
  }

  async removeItem(username: string, contact: string): Promise<number> {
    return this.#removeItem(username, contact);
  }

  async getPending(username: string): Promise<PendingSubscription[]> {
    return this.#selectPending.all(username).map((row) => ({ from: row.from_jid, stanza: row.stanza }));
  }

  async addPending(username: string, pending: PendingSubscription): Promise<void> {
    forAccount(username, () => this.#upsertPending.run(username, pending.from, pending.stanza));
  }

  async removePending(username: string, from: string): Promise<void> {
    this.#deletePending.run(username, from);
  }
}

function toItem(row: ItemRow, groups: string[]): RosterItem {
  const item: RosterItem = {
    jid: row.jid,
    subscription: row.subscription,
    ask: row.ask === 1,
    approved: row.approved === 1,
    groups,
  };
  if (row.name !== null) item.name = row.name;
  return item;
}
