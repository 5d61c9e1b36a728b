import type Database from "better-sqlite3";
import type { ArchiveEntry, ArchiveStore, DocumentStore } from "../../core/storage/types.js";

/** `LIKE` with the prefix's own % and _ taken literally. */
function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => "\\" + c) + "%";
}

export class SqliteDocumentStore<T> implements DocumentStore<T> {
  readonly #store: string;
  readonly #select: Database.Statement<[string, string], string>;
  readonly #upsert: Database.Statement<[string, string, string], unknown>;
  readonly #delete: Database.Statement<[string, string], unknown>;
  readonly #list: Database.Statement<[string, string, number], { key: string; value: string }>;
  readonly #count: Database.Statement<[string, string], number>;
  readonly #update: (key: string, fn: (current: T | undefined) => T | undefined) => T | undefined;

  constructor(db: Database.Database, store: string) {
    this.#store = store;
    this.#select = db
      .prepare<[string, string], string>("SELECT value FROM documents WHERE store = ? AND key = ?")
      .pluck();
    this.#upsert = db.prepare(
      `INSERT INTO documents (store, key, value) VALUES (?, ?, ?)
       ON CONFLICT (store, key) DO UPDATE SET value = excluded.value`,
    );
    this.#delete = db.prepare("DELETE FROM documents WHERE store = ? AND key = ?");
    this.#list = db.prepare(
      "SELECT key, value FROM documents WHERE store = ? AND key LIKE ? ESCAPE '\\' ORDER BY key LIMIT ?",
    );
    this.#count = db
      .prepare<[string, string], number>(
        "SELECT count(*) FROM documents WHERE store = ? AND key LIKE ? ESCAPE '\\'",
      )
      .pluck();
    // IMMEDIATE: take the write lock before reading, so another process cannot slip in between.
    const tx = db.transaction((key: string, fn: (current: T | undefined) => T | undefined) => {
      const raw = this.#select.get(this.#store, key);
      const next = fn(raw === undefined ? undefined : (JSON.parse(raw) as T));
      if (next === undefined) this.#delete.run(this.#store, key);
      else this.#upsert.run(this.#store, key, JSON.stringify(next));
      return next;
    });
    this.#update = (key, fn) => tx.immediate(key, fn);
  }

  async get(key: string): Promise<T | undefined> {
    const raw = this.#select.get(this.#store, key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async put(key: string, value: T): Promise<void> {
    this.#upsert.run(this.#store, key, JSON.stringify(value));
  }

  async delete(key: string): Promise<boolean> {
    return (this.#delete.run(this.#store, key) as Database.RunResult).changes > 0;
  }

  async list(opts: { prefix?: string; limit?: number } = {}): Promise<{ key: string; value: T }[]> {
    return this.#list
      .all(this.#store, likePrefix(opts.prefix ?? ""), opts.limit ?? -1)
      .map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
  }

  async count(opts: { prefix?: string } = {}): Promise<number> {
    return this.#count.get(this.#store, likePrefix(opts.prefix ?? "")) ?? 0;
  }

  async update(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    return this.#update(key, fn);
  }
}

interface ArchiveRow {
  id: number;
  at: number;
  kind: string;
  data: string;
}

export class SqliteArchiveStore<T> implements ArchiveStore<T> {
  readonly #db: Database.Database;
  readonly #store: string;
  readonly #insert: Database.Statement<[string, number, string, string], unknown>;
  readonly #prune: Database.Statement<[string, number], unknown>;

  constructor(db: Database.Database, store: string) {
    this.#db = db;
    this.#store = store;
    this.#insert = db.prepare("INSERT INTO archive (store, at, kind, data) VALUES (?, ?, ?, ?)");
    this.#prune = db.prepare("DELETE FROM archive WHERE store = ? AND at < ?");
  }

  async append(entry: { at: number; kind: string; data: T }): Promise<number> {
    const r = this.#insert.run(
      this.#store,
      entry.at,
      entry.kind,
      JSON.stringify(entry.data),
    ) as Database.RunResult;
    return Number(r.lastInsertRowid);
  }

  async query(
    opts: {
      kind?: string;
      kindPrefix?: string;
      since?: number;
      until?: number;
      afterId?: number;
      limit?: number;
      newestFirst?: boolean;
    } = {},
  ): Promise<ArchiveEntry<T>[]> {
    const where = ["store = ?"];
    const params: (string | number)[] = [this.#store];
    if (opts.kind !== undefined) {
      where.push("kind = ?");
      params.push(opts.kind);
    }
    if (opts.kindPrefix !== undefined) {
      where.push("kind LIKE ? ESCAPE '\\'");
      params.push(likePrefix(opts.kindPrefix));
    }
    if (opts.since !== undefined) {
      where.push("at >= ?");
      params.push(opts.since);
    }
    if (opts.until !== undefined) {
      where.push("at < ?");
      params.push(opts.until);
    }
    if (opts.afterId !== undefined) {
      where.push("id > ?");
      params.push(opts.afterId);
    }
    const sql = `SELECT id, at, kind, data FROM archive WHERE ${where.join(" AND ")} ORDER BY id ${
      opts.newestFirst ? "DESC" : "ASC"
    } LIMIT ?`;
    params.push(opts.limit ?? -1);
    return (this.#db.prepare(sql).all(...params) as ArchiveRow[]).map((r) => ({
      id: r.id,
      at: r.at,
      kind: r.kind,
      data: JSON.parse(r.data) as T,
    }));
  }

  async prune(before: number): Promise<number> {
    return (this.#prune.run(this.#store, before) as Database.RunResult).changes;
  }
}
