import type Database from "better-sqlite3";
import { foldText } from "../fold.js";
import {
  type ArchivedMessageRow,
  emptyCounts,
  STORE_TABLES,
  type StorageTransfer,
  TRANSFER_BATCH,
  type TransferCounters,
  type TransferCounts,
  type TransferReader,
  type TransferRows,
  type TransferTable,
  type TransferWriter,
} from "../transfer/types.js";

/** Each table's rows in the neutral form, in a stable order (pending requests and ids: arrival). */
const SELECT: Record<TransferTable, string> = {
  accounts: `SELECT username, created_at AS createdAt, disabled, roster_version AS rosterVersion
             FROM accounts ORDER BY username`,
  credentials: `SELECT username, hash, salt, iterations, stored_key AS storedKey, server_key AS serverKey
                FROM scram_credentials ORDER BY username, hash`,
  rosterItems: `SELECT i.username, i.jid, i.name, i.subscription, i.ask, i.approved,
                  (SELECT json_group_array(g.name ORDER BY g.position) FROM roster_groups g
                   WHERE g.username = i.username AND g.jid = i.jid) AS groups
                FROM roster_items i ORDER BY i.username, i.jid`,
  pendingSubscriptions: `SELECT username, from_jid AS "from", stanza FROM pending_subscriptions ORDER BY rowid`,
  offlineMessages: `SELECT id, username, stanza, stored_at AS storedAt FROM offline_messages ORDER BY id`,
  keyValues: "SELECT username, store, key, value FROM key_values ORDER BY username, store, key",
  blocklist: "SELECT username, jid FROM blocklist ORDER BY username, jid",
  documents: "SELECT store, key, value FROM documents ORDER BY store, key",
  archive: "SELECT id, store, at, kind, data FROM archive ORDER BY id",
  accountMessages: messagesSelect("account_messages"),
  roomMessages: messagesSelect("room_messages"),
};

function messagesSelect(table: string): string {
  return `SELECT store, owner, id, peer, peer_resource AS peerResource, at, direction, stanza, text
          FROM ${table} ORDER BY seq`;
}

const TABLE_NAME: Record<TransferTable, string> = {
  accounts: "accounts",
  credentials: "scram_credentials",
  rosterItems: "roster_items",
  pendingSubscriptions: "pending_subscriptions",
  offlineMessages: "offline_messages",
  keyValues: "key_values",
  blocklist: "blocklist",
  documents: "documents",
  archive: "archive",
  accountMessages: "account_messages",
  roomMessages: "room_messages",
};

/** SQLite keeps booleans as 0/1 and groups in a table of their own. */
function fromRow<T extends TransferTable>(table: T, row: Record<string, unknown>): TransferRows[T] {
  switch (table) {
    case "accounts":
      return { ...row, disabled: row.disabled === 1 } as TransferRows[T];
    case "rosterItems":
      return {
        ...row,
        ask: row.ask === 1,
        approved: row.approved === 1,
        groups: JSON.parse(row.groups as string) as string[],
      } as TransferRows[T];
    default:
      return row as TransferRows[T];
  }
}

function counts(db: Database.Database): TransferCounts {
  const result = emptyCounts();
  for (const table of Object.keys(TABLE_NAME) as TransferTable[]) {
    result.tables[table] = db.prepare(`SELECT count(*) FROM ${TABLE_NAME[table]}`).pluck().get() as number;
  }
  for (const table of STORE_TABLES) {
    const rows = db.prepare(`SELECT store, count(*) AS n FROM ${TABLE_NAME[table]} GROUP BY store`).all() as {
      store: string;
      n: number;
    }[];
    for (const { store, n } of rows) result.stores[`${table}:${store}`] = n;
  }
  return result;
}

function sequence(db: Database.Database, table: string): number {
  const seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?").pluck().get(table) as
    | number
    | undefined;
  const max = db.prepare(`SELECT coalesce(max(id), 0) FROM ${table}`).pluck().get() as number;
  return Math.max(seq ?? 0, max);
}

function counters(db: Database.Database): TransferCounters {
  const sequenceValue = db.prepare("SELECT value FROM roster_version_sequence").pluck().get() as number;
  const maxVersion = db
    .prepare("SELECT coalesce(max(roster_version), 0) FROM accounts")
    .pluck()
    .get() as number;
  return {
    rosterVersion: Math.max(sequenceValue, maxVersion),
    offlineMessageId: sequence(db, "offline_messages"),
    archiveId: sequence(db, "archive"),
  };
}

class SqliteTransferWriter implements TransferWriter {
  readonly #insert: { [T in TransferTable]: (row: TransferRows[T]) => void };

