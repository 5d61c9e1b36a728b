/**
 * A storage that reads through to the real one and keeps every write to itself, so a
 * command can run for real (same validation, same result) without changing anything:
 * the policy editor runs `policy set` on it to learn what the saved policy would be.
 * Only documents and the audit archive are available; a command that touches anything
 * else fails instead of writing for real.
 */
import type { ArchiveEntry, ArchiveStore, DocumentStore, Storage } from "../../core/storage/types.js";

const DELETED = Symbol("deleted");

class OverlayDocuments<T> implements DocumentStore<T> {
  private readonly writes = new Map<string, T | typeof DELETED>();

  constructor(private readonly base: DocumentStore<T>) {}

  async get(key: string): Promise<T | undefined> {
    if (this.writes.has(key)) {
      const v = this.writes.get(key)!;
      return v === DELETED ? undefined : structuredClone(v);
    }
    return this.base.get(key);
  }

  async put(key: string, value: T): Promise<void> {
    this.writes.set(key, structuredClone(value));
  }

  async delete(key: string): Promise<boolean> {
    const existed = (await this.get(key)) !== undefined;
    this.writes.set(key, DELETED);
    return existed;
  }

  async list(opts: { prefix?: string; limit?: number } = {}): Promise<{ key: string; value: T }[]> {
    const prefix = opts.prefix ?? "";
    const merged = new Map<string, T>();
    for (const { key, value } of await this.base.list({ prefix })) merged.set(key, value);
    for (const [key, value] of this.writes) {
      if (!key.startsWith(prefix)) continue;
      if (value === DELETED) merged.delete(key);
      else merged.set(key, structuredClone(value));
    }
    const out = [...merged]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => ({ key, value }));
    return opts.limit === undefined ? out : out.slice(0, opts.limit);
  }

  async count(opts: { prefix?: string } = {}): Promise<number> {
    return (await this.list(opts)).length;
  }

  async update(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    const next = fn(await this.get(key));
    if (next === undefined) await this.delete(key);
    else await this.put(key, next);
    return next;
  }
}

/** Appends are accepted and dropped; queries see the real log. */
class DiscardingArchive<T> implements ArchiveStore<T> {
  constructor(private readonly base: ArchiveStore<T>) {}
  async append(): Promise<number> {
    return 0;
  }
  query(opts?: Parameters<ArchiveStore<T>["query"]>[0]): Promise<ArchiveEntry<T>[]> {
    return this.base.query(opts);
  }
  async prune(): Promise<number> {
    return 0;
  }
}

function unavailable(what: string): never {
  throw new Error(`${what} is not available in a dry run`);
}

/** A storage whose writes vanish: for previews only. */
export function dryRunStorage(real: Storage): Storage {
  const documents = new Map<string, OverlayDocuments<unknown>>();
  return {
    get accounts(): never {
      return unavailable("accounts");
    },
    get roster(): never {
      return unavailable("roster");
    },
    get offline(): never {
      return unavailable("offline");
    },
    get blocklist(): never {
      return unavailable("blocklist");
    },
    keyValue: () => unavailable("keyValue"),
    messages: () => unavailable("messages"),
    documents<T>(store: string): DocumentStore<T> {
      let d = documents.get(store);
      if (!d) {
        d = new OverlayDocuments(real.documents(store));
        documents.set(store, d);
      }
      return d as DocumentStore<T>;
    },
    archive<T>(store: string): ArchiveStore<T> {
      return new DiscardingArchive(real.archive<T>(store));
    },
    async close(): Promise<void> {},
  };
}
