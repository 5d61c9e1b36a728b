/**
 * The storage backends' section of the configuration (`storage:`): SQLite under the data
 * directory by default, or a URL naming the backend (`sqlite:PATH`, `postgres://…`), also
 * from SWITCHBOARD_STORAGE_URL and `--storage`.
 */
import path from "node:path";
import { z } from "zod";
import type { ConfigSection } from "../core/config.js";
import { DEFAULT_MESSAGE_APPEND_LIMITS } from "./postgres/append-limits.js";

export type StorageBackend = "sqlite" | "postgres";

/** The backend a storage URL names: `sqlite:PATH`, `postgres://…` or `postgresql://…`. */
export function storageBackendOf(url: string): StorageBackend | undefined {
  if (url.startsWith("sqlite:")) return "sqlite";
  if (/^postgres(ql)?:\/\//.test(url)) return "postgres";
  return undefined;
}

export const StorageSchema = z
  .object({
    /** sqlite or postgres; when absent, the one `url` names (sqlite without a url). */
    backend: z.enum(["sqlite", "postgres"]).optional(),
    /** `sqlite:PATH` or `postgres://user:password@host:port/database?…`. */
    url: z.string().min(1).optional(),
    /** SQLite database file, relative to dataDir, when no url is given. */
    sqlitePath: z.string().default("switchboard.sqlite"),
    /** PostgreSQL: connections in the pool. */
    poolSize: z.number().int().min(1).max(1000).default(10),
    /**
     * PostgreSQL: rows of one message archive taken and not yet written at which further
     * appends wait for room and messages wait for the archive (backpressure).
     */
    archiveQueueRows: z.number().int().min(1).default(DEFAULT_MESSAGE_APPEND_LIMITS.queueRows),
    /** PostgreSQL: the bytes those rows hold at most. */
    archiveQueueBytes: z.number().int().min(1).default(DEFAULT_MESSAGE_APPEND_LIMITS.queueBytes),
    /**
     * SQLite: message-archive appends written on the main thread at the end of each turn (the
     * default: the least memory under a flood), or by a thread of their own in larger batches.
     */
    archiveWriter: z.enum(["thread", "main"]).default("main"),
    /** SQLite: longest time an archive append waits to be written with others (0: end of the turn). */
    archiveWriteDelayMs: z.number().int().min(0).max(10_000).default(0),
    /** SQLite: archive appends waiting at which they are written at once (and most per transaction). */
    archiveWriteBatch: z.number().int().min(1).max(100_000).default(500),
    /**
     * SQLite: how long a write of the server waits for a lock another process holds (a backup,
     * a command, a shell) before it fails as a temporary error. The server's main thread, and
     * with it every stream, stops while it waits: short by default.
     */
    busyTimeoutMs: z.number().int().min(0).max(60_000).default(250),
  })
  .prefault({})
  .superRefine((s, ctx) => {
    const named = s.url === undefined ? undefined : storageBackendOf(s.url);
    if (s.url !== undefined && named === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        message: "expected sqlite:PATH or postgres://user:password@host:port/database",
      });
    } else if (s.backend !== undefined && named !== undefined && s.backend !== named) {
      ctx.addIssue({ code: "custom", path: ["backend"], message: `is ${s.backend} but the url is ${named}` });
    } else if (s.backend === "postgres" && s.url === undefined) {
      ctx.addIssue({ code: "custom", path: ["url"], message: "postgres needs a url (postgres://…)" });
    }
  })
  .transform((s) => ({
    ...s,
    backend: (s.backend ??
      (s.url === undefined ? undefined : storageBackendOf(s.url)) ??
      "sqlite") as StorageBackend,
  }));

/**
 * The `storage` values for a URL given on the command line or in the environment: it
 * replaces the file's choice of backend too, and a relative SQLite path is taken from the
 * current directory.
 */
export function storageOverride(url: string, cwd = process.cwd()): Record<string, unknown> {
  const backend = storageBackendOf(url);
  return { url: backend === "sqlite" ? resolveSqliteUrl(url, cwd) : url, ...(backend ? { backend } : {}) };
}

/** `sqlite:PATH` with PATH made absolute against `base`. */
export function resolveSqliteUrl(url: string, base: string): string {
  return `sqlite:${path.resolve(base, url.slice("sqlite:".length))}`;
}

export const storageConfigSection: ConfigSection = {
  keys: { storage: StorageSchema },
  environment(env) {
    const url = env.SWITCHBOARD_STORAGE_URL;
    return url !== undefined && url !== "" ? { storage: storageOverride(url) } : {};
  },
  resolveFilePaths(values, fileDir) {
    const storage = values.storage;
    if (typeof storage !== "object" || storage === null || Array.isArray(storage)) return;
    const url = (storage as Record<string, unknown>).url;
    if (typeof url === "string" && storageBackendOf(url) === "sqlite")
      values.storage = { ...storage, url: resolveSqliteUrl(url, fileDir) };
  },
};

declare module "../core/config.js" {
  interface ConfigSections {
    storage: z.output<typeof StorageSchema>;
  }
}
