/**
 * How message-archive appends reach the SQLite file. A commit rewrites every index page its
 * rows touched, so a row costs about a third as much in batches of thousands as in batches
 * of tens (measured; docs/benchmarks.md) — but a batch written on the main thread stops
 * every stream for as long as it takes. So by default appends are written by a worker
 * thread with its own connection, in large batches, while the main thread goes on; where no
 * worker can be used (an in-memory database) they are written on the main thread in a
 * short window.
 *
 * Either way a caller need not wait for an append, and `drain()` resolves once everything
 * appended before it is committed, so every read sees every earlier append. The worker's
 * rows are kept on the main thread until written; a worker slower than a flood (a disk that
 * stalls, another connection holding the write lock) would let them grow without bound, so
 * past `2 × maxRows` rows not yet written `roomToAppend()` tells callers that can wait to
 * wait (backpressure). Written inline, the rows of a turn are written at its end: nothing
 * accumulates, and the store always has room.
 */

import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { errorCode } from "../../core/storage/causes.js";
import { RoomSignal } from "../../core/storage/room-signal.js";
import type { AppendQueueFigures } from "../../core/storage/types.js";
import { isUnavailableCode } from "../../core/storage/unavailable.js";
import { UnknownAccountError } from "./errors.js";

/** The message tables: accounts' archives (deleted with them) and free owners' (rooms). */
export type MessageTable = "account_messages" | "room_messages";

/** Values of one row, in INSERT_COLUMNS order. */
export type MessageRow = [
  store: string,
  id: string,
  owner: string,
  peer: string,
  peerResource: string,
  at: number,
  direction: "in" | "out",
  stanza: string,
  text: string,
  folded: string,
];

export interface PendingAppend {
  table: MessageTable;
  row: MessageRow;
}

/** Outcome of one row: written, already there (same id), its account missing, or another failure. */
export type AppendOutcome = "written" | "duplicate" | "unknown-account" | { error: string; code?: string };

/** How long appends may wait to be written together (`storage.archiveWriteDelayMs`, `archiveWriteBatch`). */
export interface ArchiveWriteWindow {
  /** Longest wait of an append; 0: the end of the current turn of the event loop. */
  delayMs: number;
  /** Appends waiting at which they are written at once (also the most one transaction holds). */
  maxRows: number;
  /** Write on a worker thread (file databases only); false: on the main thread. */
  worker: boolean;
}

export const DEFAULT_ARCHIVE_WRITES: ArchiveWriteWindow = { delayMs: 250, maxRows: 5000, worker: true };

/** The main thread's window when appends are written inline (short: the write stops every stream). */
export const INLINE_ARCHIVE_WRITES: ArchiveWriteWindow = { delayMs: 0, maxRows: 500, worker: false };

const INSERT_COLUMNS = "store, id, owner, peer, peer_resource, at, direction, stanza, text, folded";

/**
 * A connection's insert statements (one per table) and the transaction that writes a batch,
 * made once: a flush runs every turn under load, and better-sqlite3 builds four wrapper
 * functions for each transaction it is given.
 */
interface AppendWriter {
  insert: (a: PendingAppend) => boolean;
  writeAll: (appends: readonly PendingAppend[]) => AppendOutcome[];
}

const writers = new WeakMap<Database.Database, AppendWriter>();

function writerFor(db: Database.Database): AppendWriter {
  const known = writers.get(db);
  if (known) return known;
  const statements = new Map<MessageTable, Database.Statement<unknown[], unknown>>();
  const insert = (a: PendingAppend): boolean => {
    let s = statements.get(a.table);
    if (!s) {
      s = db.prepare(
        `INSERT INTO ${a.table} (${INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (store, owner, id) DO NOTHING`,
      );
      statements.set(a.table, s);
    }
    return (s.run(...a.row) as Database.RunResult).changes === 1;
  };
  const writeAll = db.transaction((appends: readonly PendingAppend[]) =>
    appends.map((a): AppendOutcome => (insert(a) ? "written" : "duplicate")),
  );
  const writer = { insert, writeAll };
  writers.set(db, writer);
  return writer;
}

/** Another connection holds the lock (the core's "unavailable" codes): the rows can be tried again. */
const isBusy = isUnavailableCode;

function failure(error: unknown): AppendOutcome {
  const code = errorCode(error);
  return { error: (error as Error).message, ...(code !== undefined ? { code } : {}) };
}

