import type Database from "better-sqlite3";
import type { OfflineMessage, OfflineStore } from "../../core/storage/types.js";
import type { AccountGuard } from "./account-guard.js";

interface MessageRow {
  id: number;
  stanza: string;
  stored_at: number;
}

export class SqliteOfflineStore implements OfflineStore {
  readonly #count: Database.Statement<[string], number>;
  readonly #insert: Database.Statement<[string, string, number], unknown>;
  readonly #select: Database.Statement<[string], MessageRow>;
  readonly #deleteOne: Database.Statement<[string, number], unknown>;
  readonly #deleteAll: Database.Statement<[string], unknown>;

  readonly #push: (username: string, stanza: string, quota: number) => boolean;
  readonly #removeMany: (username: string, ids: number[]) => void;

  constructor(
    db: Database.Database,
    guard: AccountGuard,
    private readonly now: () => number,
  ) {
    this.#count = db
      .prepare<[string], number>("SELECT count(*) FROM offline_messages WHERE username = ?")
      .pluck();
    this.#insert = db.prepare("INSERT INTO offline_messages (username, stanza, stored_at) VALUES (?, ?, ?)");
    this.#select = db.prepare(
      "SELECT id, stanza, stored_at FROM offline_messages WHERE username = ? ORDER BY id",
    );
    // Scoped by account so one user's delivery can never remove another user's messages.
    this.#deleteOne = db.prepare("DELETE FROM offline_messages WHERE username = ? AND id = ?");
    this.#deleteAll = db.prepare("DELETE FROM offline_messages WHERE username = ?");

    // IMMEDIATE: the count and the insert happen under one write lock, also across processes.
    const push = db.transaction((username: string, stanza: string, quota: number) => {
      guard.require(username);
      if (this.#count.get(username)! >= quota) return false;
      this.#insert.run(username, stanza, this.now());
      return true;
    });
    this.#push = (username, stanza, quota) => push.immediate(username, stanza, quota);

    const removeMany = db.transaction((username: string, ids: number[]) => {
      for (const id of ids) this.#deleteOne.run(username, id);
    });
    this.#removeMany = (username, ids) => removeMany.immediate(username, ids);
  }

  async push(username: string, stanza: string, quota: number): Promise<boolean> {
    if (Number.isNaN(quota)) throw new RangeError("quota must be a number");
    return this.#push(username, stanza, quota);
  }

  async list(username: string): Promise<OfflineMessage[]> {
    return this.#select
      .all(username)
      .map((row) => ({ id: row.id, stanza: row.stanza, storedAt: row.stored_at }));
  }

  async count(username: string): Promise<number> {
    return this.#count.get(username)!;
  }

  async remove(username: string, ids?: number[]): Promise<void> {
    if (ids === undefined) this.#deleteAll.run(username);
    else this.#removeMany(username, ids);
  }
}
