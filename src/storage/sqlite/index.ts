import { closeSync, fsyncSync, openSync } from "node:fs";
import type Database from "better-sqlite3";
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
import type { StorageTransfer } from "../transfer/types.js";
import { AccountGuard } from "./account-guard.js";
import { SqliteAccountStore } from "./accounts.js";
import {
  type ArchiveWrites,
  type ArchiveWriteWindow,
  INLINE_ARCHIVE_WRITES,
  InlineArchiveWrites,
  WorkerArchiveWrites,
} from "./archive-writes.js";
import { SqliteBlocklistStore } from "./blocklist.js";
import { type OpenDatabaseOptions, openDatabase } from "./database.js";
import { SqliteArchiveStore, SqliteDocumentStore } from "./documents.js";
import { SqliteKeyValueStore, SqliteKeyValueTable } from "./key-value.js";
import { SqliteMessageArchiveStore } from "./messages.js";
import { SqliteOfflineStore } from "./offline.js";
import { SqliteRosterStore } from "./roster.js";
import { SqliteTransfer } from "./transfer.js";
import { WalCheckpointer } from "./wal-checkpoints.js";

export { SchemaTooNewError, UnknownAccountError } from "./errors.js";

export interface SqliteStorageOptions extends OpenDatabaseOptions {
  path: string;
  /** Time source for created_at / stored_at; tests inject a fixed clock. */
  now?: () => number;
  /**
   * How message-archive appends are written: the server configures a writer thread
   * (storage.archiveWrite*); without this, on the main thread at the end of each turn.
   */
  archiveWrites?: ArchiveWriteWindow;
  /**
   * Checkpoint the WAL from a thread of its own instead of from commits on this thread (a
   * server's storage; a command's short run leaves it to SQLite's automatic checkpoints).
   */
  checkpointThread?: boolean;
}

/**
 * Open storages, written out when the process exits (better-sqlite3 is synchronous, so an
 * `exit` listener can still write): appends waiting in a write window survive a crash that
 * goes through process exit; only a kill or power loss can lose that window.
 */
const openStorages = new Set<SqliteStorage>();
let exitListener: (() => void) | undefined;

/** The embedded backend: one SQLite file, all statements prepared once at open. */
export class SqliteStorage implements Storage {
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly blocklist: BlocklistStore;
  readonly #db: Database.Database;
  readonly #keyValueTable: SqliteKeyValueTable;
  readonly #keyValueStores = new Map<string, KeyValueStore>();
  readonly #documentStores = new Map<string, DocumentStore<unknown>>();
  readonly #archiveStores = new Map<string, ArchiveStore<unknown>>();
  readonly #messageStores = new Map<string, SqliteMessageArchiveStore>();
  readonly #guard: AccountGuard;
  readonly #archiveWrites: ArchiveWrites;
  readonly #checkpointer: WalCheckpointer | undefined;

  constructor(
    db: Database.Database,
    now: () => number = Date.now,
    archiveWrites: ArchiveWriteWindow = INLINE_ARCHIVE_WRITES,
    busyTimeoutMs = 5000,
    checkpointThread = false,
  ) {
    this.#db = db;
    this.#checkpointer = checkpointThread && !db.memory ? new WalCheckpointer(db, busyTimeoutMs) : undefined;
    // A worker needs a file it can open too.
    this.#archiveWrites =
      archiveWrites.worker && !db.memory
        ? new WorkerArchiveWrites(db, archiveWrites, busyTimeoutMs)
        : new InlineArchiveWrites(db, archiveWrites);
    openStorages.add(this);
    exitListener ??= () => {
      for (const s of openStorages) s.flushArchives();
    };
    if (openStorages.size === 1) process.on("exit", exitListener);
    const guard = new AccountGuard(db);
    this.#guard = guard;
    this.accounts = new SqliteAccountStore(db, guard, now);
    this.roster = new SqliteRosterStore(db);
    this.offline = new SqliteOfflineStore(db, guard, now);
    this.blocklist = new SqliteBlocklistStore(db, guard);
    this.#keyValueTable = new SqliteKeyValueTable(db);
  }

  /** Copying the whole database in or out (`switchboard storage migrate`). */
  transfer(): StorageTransfer {
    return new SqliteTransfer(this.#db);
  }

  keyValue(store: string): KeyValueStore {
    if (store === "") throw new RangeError("key-value store name must not be empty");
    let kv = this.#keyValueStores.get(store);
    if (!kv) {
      kv = new SqliteKeyValueStore(this.#keyValueTable, store);
      this.#keyValueStores.set(store, kv);
    }
    return kv;
  }

  documents<T = unknown>(store: string): DocumentStore<T> {
    if (store === "") throw new RangeError("document store name must not be empty");
    let d = this.#documentStores.get(store);
    if (!d) {
      d = new SqliteDocumentStore<unknown>(this.#db, store);
      this.#documentStores.set(store, d);
    }
    return d as DocumentStore<T>;
  }

  archive<T = unknown>(store: string): ArchiveStore<T> {
    if (store === "") throw new RangeError("archive name must not be empty");
    let a = this.#archiveStores.get(store);
    if (!a) {
      a = new SqliteArchiveStore<unknown>(this.#db, store);
      this.#archiveStores.set(store, a);
    }
    return a as ArchiveStore<T>;
  }

  messages(store: string, opts: MessageArchiveOptions): MessageArchiveStore {
    if (store === "") throw new RangeError("message store name must not be empty");
    const key = `${opts.ownedByAccounts ? "account" : "room"}:${store}`;
    let m = this.#messageStores.get(key);
    if (!m) {
      m = new SqliteMessageArchiveStore(
        this.#db,
        store,
        opts.ownedByAccounts ? this.#guard : undefined,
        this.#archiveWrites,
      );
      this.#messageStores.set(key, m);
    }
    return m;
  }

  /** Every message store made, from its first scrape (the writes know a store once it appends). */
  *appendQueues(): Iterable<readonly [string, AppendQueueFigures]> {
    const figures = new Map(this.#archiveWrites.figures());
    for (const m of this.#messageStores.values()) {
      yield [m.store, figures.get(m.store) ?? { queuedRows: 0, callersWaiting: 0, batches: 0 }];
      figures.delete(m.store);
    }
  }

  /** Writes the message-archive appends not yet committed, on this thread, now. */
  flushArchives(): void {
    this.#archiveWrites.writeNowInline();
  }

  async close(): Promise<void> {
    openStorages.delete(this);
    if (openStorages.size === 0 && exitListener) process.off("exit", exitListener);
    if (!this.#db.open) return;
    await this.#archiveWrites.close();
    await this.#checkpointer?.close();
    // synchronous=NORMAL defers fsync to checkpoints. Copy what we can into the database file
    // (PASSIVE never waits), then fsync whatever another connection (the CLI) keeps in the WAL.
    // A checkpoint that fails (a full disk cannot grow the database file) loses nothing: the
    // commits stay in the WAL, which is synced here and copied at the next open.
    try {
      this.#db.pragma("wal_checkpoint(PASSIVE)");
    } catch (error) {
      if ((error as { code?: unknown }).code !== "SQLITE_FULL") throw error;
    }
    if (!this.#db.memory) syncIfPresent(`${this.#db.name}-wal`);
    this.#db.close();
  }
}

function syncIfPresent(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function openSqliteStorage(opts: SqliteStorageOptions): Promise<SqliteStorage> {
  return new SqliteStorage(
    openDatabase(opts.path, opts),
    opts.now,
    opts.archiveWrites,
    opts.busyTimeoutMs,
    opts.checkpointThread,
  );
}
