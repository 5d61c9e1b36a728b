import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Storage } from "../../core/storage/types.js";
import { StorageUnavailableError } from "../errors.js";
import type { StorageOptions } from "../index.js";
import { openSqliteStorage } from "../sqlite/index.js";
import type { StorageTransfer } from "./types.js";

/**
 * Opens a storage (migrating its schema like a server start) with its transfer side. A
 * source must exist already: a mistyped SQLite path would otherwise be created empty.
 */
export async function openForTransfer(
  opts: StorageOptions,
  role: "source" | "target",
): Promise<{ storage: Storage; transfer: StorageTransfer }> {
  if (opts.backend === "sqlite") {
    if (role === "source" && !existsSync(opts.path)) {
      throw new StorageUnavailableError(`there is no SQLite database at ${opts.path}`);
    }
    mkdirSync(path.dirname(opts.path), { recursive: true });
    const storage = await openSqliteStorage({ path: opts.path });
    return { storage, transfer: storage.transfer() };
  }
  const { openPostgresStorage } = await import("../postgres/index.js");
  const storage = await openPostgresStorage(opts);
  return { storage, transfer: storage.transfer() };
}
