import { mkdirSync } from "node:fs";
import path from "node:path";
import type { ServerConfig } from "../core/config.js";
import type { Storage } from "../core/storage/types.js";
import { storageBackendOf } from "./config.js";
import type { MigrationListener } from "./migration-listener.js";
import type { MessageAppendLimits } from "./postgres/append-limits.js";
import { redactUrl } from "./postgres/url.js";
import type { ArchiveWriteWindow } from "./sqlite/archive-writes.js";
import { openSqliteStorage } from "./sqlite/index.js";

export type StorageOptions = (
  | {
      backend: "sqlite";
      path: string;
      archiveWrites?: ArchiveWriteWindow;
      /** A server's storage: WAL checkpoints on a thread of their own (see sqlite/wal-checkpoints.ts). */
      checkpointThread?: boolean;
      /** How long a statement waits for a lock another process holds (the busy timeout). */
      busyTimeoutMs?: number;
    }
  | {
      backend: "postgres";
      url: string;
      schema?: string;
      poolSize?: number;
      /** Bounds of the message archives' append queues (the rest keep their defaults). */
      messageAppends?: Partial<MessageAppendLimits>;
    }
) & {
  /** Told of each schema migration as it starts (some rebuild tables: the server logs them). */
  onMigration?: MigrationListener;
};

/** Opens the configured storage backend; the rest of the server only sees the Storage interface. */
export async function openStorage(opts: StorageOptions): Promise<Storage> {
  switch (opts.backend) {
    case "sqlite":
      mkdirSync(path.dirname(opts.path), { recursive: true });
      return openSqliteStorage({
        path: opts.path,
        ...(opts.archiveWrites ? { archiveWrites: opts.archiveWrites } : {}),
        ...(opts.checkpointThread ? { checkpointThread: true } : {}),
        ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
        ...(opts.onMigration ? { onMigration: opts.onMigration } : {}),
      });
    case "postgres": {
      // Loaded on demand: a server or command on SQLite does not load the PostgreSQL driver.
      const { openPostgresStorage } = await import("./postgres/index.js");
      return openPostgresStorage(opts);
    }
    default:
      throw new Error(`unknown storage backend: ${(opts as { backend: unknown }).backend}`);
  }
}

/**
 * The storage a URL names: `sqlite:PATH` (relative to `baseDir`) or `postgres://…`.
 * Throws a message fit for the user otherwise.
 */
export function parseStorageUrl(url: string, baseDir = process.cwd()): StorageOptions {
  switch (storageBackendOf(url)) {
    case "sqlite": {
      const file = url.slice("sqlite:".length);
      if (file === "") throw new Error("sqlite: needs a file path (sqlite:PATH)");
      return { backend: "sqlite", path: path.resolve(baseDir, file) };
    }
    case "postgres":
      return { backend: "postgres", url };
    default:
      throw new Error(`not a storage URL: ${url} (expected sqlite:PATH or postgres://…)`);
  }
}

/** The storage of a server's configuration: storage.url, or the SQLite file in dataDir. */
export function storageOptionsFrom(config: ServerConfig): StorageOptions {
  const { storage } = config;
  const archiveWrites = {
    delayMs: storage.archiveWriteDelayMs,
    maxRows: storage.archiveWriteBatch,
    worker: storage.archiveWriter === "thread",
  };
  if (storage.url !== undefined) {
    const opts = parseStorageUrl(storage.url, config.dataDir);
    if (opts.backend === "postgres") {
      const messageAppends = { queueRows: storage.archiveQueueRows, queueBytes: storage.archiveQueueBytes };
      return { ...opts, poolSize: storage.poolSize, messageAppends };
    }
    return { ...opts, archiveWrites };
  }
  return { backend: "sqlite", path: path.resolve(config.dataDir, storage.sqlitePath), archiveWrites };
}

/** Where the storage is, for logs and messages: never a password. */
export function describeStorage(opts: StorageOptions): string {
  return opts.backend === "sqlite" ? `sqlite:${opts.path}` : redactUrl(opts.url);
}
