/**
 * The archive writer thread (see archive-writes.ts): its own connection to the server's SQLite
 * file, appends gathered for up to `delayMs` or `maxRows` and committed together, each batch's
 * outcomes sent back in the order the batches came.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import type { FromWriter, PendingAppend, ToWriter, WriterData } from "./archive-writes.js";
import { writeAppends } from "./archive-writes.js";

const data = workerData as WriterData;
const port = parentPort;
if (!port) throw new Error("archive-writer runs as a worker thread");

const db = new Database(data.path, { timeout: data.busyTimeoutMs });
// The main connection chose WAL and migrated the schema; this one only appends.
db.pragma("synchronous = NORMAL");
db.pragma("foreign_keys = ON");

/** Batches received and not yet written, in order. */
let waiting: { batch: number; appends: PendingAppend[] }[] = [];
let rows = 0;
let timer: NodeJS.Timeout | undefined;

function send(m: FromWriter): void {
  port?.postMessage(m);
}

function writeWaiting(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  while (waiting.length > 0) {
    // At most maxRows per transaction (whole batches), so the write lock is never held long.
    const take: typeof waiting = [];
    let n = 0;
    while (waiting.length > 0 && (take.length === 0 || n + waiting[0]!.appends.length <= data.maxRows)) {
      const b = waiting.shift()!;
      take.push(b);
      n += b.appends.length;
    }
    rows -= n;
    try {
      const outcomes = writeAppends(
        db,
        take.flatMap((b) => b.appends),
      );
      let at = 0;
      for (const b of take) {
        send({ op: "written", batch: b.batch, outcomes: outcomes.slice(at, at + b.appends.length) });
        at += b.appends.length;
      }
    } catch (error) {
      // The database itself failed (disk full, locked past the timeout): the main thread
      // takes the rows back and writes them itself.
      waiting = [];
      rows = 0;
      send({ op: "failed", error: (error as Error).message });
      return;
    }
  }
}

port.on("message", (m: ToWriter) => {
  switch (m.op) {
    case "append":
      waiting.push({ batch: m.batch, appends: m.appends });
      rows += m.appends.length;
      if (rows >= data.maxRows || data.delayMs === 0) writeWaiting();
      else timer ??= setTimeout(writeWaiting, data.delayMs);
      return;
    case "drain":
      writeWaiting();
      send({ op: "drained", token: m.token });
      return;
    case "close":
      writeWaiting();
      db.close();
      port.close();
      return;
  }
});
