/**
 * WAL checkpoints off the main thread. In WAL mode a commit that finds the log past
 * `wal_autocheckpoint` pages copies the log into the database file and, with
 * synchronous=NORMAL, fsyncs it — on the connection that committed, so a server's main
 * thread stopped every stream for the whole checkpoint, every few megabytes of writes
 * (measured: p99 message latency and throughput with the message archive on;
 * docs/benchmarks.md). A server's main connection turns automatic checkpoints off and a
 * thread with its own connection checkpoints every `intervalMs` instead (PASSIVE: it never
 * blocks a writer or waits for a reader). If the thread fails, the main connection takes
 * automatic checkpoints back, so the log cannot grow without bound.
 */
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";

export interface CheckpointerData {
  path: string;
  busyTimeoutMs: number;
  intervalMs: number;
}

/** SQLite's default, restored on the main connection when the thread is gone. */
const AUTOCHECKPOINT_PAGES = 1000;

export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000;

export class WalCheckpointer {
  readonly #worker: Worker;
  #closed = false;

  constructor(
    private readonly db: Database.Database,
    busyTimeoutMs: number,
    intervalMs = DEFAULT_CHECKPOINT_INTERVAL_MS,
    private readonly onFailure: (error: Error) => void = (error) =>
      process.emitWarning(`${error.message}: back to automatic checkpoints`),
  ) {
    const data: CheckpointerData = { path: db.name, busyTimeoutMs, intervalMs };
    db.pragma("wal_autocheckpoint = 0");
    this.#worker = new Worker(new URL("./wal-checkpoint-thread.js", import.meta.url), { workerData: data });
    // The thread must not keep the process alive; closing the storage ends it.
    this.#worker.unref();
    this.#worker.on("error", (err) => this.#fail(err));
    this.#worker.on("exit", (code) => {
      if (!this.#closed) this.#fail(new Error(`the WAL checkpoint thread stopped (code ${code})`));
    });
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    this.onFailure(error);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.terminate();
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  }
}
