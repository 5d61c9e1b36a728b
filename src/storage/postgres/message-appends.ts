/**
 * How message-archive appends reach PostgreSQL. Written one statement per row, each holding a
 * connection of the pool while it waited for its owner's lock and its commit, a flood of
 * archive rows (two per chat message: the sender's and the recipient's) took the connections
 * that logins need. So the rows appended while a store's writes are busy, or during one turn
 * of the event loop, are written together: one statement takes the append locks of all their
 * owners, in the order of the lock keys (the same on every node, so two nodes never wait for
 * each other in a circle), then inserts every row in the order appended. A store runs at most
 * `inFlight` such writes at once, and holds at most `queueRows` rows (`queueBytes` bytes)
 * taken and not yet written; further appends wait for room, in the order they were made.
 * Those waiting appends are not bounded here: a caller that can wait asks `roomToAppend()`
 * first and, while the queue is full, waits for room before appending (backpressure).
 *
 * An owner's rows are in at most one running write at a time, so they become visible in the
 * order they were appended. When a write fails for a reason a row can cause (its account is
 * gone, a value the table refuses), its rows are written again one by one, so only the rows
 * at fault fail.
 */

import { RoomSignal } from "../../core/storage/room-signal.js";
import type { ArchivedMessage } from "../../core/storage/types.js";
import { foldText } from "../fold.js";
import type { MessageAppendLimits } from "./append-limits.js";
import {
  abortedByConflict,
  errorCode,
  type PostgresDatabase,
  type Statement,
  sql,
  TRANSACTION_ATTEMPTS,
} from "./database.js";
import { forAccount } from "./errors.js";

/** Advisory lock class of message appends (the second key is the store and owner hashed). */
const APPEND_LOCK = 0x5357_4d41; // "SWMA"

export type MessageTable = "account_messages" | "room_messages";

/** A store's appends now, and at their most since it was made. */
export interface MessageAppendStats {
  /** Rows taken and not yet written (waiting for a write or in one), and their bytes. */
  queuedRows: number;
  queuedBytes: number;
  peakQueuedRows: number;
  peakQueuedBytes: number;
  /** Appends waiting for room. */
  waitingForRoom: number;
  /** Callers waiting on `roomToAppend()` for the queue to take appends again. */
  callersWaiting: number;
  /** Writes running now, and the most at once. */
  running: number;
  peakRunning: number;
  /** Writes finished, and how many of them wrote their rows one by one after the batch failed. */
  batches: number;
  rowByRow: number;
  /** Rows in the largest write. */
  largestBatch: number;
}

interface Pending {
  message: ArchivedMessage;
  folded: string;
  bytes: number;
  resolve(inserted: boolean): void;
  reject(error: unknown): void;
}

/** Inserted (true), already there (false), or refused. */
type Outcome = boolean | { error: unknown };

/**
 * SQLSTATE classes that say the server or the connection failed, not a row: writing the
 * rows one by one would only fail again, row after row.
 */
const UNAVAILABLE_CLASSES = new Set(["08", "53", "57", "58", "XX"]);

/** A failure one row may cause (its account missing, a value refused): worth writing row by row. */
function rowMayCause(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && code.length === 5 && !UNAVAILABLE_CLASSES.has(code.slice(0, 2));
}

function sizeOf(m: ArchivedMessage, folded: string): number {
  let n = 8; // at
  for (const s of [m.owner, m.id, m.peer, m.peerResource, m.direction, m.stanza, m.text, folded])
    n += Buffer.byteLength(s);
  return n;
}

const keyOf = (m: ArchivedMessage) => `${m.owner}\u0000${m.id}`;

