/**
 * When each interconnection warning was last sent, so a link in warn mode is told at most
 * once per interval: a component by its domain ("gateway:<domain>"), a remote server's user
 * by their bare JID ("peering:<jid>"). The instants live in documents("interconnect-warnings"),
 * so restarts and several links do not repeat a warning; a bounded cache spares the storage
 * a read for every stanza of a busy federated user.
 */
import type { Clock } from "../../core/clock.js";
import type { DocumentStore, Storage } from "../../core/storage/types.js";

const STORE = "interconnect-warnings";
const MAX_CACHED = 50_000;

export class WarningLedger {
  private readonly docs: DocumentStore<number>;
  /** Last warning instants known here (a hit that is recent enough needs no storage read). */
  private readonly cache = new Map<string, number>();
  /** Keys being decided, so two stanzas arriving together send one warning. */
  private readonly pending = new Set<string>();

  constructor(
    storage: Storage,
    private readonly clock: Clock,
    private readonly intervalMs: number,
  ) {
    this.docs = storage.documents<number>(STORE);
  }

  /**
   * Calls `send` unless `key` was warned within the interval, and records the instant;
   * resolves true when it sent. The record is written first: a failed send is not retried
   * before the interval is over (a warning must never flood a link).
   */
  async maybeWarn(key: string, send: () => void): Promise<boolean> {
    const now = this.clock.now();
    const cached = this.cache.get(key);
    if ((cached !== undefined && now - cached < this.intervalMs) || this.pending.has(key)) return false;
    this.pending.add(key);
    try {
      let sent = false;
      await this.docs.update(key, (last) => {
        sent = false;
        if (typeof last === "number" && now - last < this.intervalMs) {
          this.remember(key, last);
          return last;
        }
        sent = true;
        return now;
      });
      if (!sent) return false;
      this.remember(key, now);
      send();
      return true;
    } finally {
      this.pending.delete(key);
    }
  }

  private remember(key: string, at: number): void {
    this.cache.delete(key);
    this.cache.set(key, at);
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
  }
}
