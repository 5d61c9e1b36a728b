import type {
  AccountStore,
  AppendQueueFigures,
  ArchiveStore,
  BlocklistStore,
  DocumentStore,
  KeyValueStore,
  MessageArchiveOptions,
  MessageArchiveStore,
  OfflineStore,
  RosterStore,
  Storage,
} from "../../core/storage/types.js";
import type { MigrationListener } from "../migration-listener.js";
import type { StorageTransfer } from "../transfer/types.js";
import { PostgresAccountStore } from "./accounts.js";
import { DEFAULT_MESSAGE_APPEND_LIMITS, type MessageAppendLimits } from "./append-limits.js";
import { PostgresArchiveStore } from "./archive.js";
import { PostgresBlocklistStore } from "./blocklist.js";
import { type PostgresConnectionOptions, PostgresDatabase } from "./database.js";
import { PostgresDocumentStore } from "./documents.js";
import { PostgresKeyValueStore } from "./key-value.js";
import { PostgresMessageArchiveStore } from "./messages.js";
import { migratePostgres } from "./migrate.js";
import type { PostgresMigration } from "./migrations.js";
import { PostgresOfflineStore } from "./offline.js";
import { PostgresRosterStore } from "./roster.js";
import { PostgresTransfer } from "./transfer.js";

export interface PostgresStorageOptions extends PostgresConnectionOptions {
  /** Time source for created_at / stored_at; tests inject a fixed clock. */
  now?: () => number;
  /** Overrides the schema history; only tests need this. */
  migrations?: readonly PostgresMigration[];
  /** Told of each schema migration as it starts (the server logs them). */
  onMigration?: MigrationListener;
  /** Bounds of the message archives' batched appends (message-appends.ts): the queue's from the configuration, tests make them small. */
  messageAppends?: Partial<MessageAppendLimits>;
}

/**
 * The network backend: a pool of connections to one PostgreSQL database, every statement
 * named (prepared once per connection), writes that read first in transactions that lock
 * what they depend on, so several servers and the CLI can share the database.
 */
export class PostgresStorage implements Storage {
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly blocklist: BlocklistStore;
  readonly #db: PostgresDatabase;
  readonly #keyValueStores = new Map<string, KeyValueStore>();
  readonly #documentStores = new Map<string, DocumentStore<unknown>>();
  readonly #archiveStores = new Map<string, ArchiveStore<unknown>>();
  readonly #messageStores = new Map<string, PostgresMessageArchiveStore>();
  readonly #appendLimits: MessageAppendLimits;

  constructor(
    db: PostgresDatabase,
    now: () => number = Date.now,
    appendLimits: Partial<MessageAppendLimits> = {},
  ) {
    this.#db = db;
    this.#appendLimits = { ...DEFAULT_MESSAGE_APPEND_LIMITS, ...appendLimits };
    this.accounts = new PostgresAccountStore(db, now);
    this.roster = new PostgresRosterStore(db);
    this.offline = new PostgresOfflineStore(db, now);
    this.blocklist = new PostgresBlocklistStore(db);
  }

  /** The connection pool (tests look at its connections). */
  get database(): PostgresDatabase {
    return this.#db;
  }

  /** Copying the whole database in or out (`switchboard storage migrate`). */
  transfer(): StorageTransfer {
    return new PostgresTransfer(this.#db);
  }

  keyValue(store: string): KeyValueStore {
    if (store === "") throw new RangeError("key-value store name must not be empty");
    let kv = this.#keyValueStores.get(store);
    if (!kv) {
      kv = new PostgresKeyValueStore(this.#db, store);
      this.#keyValueStores.set(store, kv);
    }
    return kv;
  }

  documents<T = unknown>(store: string): DocumentStore<T> {
    if (store === "") throw new RangeError("document store name must not be empty");
    let d = this.#documentStores.get(store);
    if (!d) {
      d = new PostgresDocumentStore<unknown>(this.#db, store);
      this.#documentStores.set(store, d);
    }
    return d as DocumentStore<T>;
  }

  archive<T = unknown>(store: string): ArchiveStore<T> {
    if (store === "") throw new RangeError("archive name must not be empty");
    let a = this.#archiveStores.get(store);
    if (!a) {
      a = new PostgresArchiveStore<unknown>(this.#db, store);
      this.#archiveStores.set(store, a);
    }
    return a as ArchiveStore<T>;
  }

  messages(store: string, opts: MessageArchiveOptions): MessageArchiveStore {
    if (store === "") throw new RangeError("message store name must not be empty");
    const table = opts.ownedByAccounts ? "account_messages" : "room_messages";
    const key = `${table}:${store}`;
    let m = this.#messageStores.get(key);
    if (!m) {
      m = new PostgresMessageArchiveStore(this.#db, store, table, this.#appendLimits);
      this.#messageStores.set(key, m);
    }
    return m;
  }

  *appendQueues(): Iterable<readonly [string, AppendQueueFigures]> {
    for (const m of this.#messageStores.values()) {
      const s = m.appendStats;
      yield [
        m.store,
        {
          queuedRows: s.queuedRows,
          waitingForRoom: s.waitingForRoom,
          callersWaiting: s.callersWaiting,
          batches: s.batches,
        },
      ];
    }
  }

  /**
   * Every write is committed when its promise resolves; closing first writes the archive
   * appends still waiting, then waits for the pool to drain.
   */
  async close(): Promise<void> {
    if (this.#db.closed) return;
    await Promise.all([...this.#messageStores.values()].map((m) => m.drain()));
    await this.#db.close();
  }
}

/** Connects, migrates the schema and returns the storage. */
export async function openPostgresStorage(opts: PostgresStorageOptions): Promise<PostgresStorage> {
  const db = await PostgresDatabase.open(opts);
  try {
    await migratePostgres(db, opts.migrations, opts.onMigration);
  } catch (error) {
    await db.close();
    throw error;
  }
  return new PostgresStorage(db, opts.now, opts.messageAppends);
}