export class MessageAppendQueue {
  readonly #db: PostgresDatabase;
  readonly #store: string;
  readonly #table: MessageTable;
  readonly #limits: MessageAppendLimits;
  readonly #batch: Statement;
  readonly #one: Statement;
  /** Rows taken, not in a running write yet, in append order. */
  #queue: Pending[] = [];
  /** Appends waiting for room, in append order. */
  #waiting: Pending[] = [];
  /** Owners with rows in a running write. */
  readonly #busy = new Set<string>();
  /** Resolves once the queue takes appends again: one for every caller of one full spell. */
  readonly #room = new RoomSignal();
  #scheduled = false;
  readonly #stats: MessageAppendStats = {
    queuedRows: 0,
    queuedBytes: 0,
    peakQueuedRows: 0,
    peakQueuedBytes: 0,
    waitingForRoom: 0,
    callersWaiting: 0,
    running: 0,
    peakRunning: 0,
    batches: 0,
    rowByRow: 0,
    largestBatch: 0,
  };

  constructor(db: PostgresDatabase, store: string, table: MessageTable, limits: MessageAppendLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
    }
    this.#db = db;
    this.#store = store;
    this.#table = table;
    this.#limits = limits;
    const columns = "store, owner, id, peer, peer_resource, at, direction, stanza, text, folded";
    // Identity values are taken at insert, not at commit: without the locks two concurrent
    // writes could make an owner's rows visible out of seq order, and a client paging "after
    // id X" could step past the one that commits later. The locks are held until commit. The
    // sorted locks are all taken before the first row is inserted: the join needs `held`,
    // which counts every lock, before it yields a row.
    this.#batch = sql(
      `${table}.append`,
      `WITH locks AS (
         SELECT pg_advisory_xact_lock(${APPEND_LOCK}, k)
         FROM (SELECT DISTINCT hashtext($1 || ':' || o) AS k FROM unnest($2::text[]) AS o) AS owners
         ORDER BY k
       )
       INSERT INTO ${table} (${columns})
       SELECT $1, r.owner, r.id, r.peer, r.peer_resource, r.at, r.direction, r.stanza, r.text, r.folded
       FROM (SELECT count(*) FROM locks) AS held,
         unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[])
           WITH ORDINALITY AS r(owner, id, peer, peer_resource, at, direction, stanza, text, folded, n)
       ORDER BY r.n
       ON CONFLICT (store, owner, id) DO NOTHING
       RETURNING owner, id`,
    );
    this.#one = sql(
      `${table}.append-one`,
      `WITH serialised AS (SELECT pg_advisory_xact_lock(${APPEND_LOCK}, hashtext($1 || ':' || $2)))
       INSERT INTO ${table} (${columns})
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM serialised
       ON CONFLICT (store, owner, id) DO NOTHING`,
    );
  }

  /** Resolves true once the row is committed, false when the owner already had its id. */
  append(message: ArchivedMessage): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const folded = foldText(message.text);
      const pending: Pending = { message, folded, bytes: sizeOf(message, folded), resolve, reject };
      // Behind appends that already wait, even when this one would fit: the order is the calls'.
      if (this.#waiting.length === 0 && this.#fits(pending)) this.#take(pending);
      else {
        this.#waiting.push(pending);
        this.#stats.waitingForRoom = this.#waiting.length;
      }
    });
  }

  get stats(): Readonly<MessageAppendStats> {
    return { ...this.#stats };
  }

  /**
   * Undefined while the queue takes appends now; while it is full (or appends wait for room),
   * a promise resolved once it is not. Every caller of one full spell gets the same promise,
   * so they go on in the order they asked.
   */
  roomToAppend(): Promise<void> | undefined {
    if (!this.#full()) return undefined;
    this.#stats.callersWaiting++;
    return this.#room.wait();
  }

  #full(): boolean {
    const s = this.#stats;
    return (
      this.#waiting.length > 0 ||
      s.queuedRows >= this.#limits.queueRows ||
      s.queuedBytes >= this.#limits.queueBytes
    );
  }

  #fits(p: Pending): boolean {
    const s = this.#stats;
    if (s.queuedRows === 0) return true;
    return s.queuedRows < this.#limits.queueRows && s.queuedBytes + p.bytes <= this.#limits.queueBytes;
  }

  #take(p: Pending): void {
    const s = this.#stats;
    this.#queue.push(p);
    s.queuedRows++;
    s.queuedBytes += p.bytes;
    s.peakQueuedRows = Math.max(s.peakQueuedRows, s.queuedRows);
    s.peakQueuedBytes = Math.max(s.peakQueuedBytes, s.queuedBytes);
    // At the end of this turn, so the turn's other appends go in the same write.
    if (!this.#scheduled && s.running < this.#limits.inFlight) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#start();
      });
    }
  }

  /** Starts writes while there are free slots and rows whose owners are not being written. */
  #start(): void {
    while (this.#stats.running < this.#limits.inFlight) {
      const batch = this.#nextBatch();
      if (batch.length === 0) return;
      const s = this.#stats;
      s.running++;
      s.peakRunning = Math.max(s.peakRunning, s.running);
      s.largestBatch = Math.max(s.largestBatch, batch.length);
      void this.#write(batch);
    }
  }

  /**
   * The next write's rows, in append order: rows of owners in a running write stay (with every
   * later row of theirs); the write stops at its size limits or at an id it already holds (the
   * second is then a duplicate or not by what the first does, known only after it).
   */
  #nextBatch(): Pending[] {
    const batch: Pending[] = [];
    const skipped: Pending[] = [];
    const keys = new Set<string>();
    let bytes = 0;
    let i = 0;
    for (; i < this.#queue.length; i++) {
      const p = this.#queue[i]!;
      if (this.#busy.has(p.message.owner)) {
        skipped.push(p);
        continue;
      }
      const key = keyOf(p.message);
      if (
        batch.length >= this.#limits.batchRows ||
        (batch.length > 0 && bytes + p.bytes > this.#limits.batchBytes) ||
        keys.has(key)
      )
        break;
      batch.push(p);
      keys.add(key);
      bytes += p.bytes;
    }
    if (batch.length === 0) return batch;
    this.#queue = i === this.#queue.length ? skipped : skipped.concat(this.#queue.slice(i));
    for (const p of batch) this.#busy.add(p.message.owner);
    return batch;
  }

  async #write(batch: Pending[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.#insertBatch(batch);
    } catch (error) {
      if (rowMayCause(error)) {
        this.#stats.rowByRow++;
        outcomes = await this.#insertEach(batch);
      } else outcomes = batch.map(() => ({ error }));
    }
    // Counted before the callers hear, so what they see next (stats, room) is after this write.
    this.#finished(batch);
    batch.forEach((p, i) => {
      const outcome = outcomes[i]!;
      if (typeof outcome === "boolean") p.resolve(outcome);
      else p.reject(outcome.error);
    });
  }

  async #insertBatch(batch: Pending[]): Promise<boolean[]> {
    const values = [
      this.#store,
      batch.map((p) => p.message.owner),
      batch.map((p) => p.message.id),
      batch.map((p) => p.message.peer),
      batch.map((p) => p.message.peerResource),
      batch.map((p) => p.message.at),
      batch.map((p) => p.message.direction),
      batch.map((p) => p.message.stanza),
      batch.map((p) => p.message.text),
      batch.map((p) => p.folded),
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        const inserted = await this.#db.query<{ owner: string; id: string }>(this.#batch, values);
        const keys = new Set(inserted.map((r) => `${r.owner}\u0000${r.id}`));
        return batch.map((p) => keys.has(keyOf(p.message)));
      } catch (error) {
        // Aborted to resolve a conflict with another transaction (an account being deleted):
        // nothing was written, and the remedy is to run it again.
        if (attempt >= TRANSACTION_ATTEMPTS || !abortedByConflict(error)) throw error;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /** One statement per row, in append order; each row's failure is its own. */
  async #insertEach(batch: Pending[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const p of batch) {
      const m = p.message;
      const values = [
        this.#store,
        m.owner,
        m.id,
        m.peer,
        m.peerResource,
        m.at,
        m.direction,
        m.stanza,
        m.text,
        p.folded,
      ];
      const write = () => this.#db.execute(this.#one, values);
      try {
        const n = this.#table === "account_messages" ? await forAccount(m.owner, write) : await write();
        outcomes.push(n === 1);
      } catch (error) {
        outcomes.push({ error });
      }
    }
    return outcomes;
  }

  #finished(batch: Pending[]): void {
    const s = this.#stats;
    s.running--;
    s.batches++;
    for (const p of batch) {
      this.#busy.delete(p.message.owner);
      s.queuedRows--;
      s.queuedBytes -= p.bytes;
    }
    // Room for waiting appends, first come first taken.
    let n = 0;
    while (n < this.#waiting.length && this.#fits(this.#waiting[n]!)) this.#take(this.#waiting[n++]!);
    if (n > 0) {
      this.#waiting.splice(0, n);
      s.waitingForRoom = this.#waiting.length;
    }
    if (!this.#full() && this.#room.open()) s.callersWaiting = 0;
    this.#start();
  }
}
