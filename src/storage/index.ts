import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Storage } from "../core/storage/types.js";
import { openPostgresStorage } from "./postgres/index.js";
import { openSqliteStorage } from "./sqlite/index.js";

export type StorageOptions =
  | { backend: "sqlite"; path: string }
  | { backend: "postgres"; url: string; schema?: string; poolSize?: number };

/** Opens the configured storage backend; the rest of the server only sees the Storage interface. */
export async function openStorage(opts: StorageOptions): Promise<Storage> {
  switch (opts.backend) {
    case "sqlite":
      mkdirSync(dirname(opts.path), { recursive: true });
      return openSqliteStorage({ path: opts.path });
    case "postgres":
      return openPostgresStorage(opts);
    default:
      throw new Error(`unknown storage backend: ${(opts as { backend: unknown }).backend}`);
  }
}