/** Whether an outcome is a lock another connection held (the rows can be tried again). */
export function isBusyOutcome(outcome: AppendOutcome): boolean {
  return typeof outcome === "object" && isBusy(outcome.code);
}

/**
 * Writes rows in one transaction; if that fails (one row's account deleted meanwhile), row by
 * row, so one bad row does not cost the others. A lock held by another connection fails
 * them all at once: row by row, each would wait the busy timeout again.
 */
export function writeAppends(db: Database.Database, appends: readonly PendingAppend[]): AppendOutcome[] {
  const { insert, writeAll } = writerFor(db);
  try {
    return writeAll(appends);
  } catch (error) {
    if (isBusy(errorCode(error))) return appends.map(() => failure(error));
    let busy: AppendOutcome | undefined;
    return appends.map((a): AppendOutcome => {
      if (busy) return busy;
      try {
        return insert(a) ? "written" : "duplicate";
      } catch (error) {
        const code = errorCode(error);
        if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") return "unknown-account";
        if (isBusy(code)) busy = failure(error);
        return failure(error);
      }
    });
  }
}

interface Waiting {
  append: PendingAppend;
  resolve: (written: boolean) => void;
  reject: (err: unknown) => void;
}

function settle(w: Waiting, outcome: AppendOutcome): void {
  if (outcome === "written") w.resolve(true);
  else if (outcome === "duplicate") w.resolve(false);
  else if (outcome === "unknown-account") w.reject(new UnknownAccountError(w.append.row[2]));
  // The driver's code goes along: a full disk is told apart from other failures (core/storage/full.ts).
  else w.reject(Object.assign(new Error(`archiving failed: ${outcome.error}`), { code: outcome.code }));
}

/** Rows not yet written and batches written, by store (the metrics' figures). */
class QueueFigures {
  readonly #stores = new Map<string, AppendQueueFigures>();
  /** Rows taken and not yet written, of every store. */
  rows = 0;

  of(store: string): AppendQueueFigures {
    let f = this.#stores.get(store);
    if (!f) {
      f = { queuedRows: 0, callersWaiting: 0, batches: 0 };
      this.#stores.set(store, f);
    }
    return f;
  }

  taken(a: PendingAppend): void {
    this.of(a.row[0]).queuedRows++;
    this.rows++;
  }

  /** One batch written (or failed): its rows leave the queue; each store it held counts it. */
  written(batch: readonly Waiting[]): void {
    const stores = new Set<AppendQueueFigures>();
    for (const w of batch) {
      const f = this.of(w.append.row[0]);
      f.queuedRows--;
      stores.add(f);
    }
    this.rows -= batch.length;
    for (const f of stores) f.batches++;
  }

