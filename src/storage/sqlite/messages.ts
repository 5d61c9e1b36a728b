import type Database from "better-sqlite3";
import {
  type ArchivedMessage,
  ArchiveIdNotFound,
  type MessageArchiveStore,
  type MessageQuery,
} from "../../core/storage/types.js";
import { foldText } from "../fold.js";
import type { AccountGuard } from "./account-guard.js";
import type { ArchiveWrites, MessageTable } from "./archive-writes.js";

interface MessageRow {
  id: string;
  owner: string;
  peer: string;
  peer_resource: string;
  at: number;
  direction: "in" | "out";
  stanza: string;
  text: string;
}

const COLUMNS = "id, owner, peer, peer_resource, at, direction, stanza, text";

/**
 * Rows one DELETE of a large removal takes at most. A removal runs on the server's thread:
 * one statement for a year of history (enabling retention on an old server, deleting a busy
 * room's archive) stopped every stream for seconds (300,000 rows: 1.5 s, measured); in
 * batches, the streams run between them.
 */
export const REMOVAL_BATCH_ROWS = 2000;

/**
 * Runs a DELETE of at most REMOVAL_BATCH_ROWS rows until it removes fewer, letting the event
 * loop turn between batches; returns how many rows went.
 */
export async function removeInBatches(removeBatch: () => number): Promise<number> {
  let removed = 0;
  for (;;) {
    const n = removeBatch();
    removed += n;
    if (n < REMOVAL_BATCH_ROWS) return removed;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export { foldText } from "../fold.js";

/**
 * Messages of one store, in one of two tables of the same shape: `account_messages`
 * (owners are accounts, deleted with them) or `room_messages` (free owners). `seq`
 * (AUTOINCREMENT) is the archive order that paging follows.
 */
export class SqliteMessageArchiveStore implements MessageArchiveStore {
  readonly #db: Database.Database;
  readonly #table: MessageTable;
  readonly #store: string;
  readonly #writes: ArchiveWrites;
  readonly #guarded: boolean;
  readonly #seqOf: Database.Statement<[string, string, string], number>;
  readonly #get: Database.Statement<[string, string, string], MessageRow>;

  constructor(db: Database.Database, store: string, guard: AccountGuard | undefined, writes: ArchiveWrites) {
    this.#db = db;
    this.#writes = writes;
    this.#store = store;
    this.#guarded = guard !== undefined;
    this.#table = guard ? "account_messages" : "room_messages";
    this.#seqOf = db
      .prepare<[string, string, string], number>(
        `SELECT seq FROM ${this.#table} WHERE store = ? AND owner = ? AND id = ?`,
      )
      .pluck();
    this.#get = db.prepare(`SELECT ${COLUMNS} FROM ${this.#table} WHERE store = ? AND owner = ? AND id = ?`);
  }

  /**
   * Written in batches (archive-writes.ts); every read and removal first waits for the appends
   * made before it, so it sees them.
   */
  async append(m: ArchivedMessage): Promise<boolean> {
    // No account check here: the foreign key refuses a missing account when the batch is
    // written, and that row alone then fails with UnknownAccountError.
    return this.#writes.append({
      table: this.#guarded ? "account_messages" : "room_messages",
      row: [
        this.#store,
        m.id,
        m.owner,
        m.peer,
        m.peerResource,
        m.at,
        m.direction,
        m.stanza,
        m.text,
        foldText(m.text),
      ],
    });
  }

  get store(): string {
    return this.#store;
  }

  /** See MessageArchiveStore: the writes' room (backpressure), shared by every store of the file. */
  roomToAppend(): Promise<void> | undefined {
    return this.#writes.roomToAppend(this.#store);
  }

  async query(q: MessageQuery): Promise<{ messages: ArchivedMessage[]; complete: boolean }> {
    await this.#writes.drain();
    const { where, params } = this.#filters(q, true);
    const limit = q.limit ?? -1;
    const sql = `SELECT ${COLUMNS} FROM ${this.#table} WHERE ${where.join(" AND ")}
      ORDER BY seq ${q.newestFirst ? "DESC" : "ASC"} LIMIT ?`;
    // One row more than asked tells whether the result goes on.
    const rows = this.#db.prepare(sql).all(...params, limit < 0 ? -1 : limit + 1) as MessageRow[];
    const complete = limit < 0 || rows.length <= limit;
    if (!complete) rows.pop();
    return { messages: rows.map(toMessage), complete };
  }

  async count(q: MessageQuery): Promise<number> {
    await this.#writes.drain();
    const { where, params } = this.#filters(q, false);
    return this.#db
      .prepare(`SELECT count(*) FROM ${this.#table} WHERE ${where.join(" AND ")}`)
      .pluck()
      .get(...params) as number;
  }

  async get(owner: string, id: string): Promise<ArchivedMessage | undefined> {
    await this.#writes.drain();
    const row = this.#get.get(this.#store, owner, id);
    return row ? toMessage(row) : undefined;
  }

  async remove(owner: string, ids?: string[]): Promise<number> {
    await this.#writes.drain();
    if (ids === undefined) {
      return this.#removeInBatches("owner = ?", [owner]);
    }
    if (ids.length === 0) return 0;
    const remove = this.#db.prepare(`DELETE FROM ${this.#table} WHERE store = ? AND owner = ? AND id = ?`);
    return this.#db.transaction(() =>
      ids.reduce((n, id) => n + remove.run(this.#store, owner, id).changes, 0),
    )();
  }

  async prune(before: number, owner?: string): Promise<number> {
    await this.#writes.drain();
    if (owner === undefined) return this.#removeInBatches("at < ?", [before]);
    return this.#removeInBatches("owner = ? AND +at < ?", [owner, before]);
  }

  /**
   * Deletes the store's rows matching `where`, REMOVAL_BATCH_ROWS at a time, letting the event
   * loop run between batches. Rows appended meanwhile are not older, so a prune still ends.
   */
  async #removeInBatches(where: string, params: (string | number)[]): Promise<number> {
    const batch = this.#db.prepare(
      `DELETE FROM ${this.#table} WHERE seq IN
         (SELECT seq FROM ${this.#table} WHERE store = ? AND ${where} LIMIT ${REMOVAL_BATCH_ROWS})`,
    );
    return removeInBatches(() => batch.run(this.#store, ...params).changes);
  }

  #filters(q: MessageQuery, paging: boolean): { where: string[]; params: (string | number)[] } {
    const where = ["store = ?", "owner = ?"];
    const params: (string | number)[] = [this.#store, q.owner];
    if (q.peer !== undefined) {
      where.push("peer = ?");
      params.push(q.peer);
      if (q.peerResource !== undefined) {
        where.push("peer_resource = ?");
        params.push(q.peerResource);
      }
    }
    if (q.start !== undefined) {
      // `+at`: not through the time index, which holds every owner's rows (a query since
      // yesterday walked the whole server's since yesterday); the owner's index, then.
      where.push("+at >= ?");
      params.push(q.start);
    }
    if (q.end !== undefined) {
      where.push("+at <= ?");
      params.push(q.end);
    }
    if (q.ids !== undefined) {
      if (q.ids.length === 0) where.push("0");
      else {
        where.push(`id IN (${q.ids.map(() => "?").join(", ")})`);
        params.push(...q.ids);
      }
    }
    if (q.text !== undefined && q.text !== "") {
      where.push("instr(folded, ?) > 0");
      params.push(foldText(q.text));
    }
    if (paging) {
      for (const [id, op] of [
        [q.afterId, ">"],
        [q.beforeId, "<"],
      ] as const) {
        if (id === undefined) continue;
        const seq = this.#seqOf.get(this.#store, q.owner, id);
        if (seq === undefined) throw new ArchiveIdNotFound(id);
        where.push(`seq ${op} ?`);
        params.push(seq);
      }
    }
    return { where, params };
  }
}

function toMessage(r: MessageRow): ArchivedMessage {
  return {
    id: r.id,
    owner: r.owner,
    peer: r.peer,
    peerResource: r.peer_resource,
    at: r.at,
    direction: r.direction,
    stanza: r.stanza,
    text: r.text,
  };
}