  constructor(private readonly db: Database.Database) {
    const prepare = (text: string) => db.prepare(text);
    const account = prepare(
      "INSERT INTO accounts (username, created_at, disabled, roster_version) VALUES (?, ?, ?, ?)",
    );
    const credential = prepare(
      `INSERT INTO scram_credentials (username, hash, salt, iterations, stored_key, server_key)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const item = prepare(
      `INSERT INTO roster_items (username, jid, name, subscription, ask, approved) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const group = prepare("INSERT INTO roster_groups (username, jid, name, position) VALUES (?, ?, ?, ?)");
    const pending = prepare(
      "INSERT INTO pending_subscriptions (username, from_jid, stanza) VALUES (?, ?, ?)",
    );
    const offline = prepare(
      "INSERT INTO offline_messages (id, username, stanza, stored_at) VALUES (?, ?, ?, ?)",
    );
    const keyValue = prepare("INSERT INTO key_values (username, store, key, value) VALUES (?, ?, ?, ?)");
    const blocked = prepare("INSERT INTO blocklist (username, jid) VALUES (?, ?)");
    const document = prepare("INSERT INTO documents (store, key, value) VALUES (?, ?, ?)");
    const entry = prepare("INSERT INTO archive (id, store, at, kind, data) VALUES (?, ?, ?, ?, ?)");
    const message = (table: string) => {
      const insert = prepare(
        `INSERT INTO ${table} (store, owner, id, peer, peer_resource, at, direction, stanza, text, folded)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      return (r: ArchivedMessageRow) =>
        insert.run(
          r.store,
          r.owner,
          r.id,
          r.peer,
          r.peerResource,
          r.at,
          r.direction,
          r.stanza,
          r.text,
          foldText(r.text),
        );
    };
    this.#insert = {
      accounts: (r) => account.run(r.username, r.createdAt, r.disabled ? 1 : 0, r.rosterVersion),
      credentials: (r) => credential.run(r.username, r.hash, r.salt, r.iterations, r.storedKey, r.serverKey),
      rosterItems: (r) => {
        item.run(r.username, r.jid, r.name, r.subscription, r.ask ? 1 : 0, r.approved ? 1 : 0);
        r.groups.forEach((name, position) => {
          group.run(r.username, r.jid, name, position);
        });
      },
      pendingSubscriptions: (r) => pending.run(r.username, r.from, r.stanza),
      offlineMessages: (r) => offline.run(r.id, r.username, r.stanza, r.storedAt),
      keyValues: (r) => keyValue.run(r.username, r.store, r.key, r.value),
      blocklist: (r) => blocked.run(r.username, r.jid),
      documents: (r) => document.run(r.store, r.key, r.value),
      archive: (r) => entry.run(r.id, r.store, r.at, r.kind, r.data),
      accountMessages: message("account_messages"),
      roomMessages: message("room_messages"),
    };
  }

  async counts(): Promise<TransferCounts> {
    return counts(this.db);
  }

  async clear(): Promise<void> {
    // Foreign keys cascade from accounts to every table of account data.
    this.db.exec(
      "DELETE FROM accounts; DELETE FROM documents; DELETE FROM archive; DELETE FROM room_messages;",
    );
  }

  async insert<T extends TransferTable>(table: T, rows: TransferRows[T][]): Promise<void> {
    const insert = this.#insert[table] as (row: TransferRows[T]) => void;
    for (const row of rows) insert(row);
  }

  async raiseCounters(c: TransferCounters): Promise<void> {
    this.db.prepare("UPDATE roster_version_sequence SET value = max(value, ?)").run(c.rosterVersion);
    for (const [table, value] of [
      ["offline_messages", c.offlineMessageId],
      ["archive", c.archiveId],
    ] as const) {
      const raised = this.db
        .prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?")
        .run(value, table).changes;
      if (raised === 0)
        this.db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)").run(table, value);
    }
  }

  async counters(): Promise<TransferCounters> {
    return counters(this.db);
  }
}

/** Copying in and out of a SQLite database (on the connection of an open SqliteStorage). */
export class SqliteTransfer implements StorageTransfer {
  constructor(private readonly db: Database.Database) {}

  async read<R>(fn: (reader: TransferReader) => Promise<R>): Promise<R> {
    const db = this.db;
    // A read transaction: WAL gives it one snapshot, whatever other connections write meanwhile.
    db.exec("BEGIN DEFERRED");
    try {
      const reader: TransferReader = {
        counts: async () => counts(db),
        counters: async () => counters(db),
        rows: <T extends TransferTable>(table: T) => batches(db, table),
      };
      return await fn(reader);
    } finally {
      db.exec("COMMIT");
    }
  }

  async write<R>(fn: (writer: TransferWriter) => Promise<R>): Promise<R> {
    // IMMEDIATE: the write lock from the start, so no other process writes in between.
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = await fn(new SqliteTransferWriter(this.db));
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }
}

async function* batches<T extends TransferTable>(
  db: Database.Database,
  table: T,
): AsyncGenerator<TransferRows[T][]> {
  let batch: TransferRows[T][] = [];
  for (const row of db.prepare(SELECT[table]).iterate() as IterableIterator<Record<string, unknown>>) {
    batch.push(fromRow(table, row));
    if (batch.length === TRANSFER_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
