import type { ArchiveEntry, ArchiveStore } from "../../core/storage/types.js";
import { prefixUpperBound } from "../prefix.js";
import { type PostgresDatabase, type Statement, sql } from "./database.js";

/** Advisory lock class of archive appends (the second key is the archive's name hashed). */
const APPEND_LOCK = 0x5357_4131; // "SWA1"

// Readers page with "after id N". Identity values are taken when a row is inserted, not when
// it commits, so two concurrent appends could become visible out of id order and a reader
// could step past the smaller id before it appears. The transaction-scoped lock makes the
// appends to one archive take their ids in commit order (the lock is released after commit).
const APPEND = sql(
  "archive.append",
  `WITH serialised AS (SELECT pg_advisory_xact_lock(${APPEND_LOCK}, hashtext($1)))
   INSERT INTO archive (store, at, kind, data) SELECT $1, $2, $3, $4::json FROM serialised
   RETURNING id`,
);
const PRUNE = sql("archive.prune", "DELETE FROM archive WHERE store = $1 AND at < $2");

export interface ArchiveQuery {
  kind?: string;
  kindPrefix?: string;
  since?: number;
  until?: number;
  afterId?: number;
  limit?: number;
  newestFirst?: boolean;
}

interface Filter {
  use(q: ArchiveQuery): boolean;
  /** The condition, taking its parameter numbers from `param()`. */
  where(param: () => string): string;
  values(q: ArchiveQuery): unknown[];
}

/** The filters of a query, in a fixed order: each combination is one named statement. */
const FILTERS: Filter[] = [
  { use: (q) => q.kind !== undefined, where: (p) => `kind = ${p()}`, values: (q) => [q.kind] },
  {
    use: (q) => q.kindPrefix !== undefined,
    where: (p) => {
      const [from, to] = [p(), p()];
      return `kind >= ${from} AND (${to}::text IS NULL OR kind < ${to})`;
    },
    values: (q) => [q.kindPrefix, prefixUpperBound(q.kindPrefix!) ?? null],
  },
  { use: (q) => q.since !== undefined, where: (p) => `at >= ${p()}`, values: (q) => [q.since] },
  { use: (q) => q.until !== undefined, where: (p) => `at < ${p()}`, values: (q) => [q.until] },
  { use: (q) => q.afterId !== undefined, where: (p) => `id > ${p()}`, values: (q) => [q.afterId] },
];

const queryStatements = new Map<string, Statement>();

/** The statement for this combination of filters and order (declared on first use) and its values. */
function queryStatement(q: ArchiveQuery): { statement: Statement; values: unknown[] } {
  const used = FILTERS.filter((f) => f.use(q));
  const order = q.newestFirst ? "DESC" : "ASC";
  const name = `archive.query:${FILTERS.map((f) => (f.use(q) ? "1" : "0")).join("")}:${order}`;
  let statement = queryStatements.get(name);
  if (!statement) {
    let n = 1; // $1 is the archive's name
    const param = () => `$${++n}`;
    const where = ["store = $1", ...used.map((f) => f.where(param))];
    statement = sql(
      name,
      `SELECT id, at, kind, data FROM archive WHERE ${where.join(" AND ")} ORDER BY id ${order} LIMIT ${param()}`,
    );
    queryStatements.set(name, statement);
  }
  return { statement, values: [...used.flatMap((f) => f.values(q)), q.limit ?? null] };
}

export class PostgresArchiveStore<T> implements ArchiveStore<T> {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly store: string,
  ) {}

  async append(entry: { at: number; kind: string; data: T }): Promise<number> {
    const [row] = await this.db.query<{ id: number }>(APPEND, [
      this.store,
      entry.at,
      entry.kind,
      JSON.stringify(entry.data),
    ]);
    return row!.id;
  }

  async query(opts: ArchiveQuery = {}): Promise<ArchiveEntry<T>[]> {
    const { statement, values } = queryStatement(opts);
    return this.db.query<ArchiveEntry<T>>(statement, [this.store, ...values]);
  }

  async prune(before: number): Promise<number> {
    return this.db.execute(PRUNE, [this.store, before]);
  }
}
