/** The WAL checkpoint thread (see wal-checkpoints.ts): its own connection, a PASSIVE checkpoint per interval. */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import type { CheckpointerData } from "./wal-checkpoints.js";

const data = workerData as CheckpointerData;
if (!parentPort) throw new Error("wal-checkpoint-thread runs as a worker thread");

const db = new Database(data.path, { timeout: data.busyTimeoutMs });
// Never checkpoint from a commit of this connection: it does not write.
db.pragma("wal_autocheckpoint = 0");

setInterval(() => {
  // PASSIVE copies what no reader still needs and returns at once otherwise; the next one goes on.
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (error) {
    // Another connection (a command's) checkpointing at the same moment: the next interval will.
    const code = (error as { code?: string }).code;
    if (code !== "SQLITE_BUSY" && code !== "SQLITE_LOCKED") throw error;
  }
}, data.intervalMs);
