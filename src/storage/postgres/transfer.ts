import type pg from "pg";
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
import type { PostgresDatabase } from "./database.js";

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

/** Each table's rows in the neutral form, in a stable order (pending requests and ids: arrival). */
const SELECT: Record<TransferTable, string> = {
  accounts: `SELECT username, created_at AS "createdAt", disabled, roster_version AS "rosterVersion"
             FROM accounts ORDER BY username`,
  credentials: `SELECT username, hash, salt, iterations, stored_key AS "storedKey", server_key AS "serverKey"
                FROM scram_credentials ORDER BY username, hash`,
  rosterItems: `SELECT username, jid, name, subscription, ask, approved, groups
                FROM roster_items ORDER BY username, jid`,
  pendingSubscriptions: `SELECT username, from_jid AS "from", stanza FROM pending_subscriptions ORDER BY id`,
  offlineMessages: `SELECT id, username, stanza, stored_at AS "storedAt" FROM offline_messages ORDER BY id`,
  keyValues: "SELECT username, store, key, value FROM key_values ORDER BY username, store, key",
  blocklist: "SELECT username, jid FROM blocklist ORDER BY username, jid",
  documents: "SELECT store, key, value::text AS value FROM documents ORDER BY store, key",
  archive: "SELECT id, store, at, kind, data::text AS data FROM archive ORDER BY id",
  accountMessages: messagesSelect("account_messages"),
  roomMessages: messagesSelect("room_messages"),
};

function messagesSelect(table: string): string {
  return `SELECT store, owner, id, peer, peer_resource AS "peerResource", at, direction, stanza, text
          FROM ${table} ORDER BY seq`;
}

/** Messages in the order given, so the new seq values keep the archive order. */
function messagesInsert(table: string): { text: string; columns: (rows: ArchivedMessageRow[]) => unknown[] } {
  return {
    text: `INSERT INTO ${table} (store, owner, id, peer, peer_resource, at, direction, stanza, text, folded)
           SELECT s, o, i, p, r, a, d, st, t, f
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                       $8::text[], $9::text[], $10::text[]) WITH ORDINALITY AS x (s, o, i, p, r, a, d, st, t, f, n)
           ORDER BY n`,
    columns: (rows) => [
      rows.map((r) => r.store),
      rows.map((r) => r.owner),
      rows.map((r) => r.id),
      rows.map((r) => r.peer),
      rows.map((r) => r.peerResource),
      rows.map((r) => r.at),
      rows.map((r) => r.direction),
      rows.map((r) => r.stanza),
      rows.map((r) => r.text),
      rows.map((r) => foldText(r.text)),
    ],
  };
}

/** One multi-row INSERT per batch: the columns go in as arrays and come out of unnest(). */
const INSERT: { [T in TransferTable]: { text: string; columns: (rows: TransferRows[T][]) => unknown[] } } = {
  accounts: {
    text: `INSERT INTO accounts (username, created_at, disabled, roster_version)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::boolean[], $4::bigint[])`,
    columns: (rows) => [
      rows.map((r) => r.username),
      rows.map((r) => r.createdAt),
      rows.map((r) => r.disabled),
      rows.map((r) => r.rosterVersion),
    ],
  },
  credentials: {
    text: `INSERT INTO scram_credentials (username, hash, salt, iterations, stored_key, server_key)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::integer[], $5::bytea[], $6::bytea[])`,
    columns: (rows) => [
      rows.map((r) => r.username),
      rows.map((r) => r.hash),
      rows.map((r) => r.salt),
      rows.map((r) => r.iterations),
      rows.map((r) => r.storedKey),
      rows.map((r) => r.serverKey),
    ],
  },
  // Each item's groups travel as a JSON array: unnest() would flatten an array of arrays.
  rosterItems: {
    text: `INSERT INTO roster_items (username, jid, name, subscription, ask, approved, groups)
           SELECT u, j, n, s, a, p, ARRAY(SELECT json_array_elements_text(g::json))
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::boolean[], $7::text[])
             AS t (u, j, n, s, a, p, g)`,
    columns: (rows) => [
      rows.map((r) => r.username),
      rows.map((r) => r.jid),
      rows.map((r) => r.name),
      rows.map((r) => r.subscription),
      rows.map((r) => r.ask),
      rows.map((r) => r.approved),
      rows.map((r) => JSON.stringify(r.groups)),
    ],
  },
  // In the order given, so the new ids keep the order of arrival.
  pendingSubscriptions: {
    text: `INSERT INTO pending_subscriptions (username, from_jid, stanza)
           SELECT u, f, s FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t (u, f, s, n)
           ORDER BY n`,
    columns: (rows) => [rows.map((r) => r.username), rows.map((r) => r.from), rows.map((r) => r.stanza)],
  },
  offlineMessages: {
    text: `INSERT INTO offline_messages (id, username, stanza, stored_at)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])`,
    columns: (rows) => [
      rows.map((r) => r.id),
      rows.map((r) => r.username),
      rows.map((r) => r.stanza),
      rows.map((r) => r.storedAt),
    ],
  },
  keyValues: {
    text: `INSERT INTO key_values (username, store, key, value)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])`,
    columns: (rows) => [
      rows.map((r) => r.username),
      rows.map((r) => r.store),
      rows.map((r) => r.key),
      rows.map((r) => r.value),
    ],
  },
  blocklist: {
    text: "INSERT INTO blocklist (username, jid) SELECT * FROM unnest($1::text[], $2::text[])",
    columns: (rows) => [rows.map((r) => r.username), rows.map((r) => r.jid)],
  },
  documents: {
    text: `INSERT INTO documents (store, key, value)
           SELECT s, k, v::json FROM unnest($1::text[], $2::text[], $3::text[]) AS t (s, k, v)`,
    columns: (rows) => [rows.map((r) => r.store), rows.map((r) => r.key), rows.map((r) => r.value)],
  },
  archive: {
    text: `INSERT INTO archive (id, store, at, kind, data)
           SELECT i, s, a, k, d::json
           FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[]) AS t (i, s, a, k, d)`,
    columns: (rows) => [
      rows.map((r) => r.id),
      rows.map((r) => r.store),
      rows.map((r) => r.at),
      rows.map((r) => r.kind),
      rows.map((r) => r.data),
    ],
  },
  accountMessages: messagesInsert("account_messages"),
  roomMessages: messagesInsert("room_messages"),
};

