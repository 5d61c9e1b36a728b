import {
  type ArchivedMessage,
  ArchiveIdNotFound,
  type MessageArchiveStore,
  type MessageQuery,
} from "../../core/storage/types.js";
import { foldText } from "../fold.js";
import type { MessageAppendLimits } from "./append-limits.js";
import { type PostgresDatabase, type Statement, sql } from "./database.js";
import { MessageAppendQueue, type MessageAppendStats, type MessageTable } from "./message-appends.js";

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

/** `LIKE` pattern for "contains", with the text's own % _ \ taken literally. */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

interface Filter {
  use(q: MessageQuery): boolean;
  where(param: () => string): string;
  values(q: MessageQuery): unknown[];
}

/** Filters in a fixed order: each combination is one named statement per table. */
const FILTERS: Filter[] = [
  { use: (q) => q.peer !== undefined, where: (p) => `peer = ${p()}`, values: (q) => [q.peer] },
  {
    use: (q) => q.peer !== undefined && q.peerResource !== undefined,
    where: (p) => `peer_resource = ${p()}`,
    values: (q) => [q.peerResource],
  },
  { use: (q) => q.start !== undefined, where: (p) => `at >= ${p()}`, values: (q) => [q.start] },
  { use: (q) => q.end !== undefined, where: (p) => `at <= ${p()}`, values: (q) => [q.end] },
  { use: (q) => q.ids !== undefined, where: (p) => `id = ANY (${p()}::text[])`, values: (q) => [q.ids] },
  {
    use: (q) => q.text !== undefined && q.text !== "",
    where: (p) => `folded LIKE ${p()}`,
    values: (q) => [containsPattern(foldText(q.text!))],
  },
];

/**
 * Messages of one store in `account_messages` (owners are accounts, deleted with them) or
 * `room_messages` (free owners); `seq` is the archive order that paging follows.
 */
