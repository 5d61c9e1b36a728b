import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Storage } from "../core/storage/types.js";
import { openSqliteStorage } from "./sqlite/index.js";

export type StorageOptions = { backend: "sqlite"; path: string };

/** Opens the configured storage backend; the rest of the server only sees the Storage interface. */
export async function openStorage(opts: StorageOptions): Promise<Storage> {
  switch (opts.backend) {
    case "sqlite":
      mkdirSync(dirname(opts.path), { recursive: true });
      return openSqliteStorage({ path: opts.path });
    default:
      throw new Error(`unknown storage backend: ${(opts as { backend: unknown }).backend}`);
  }
}