  waitersReleased(): void {
    for (const f of this.#stores.values()) f.callersWaiting = 0;
  }

  entries(): [string, AppendQueueFigures][] {
    return [...this.#stores].map(([store, f]) => [store, { ...f }]);
  }
}

export interface ArchiveWrites {
  append(append: PendingAppend): Promise<boolean>;
  /** Undefined while appends are taken now; else resolves once they are (see MessageArchiveStore). */
  roomToAppend(store: string): Promise<void> | undefined;
  /** The queue's figures by store. */
  figures(): [string, AppendQueueFigures][];
  /** Resolves once every append made before it is committed. */
  drain(): Promise<void>;
  /** Writes what is waiting on the calling thread, now (process exit, closing). */
  writeNowInline(): void;
  close(): Promise<void>;
}

/**
 * Appends written on the main thread, in a short window. While another connection holds the
 * database's lock (a backup, a command, a shell) the rows are kept and tried again, without
 * waiting for the lock, every 100 ms to 2 s; past twice `maxRows` rows kept, callers that can
 * wait are told to (backpressure), so the main thread neither stops nor loses the rows.
 */
export class InlineArchiveWrites implements ArchiveWrites {
  readonly #db: Database.Database;
  readonly #window: ArchiveWriteWindow;
  /** Appends not yet written, in order: those a lock held back first. */
  #pending: Waiting[] = [];
  readonly #figures = new QueueFigures();
  readonly #room = new RoomSignal();
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  /** The next try while a lock holds rows back; undefined when none are held. */
  #retry: NodeJS.Timeout | undefined;
  #retryDelayMs = 0;

  constructor(db: Database.Database, window: ArchiveWriteWindow) {
    this.#db = db;
    this.#window = window;
  }

  /** Room unless a lock has held back more rows than the bound. */
  roomToAppend(store: string): Promise<void> | undefined {
    if (this.#retry === undefined || this.#pending.length < 2 * this.#window.maxRows) return undefined;
    this.#figures.of(store).callersWaiting++;
    return this.#room.wait();
  }

  figures(): [string, AppendQueueFigures][] {
    return this.#figures.entries();
  }

  append(append: PendingAppend): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#pending.push({ append, resolve, reject });
      this.#figures.taken(append);
      // Held back by a lock: the next try writes these too.
      if (this.#retry !== undefined) return;
      if (this.#pending.length >= this.#window.maxRows || this.#window.delayMs === 0) {
        this.#immediate ??= setImmediate(() => this.writeNowInline());
      } else if (this.#timer === undefined) {
        this.#timer = setTimeout(() => this.writeNowInline(), this.#window.delayMs);
        this.#timer.unref();
      }
    });
  }

  async drain(): Promise<void> {
    this.writeNowInline();
  }

  writeNowInline(): void {
    // While a lock holds rows back, a drain or an exit tries without waiting for it either.
    this.#write(this.#retry !== undefined);
  }

  /** `retry`: a lock held rows back before, so this try does not wait for it. */
  #write(retry: boolean): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#retry = undefined;
    if (this.#pending.length === 0 || !this.#db.open) return;
    const batch = this.#pending;
    this.#pending = [];
    const appends = batch.map((w) => w.append);
    const outcomes = retry
      ? withoutWaiting(this.#db, () => writeAppends(this.#db, appends))
      : writeAppends(this.#db, appends);
    const done: [Waiting, AppendOutcome][] = [];
    batch.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if (isBusyOutcome(outcome)) this.#pending.push(w);
      else done.push([w, outcome]);
    });
    if (done.length > 0) this.#figures.written(done.map(([w]) => w));
    for (const [w, outcome] of done) settle(w, outcome);
    if (this.#pending.length > 0) {
      this.#retryDelayMs = Math.min(Math.max(2 * this.#retryDelayMs, 100), 2000);
      // Not unref'd: rows wait for it, and closing the storage ends it.
      this.#retry = setTimeout(() => this.#write(true), this.#retryDelayMs);
    } else {
      this.#retryDelayMs = 0;
      if (this.#room.open()) this.#figures.waitersReleased();
    }
  }

  /** Writes what waits; what a lock still holds back then fails (the process is stopping). */
  #writeLast(): void {
    this.writeNowInline();
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = undefined;
    const left = this.#pending;
    this.#pending = [];
    if (left.length > 0) this.#figures.written(left);
    for (const w of left)
      settle(w, { error: "the database stayed locked by another connection", code: "SQLITE_BUSY" });
    if (this.#room.open()) this.#figures.waitersReleased();
  }

  async close(): Promise<void> {
    this.#writeLast();
  }
}

/** Runs `write` with the connection's busy timeout off: a lock fails it at once. */
function withoutWaiting<T>(db: Database.Database, write: () => T): T {
  const timeout = db.pragma("busy_timeout", { simple: true }) as number;
  db.pragma("busy_timeout = 0");
  try {
    return write();
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}

/** Messages between the main thread and the archive writer thread. */
export type ToWriter =
  | { op: "append"; batch: number; appends: PendingAppend[] }
  | { op: "drain"; token: number }
  | { op: "close" };

export type FromWriter =
  | { op: "written"; batch: number; outcomes: AppendOutcome[] }
  | { op: "drained"; token: number }
  | { op: "failed"; error: string };

export interface WriterData {
  path: string;
  busyTimeoutMs: number;
  delayMs: number;
  maxRows: number;
}

/**
 * Appends written by a worker thread with its own connection to the same file. The main
 * thread keeps each append until the writer reports it written, so what the writer has not
 * committed when the process exits is written by `writeNowInline` (from an `exit` listener).
 */
export class WorkerArchiveWrites implements ArchiveWrites {
  readonly #db: Database.Database;
  readonly #worker: Worker;
  /** Appends of this turn, posted together at its end. */
  #turn: Waiting[] = [];
  #posting: NodeJS.Immediate | undefined;
  readonly #sent = new Map<number, Waiting[]>();
  readonly #drains = new Map<number, () => void>();
  readonly #figures = new QueueFigures();
  /** Rows not yet written past which callers that can wait are told to (backpressure). */
  readonly #queueRows: number;
  /** Resolves once the rows not yet written are under the bound again: one per full spell. */
  readonly #room = new RoomSignal();
  #next = 1;
  #failed: Error | undefined;
  #closed = false;

  constructor(db: Database.Database, window: ArchiveWriteWindow, busyTimeoutMs: number) {
    this.#db = db;
    this.#queueRows = 2 * window.maxRows;
    const data: WriterData = {
      path: db.name,
      busyTimeoutMs,
      delayMs: window.delayMs,
      maxRows: window.maxRows,
    };
    this.#worker = new Worker(new URL("./archive-writer.js", import.meta.url), { workerData: data });
    // An idle writer must not keep the process alive; closing the storage ends it.
    this.#worker.unref();
    this.#worker.on("message", (m: FromWriter) => this.#received(m));
    this.#worker.on("error", (err) => this.#fail(err));
    this.#worker.on("exit", (code) => {
      if (!this.#closed) this.#fail(new Error(`the archive writer thread stopped (code ${code})`));
    });
  }

  append(append: PendingAppend): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#turn.push({ append, resolve, reject });
      this.#figures.taken(append);
      this.#posting ??= setImmediate(() => this.#post());
    });
  }

  roomToAppend(store: string): Promise<void> | undefined {
    if (this.#figures.rows < this.#queueRows) return undefined;
    this.#figures.of(store).callersWaiting++;
    return this.#room.wait();
  }

  figures(): [string, AppendQueueFigures][] {
    return this.#figures.entries();
  }

  /** Rows were written: callers waiting for room go on once the rows are under the bound. */
  #wrote(batch: readonly Waiting[]): void {
    this.#figures.written(batch);
    if (this.#figures.rows < this.#queueRows && this.#room.open()) this.#figures.waitersReleased();
  }

  #post(): void {
    this.#posting = undefined;
    if (this.#turn.length === 0) return;
    const waiting = this.#turn;
    this.#turn = [];
    if (this.#failed) {
      // The writer is gone: write here rather than lose the rows.
      this.#writeInline(waiting);
      return;
    }
    const batch = this.#next++;
    this.#sent.set(batch, waiting);
    this.#worker.postMessage({
      op: "append",
      batch,
      appends: waiting.map((w) => w.append),
    } satisfies ToWriter);
  }

  #received(m: FromWriter): void {
    if (m.op === "written") {
      const waiting = this.#sent.get(m.batch);
      this.#sent.delete(m.batch);
      if (waiting) this.#wrote(waiting);
      waiting?.forEach((w, i) => {
        settle(w, m.outcomes[i]!);
      });
    } else if (m.op === "drained") {
      this.#drains.get(m.token)?.();
      this.#drains.delete(m.token);
    } else {
      this.#fail(new Error(m.error));
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    // Everything the writer had not confirmed is written here, once (ids make it idempotent).
    this.writeNowInline();
    for (const done of this.#drains.values()) done();
    this.#drains.clear();
  }

  drain(): Promise<void> {
    this.#post();
    if (this.#failed || (this.#sent.size === 0 && this.#turn.length === 0)) return Promise.resolve();
    const token = this.#next++;
    return new Promise<void>((resolve) => {
      this.#drains.set(token, resolve);
      this.#worker.postMessage({ op: "drain", token } satisfies ToWriter);
    });
  }

  writeNowInline(): void {
    const waiting = [...this.#sent.values()].flat().concat(this.#turn);
    this.#sent.clear();
    this.#turn = [];
    this.#writeInline(waiting);
  }

  #writeInline(waiting: Waiting[]): void {
    if (waiting.length === 0 || !this.#db.open) return;
    const outcomes = writeAppends(
      this.#db,
      waiting.map((w) => w.append),
    );
    this.#wrote(waiting);
    waiting.forEach((w, i) => {
      settle(w, outcomes[i]!);
    });
  }

  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
    this.#worker.postMessage({ op: "close" } satisfies ToWriter);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        void this.#worker.terminate().then(() => resolve());
      }, 5000);
      this.#worker.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.writeNowInline();
  }
}