export class PostgresMessageArchiveStore implements MessageArchiveStore {
  readonly #statements = new Map<string, Statement>();
  readonly #appends: MessageAppendQueue;
  readonly #seqOf: Statement;
  readonly #get: Statement;
  /** The last append of each owner, settled either way. */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(
    private readonly db: PostgresDatabase,
    readonly store: string,
    private readonly table: MessageTable,
    appendLimits: MessageAppendLimits,
  ) {
    this.#appends = new MessageAppendQueue(db, store, table, appendLimits);
    this.#seqOf = sql(
      `${table}.seq-of`,
      `SELECT seq FROM ${table} WHERE store = $1 AND owner = $2 AND id = $3`,
    );
    this.#get = sql(
      `${table}.get`,
      `SELECT ${COLUMNS} FROM ${table} WHERE store = $1 AND owner = $2 AND id = $3`,
    );
  }

  /**
   * Written in batches (message-appends.ts), an owner's appends in the order they were made (a
   * caller need not wait for one before making the next); reads of that owner wait for them.
   */
  append(m: ArchivedMessage): Promise<boolean> {
    const write = this.#appends.append(m);
    const tail = write.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(m.owner, tail);
    void tail.then(() => {
      if (this.#tails.get(m.owner) === tail) this.#tails.delete(m.owner);
    });
    return write;
  }

  /** See MessageArchiveStore: the append queue's room (backpressure). */
  roomToAppend(): Promise<void> | undefined {
    return this.#appends.roomToAppend();
  }

  /** The appends' queue and writes, now and at their most (what tests and diagnosis look at). */
  get appendStats(): MessageAppendStats {
    return this.#appends.stats;
  }

  /** Resolves once every append made before it is written (or has failed). */
  drain(): Promise<void> {
    return this.#settled();
  }

  /** Waits for the appends made so far (of one owner, or of all). */
  async #settled(owner?: string): Promise<void> {
    if (owner !== undefined) await this.#tails.get(owner);
    else await Promise.all([...this.#tails.values()]);
  }

  async query(q: MessageQuery): Promise<{ messages: ArchivedMessage[]; complete: boolean }> {
    await this.#settled(q.owner);
    const after = q.afterId === undefined ? undefined : await this.#seq(q.owner, q.afterId);
    const before = q.beforeId === undefined ? undefined : await this.#seq(q.owner, q.beforeId);
    const used = FILTERS.filter((f) => f.use(q));
    const order = q.newestFirst ? "DESC" : "ASC";
    const paging = `${after === undefined ? 0 : 1}${before === undefined ? 0 : 1}`;
    const statement = this.#statement(`query:${this.#mask(q)}:${paging}:${order}`, (param) => {
      const where = this.#where(used, param);
      if (after !== undefined) where.push(`seq > ${param()}`);
      if (before !== undefined) where.push(`seq < ${param()}`);
      return `SELECT ${COLUMNS} FROM ${this.table} WHERE ${where.join(" AND ")} ORDER BY seq ${order} LIMIT ${param()}`;
    });
    const limit = q.limit;
    const values = [
      this.store,
      q.owner,
      ...used.flatMap((f) => f.values(q)),
      ...(after === undefined ? [] : [after]),
      ...(before === undefined ? [] : [before]),
      // One row more than asked tells whether the result goes on.
      limit === undefined ? null : limit + 1,
    ];
    const rows = await this.db.query<MessageRow>(statement, values);
    const complete = limit === undefined || rows.length <= limit;
    if (!complete) rows.pop();
    return { messages: rows.map(toMessage), complete };
  }

  async count(q: MessageQuery): Promise<number> {
    await this.#settled(q.owner);
    const used = FILTERS.filter((f) => f.use(q));
    const statement = this.#statement(
      `count:${this.#mask(q)}`,
      (param) => `SELECT count(*) AS n FROM ${this.table} WHERE ${this.#where(used, param).join(" AND ")}`,
    );
    const [row] = await this.db.query<{ n: number }>(statement, [
      this.store,
      q.owner,
      ...used.flatMap((f) => f.values(q)),
    ]);
    return row!.n;
  }

  async get(owner: string, id: string): Promise<ArchivedMessage | undefined> {
    await this.#settled(owner);
    const [row] = await this.db.query<MessageRow>(this.#get, [this.store, owner, id]);
    return row && toMessage(row);
  }

  async remove(owner: string, ids?: string[]): Promise<number> {
    await this.#settled(owner);
    if (ids === undefined) {
      const all = this.#statement(
        "remove-all",
        () => `DELETE FROM ${this.table} WHERE store = $1 AND owner = $2`,
      );
      return this.db.execute(all, [this.store, owner]);
    }
    if (ids.length === 0) return 0;
    const some = this.#statement(
      "remove-some",
      () => `DELETE FROM ${this.table} WHERE store = $1 AND owner = $2 AND id = ANY ($3::text[])`,
    );
    return this.db.execute(some, [this.store, owner, ids]);
  }

  async prune(before: number, owner?: string): Promise<number> {
    await this.#settled(owner);
    if (owner === undefined) {
      const all = this.#statement(
        "prune-all",
        () => `DELETE FROM ${this.table} WHERE store = $1 AND at < $2`,
      );
      return this.db.execute(all, [this.store, before]);
    }
    const one = this.#statement(
      "prune-owner",
      () => `DELETE FROM ${this.table} WHERE store = $1 AND at < $2 AND owner = $3`,
    );
    return this.db.execute(one, [this.store, before, owner]);
  }

  async #seq(owner: string, id: string): Promise<number> {
    const [row] = await this.db.query<{ seq: number }>(this.#seqOf, [this.store, owner, id]);
    if (!row) throw new ArchiveIdNotFound(id);
    return row.seq;
  }

  #mask(q: MessageQuery): string {
    return FILTERS.map((f) => (f.use(q) ? "1" : "0")).join("");
  }

  /** The conditions: store ($1), owner ($2), then the filters' parameters in order. */
  #where(used: Filter[], param: () => string): string[] {
    return ["store = $1", "owner = $2", ...used.map((f) => f.where(param))];
  }

  /** The named statement for this shape, built (and declared) on first use. */
  #statement(shape: string, build: (param: () => string) => string): Statement {
    let statement = this.#statements.get(shape);
    if (!statement) {
      let n = 2;
      statement = sql(
        `${this.table}.${shape}`,
        build(() => `$${++n}`),
      );
      this.#statements.set(shape, statement);
    }
    return statement;
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