/** The last value a sequence gave (0: none yet), and for identity columns at least the largest id. */
const COUNTERS = `
  SELECT
    greatest(coalesce(pg_sequence_last_value('roster_versions'), 0),
             (SELECT coalesce(max(roster_version), 0) FROM accounts)) AS "rosterVersion",
    greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('offline_messages', 'id')::regclass), 0),
             (SELECT coalesce(max(id), 0) FROM offline_messages)) AS "offlineMessageId",
    greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('archive', 'id')::regclass), 0),
             (SELECT coalesce(max(id), 0) FROM archive)) AS "archiveId"`;

async function counts(client: pg.PoolClient): Promise<TransferCounts> {
  const result = emptyCounts();
  for (const table of Object.keys(TABLE_NAME) as TransferTable[]) {
    const { rows } = await client.query<{ n: number }>(`SELECT count(*) AS n FROM ${TABLE_NAME[table]}`);
    result.tables[table] = rows[0]!.n;
  }
  for (const table of STORE_TABLES) {
    const { rows } = await client.query<{ store: string; n: number }>(
      `SELECT store, count(*) AS n FROM ${TABLE_NAME[table]} GROUP BY store`,
    );
    for (const { store, n } of rows) result.stores[`${table}:${store}`] = n;
  }
  return result;
}

async function counters(client: pg.PoolClient): Promise<TransferCounters> {
  return (await client.query<TransferCounters>(COUNTERS)).rows[0]!;
}

async function* batches<T extends TransferTable>(
  client: pg.PoolClient,
  table: T,
): AsyncGenerator<TransferRows[T][]> {
  await client.query(`DECLARE transfer_rows NO SCROLL CURSOR FOR ${SELECT[table]}`);
  try {
    for (;;) {
      const { rows } = await client.query<TransferRows[T]>(`FETCH ${TRANSFER_BATCH} FROM transfer_rows`);
      if (rows.length === 0) return;
      yield rows;
    }
  } finally {
    await client.query("CLOSE transfer_rows");
  }
}

class PostgresTransferWriter implements TransferWriter {
  constructor(private readonly client: pg.PoolClient) {}

  counts(): Promise<TransferCounts> {
    return counts(this.client);
  }

  async clear(): Promise<void> {
    // Sequences are kept: a version or id given before the copy is never given again.
    await this.client.query(`TRUNCATE ${Object.values(TABLE_NAME).join(", ")}`);
  }

  async insert<T extends TransferTable>(table: T, rows: TransferRows[T][]): Promise<void> {
    if (rows.length === 0) return;
    const insert = INSERT[table] as { text: string; columns: (rows: TransferRows[T][]) => unknown[] };
    await this.client.query({
      name: `transfer.insert.${table}`,
      text: insert.text,
      values: insert.columns(rows),
    });
  }

  async raiseCounters(c: TransferCounters): Promise<void> {
    await this.client.query(
      `SELECT setval('roster_versions', $1) WHERE $1 > coalesce(pg_sequence_last_value('roster_versions'), 0)`,
      [c.rosterVersion],
    );
    for (const [table, value] of [
      ["offline_messages", c.offlineMessageId],
      ["archive", c.archiveId],
    ] as const) {
      await this.client.query(
        `SELECT setval(pg_get_serial_sequence($1, 'id'), $2)
         WHERE $2 > coalesce(pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass), 0)`,
        [table, value],
      );
    }
  }

  counters(): Promise<TransferCounters> {
    return counters(this.client);
  }
}

/** Copying in and out of a PostgreSQL database (on a connection of an open PostgresStorage's pool). */
export class PostgresTransfer implements StorageTransfer {
  constructor(private readonly db: PostgresDatabase) {}

  read<R>(fn: (reader: TransferReader) => Promise<R>): Promise<R> {
    return this.db.withConnection(async (client) => {
      // REPEATABLE READ: every table from the snapshot taken at the first query.
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const reader: TransferReader = {
        counts: () => counts(client),
        counters: () => counters(client),
        rows: <T extends TransferTable>(table: T) => batches(client, table),
      };
      const result = await fn(reader);
      await client.query("COMMIT");
      return result;
    });
  }

  write<R>(fn: (writer: TransferWriter) => Promise<R>): Promise<R> {
    return this.db.withConnection(async (client) => {
      await client.query("BEGIN");
      try {
        // Other writers (a server started too early, a CLI) wait until the copy is committed;
        // readers are not held up.
        await client.query(`LOCK TABLE ${Object.values(TABLE_NAME).join(", ")} IN EXCLUSIVE MODE`);
        const result = await fn(new PostgresTransferWriter(client));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      }
    });
  }
}
