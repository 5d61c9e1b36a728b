import type { DocumentStore } from "../../core/storage/types.js";
import { prefixUpperBound } from "../prefix.js";
import { type PostgresDatabase, sql } from "./database.js";

const GET = sql("documents.get", "SELECT value FROM documents WHERE store = $1 AND key = $2");
const PUT = sql(
  "documents.put",
  `INSERT INTO documents (store, key, value) VALUES ($1, $2, $3::json)
   ON CONFLICT (store, key) DO UPDATE SET value = excluded.value`,
);
const DELETE = sql("documents.delete", "DELETE FROM documents WHERE store = $1 AND key = $2");
// Prefixes as key ranges ($3 NULL: no upper bound), so they use the primary key's index.
const LIST = sql(
  "documents.list",
  `SELECT key, value FROM documents
   WHERE store = $1 AND key >= $2 AND ($3::text IS NULL OR key < $3)
   ORDER BY key LIMIT $4`,
);
const COUNT = sql(
  "documents.count",
  `SELECT count(*) AS n FROM documents
   WHERE store = $1 AND key >= $2 AND ($3::text IS NULL OR key < $3)`,
);
const SELECT_FOR_UPDATE = sql(
  "documents.select-for-update",
  "SELECT value FROM documents WHERE store = $1 AND key = $2 FOR UPDATE",
);
const UPDATE = sql("documents.update", "UPDATE documents SET value = $3::json WHERE store = $1 AND key = $2");
const INSERT_NEW = sql(
  "documents.insert-new",
  "INSERT INTO documents (store, key, value) VALUES ($1, $2, $3::json) ON CONFLICT (store, key) DO NOTHING",
);

/** Another process created the document between our read and our insert: read it again. */
class CreatedMeanwhile extends Error {
  constructor(key: string) {
    super(`document ${key} was created by another process during every attempt to update it`);
  }
}

/** Attempts of an update whose document keeps being created by others meanwhile. */
const UPDATE_ATTEMPTS = 10;

export class PostgresDocumentStore<T> implements DocumentStore<T> {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly store: string,
  ) {}

  async get(key: string): Promise<T | undefined> {
    const [row] = await this.db.query<{ value: T }>(GET, [this.store, key]);
    return row?.value;
  }

  async put(key: string, value: T): Promise<void> {
    await this.db.execute(PUT, [this.store, key, JSON.stringify(value)]);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.db.execute(DELETE, [this.store, key])) > 0;
  }

  async list(opts: { prefix?: string; limit?: number } = {}): Promise<{ key: string; value: T }[]> {
    const prefix = opts.prefix ?? "";
    return this.db.query<{ key: string; value: T }>(LIST, [
      this.store,
      prefix,
      prefixUpperBound(prefix) ?? null,
      opts.limit ?? null,
    ]);
  }

  async count(opts: { prefix?: string } = {}): Promise<number> {
    const prefix = opts.prefix ?? "";
    const [row] = await this.db.query<{ n: number }>(COUNT, [
      this.store,
      prefix,
      prefixUpperBound(prefix) ?? null,
    ]);
    return row!.n;
  }

  /**
   * An existing document is locked (FOR UPDATE) from the read to the commit, so writers in
   * other processes wait. An absent one cannot be locked: the new document is inserted only
   * if still absent, and when another process created it meanwhile the whole update starts
   * again with that document (so `fn` may run more than once).
   */
  async update(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(async (tx) => {
          const [row] = await tx.query<{ value: T }>(SELECT_FOR_UPDATE, [this.store, key]);
          const next = fn(row?.value);
          if (row) {
            if (next === undefined) await tx.execute(DELETE, [this.store, key]);
            else await tx.execute(UPDATE, [this.store, key, JSON.stringify(next)]);
          } else if (next !== undefined) {
            const inserted = await tx.execute(INSERT_NEW, [this.store, key, JSON.stringify(next)]);
            if (inserted === 0) throw new CreatedMeanwhile(key);
          }
          return next;
        });
      } catch (error) {
        if (error instanceof CreatedMeanwhile && attempt < UPDATE_ATTEMPTS) continue;
        throw error;
      }
    }
  }
}
