/**
 * Blocklists kept in memory, so checking a stanza against its recipient's
 * blocklist is a few Set lookups and stays synchronous on the hot path. Lists
 * are loaded on first use and the least recently used ones are forgotten past
 * `maxEntries`. This module is the only writer of the blocklist store, and it
 * changes the cached set right after each write.
 */
import type { BlocklistStore } from "../../core/storage/types.js";

export class BlocklistCache {
  private readonly entries = new Map<string, Set<string> | Promise<Set<string>>>();

  constructor(
    private readonly store: BlocklistStore,
    private readonly maxEntries: number,
  ) {}

  /** The account's blocklist: the live set when cached, else a promise of it. */
  get(username: string): Set<string> | Promise<Set<string>> {
    const cached = this.entries.get(username);
    if (cached !== undefined) {
      // Re-insert: Map order is least recently used first.
      this.entries.delete(username);
      this.entries.set(username, cached);
      return cached;
    }
    const loading: Promise<Set<string>> = this.store.list(username).then(
      (jids) => {
        const set = new Set(jids);
        if (this.entries.get(username) === loading) this.entries.set(username, set);
        return set;
      },
      (err: unknown) => {
        if (this.entries.get(username) === loading) this.entries.delete(username);
        throw err;
      },
    );
    this.entries.set(username, loading);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return loading;
  }

  forget(username: string): void {
    this.entries.delete(username);
  }

  get size(): number {
    return this.entries.size;
  }
}
