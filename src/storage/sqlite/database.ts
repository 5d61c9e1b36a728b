import Database from "better-sqlite3";
import type { MigrationListener } from "../migration-listener.js";
import { migrate } from "./migrate.js";
import type { Migration } from "./migrations.js";

export interface OpenDatabaseOptions {
  /** How long a write waits for another process (e.g. the CLI) to release the lock. */
  busyTimeoutMs?: number;
  /** Overrides the schema history; only tests need this. */
  migrations?: readonly Migration[];
  /** Told of each schema migration as it starts (some rebuild tables: the server logs them). */
  onMigration?: MigrationListener;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** Opens (creating if needed) a SQLite database file, configures the connection and migrates it. */
export function openDatabase(path: string, opts: OpenDatabaseOptions = {}): Database.Database {
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    // WAL lets the server read while the CLI writes; NORMAL only syncs at checkpoints, which in
    // WAL mode can lose the last commits on power loss but never corrupts the database.
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    migrate(db, opts.migrations, opts.onMigration);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
