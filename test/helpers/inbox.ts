/**
 * What a test client received, in order, with waiting: `next` takes the first
 * item not yet taken that matches, waiting for it if needed; `none` checks that
 * nothing matching arrives within a grace period. Timeouts are generous (these
 * are not performance tests) and fail with what was awaited and what came instead.
 */

/** Default wait for something that should happen. */
export const WAIT_MS = 10_000;
/** How long to watch for something that must not happen. */
export const QUIET_MS = 1_000;

interface Waiter<T> {
  match: (item: T) => boolean;
  resolve: (item: T) => void;
}

export class Inbox<T> {
  private readonly items: { item: T; taken: boolean }[] = [];
  private readonly waiters: Waiter<T>[] = [];
  private closedReason?: string;

  constructor(
    /** Who receives (for messages): "alice/a1 (@xmpp/client)". */
    private readonly owner: string,
    private readonly describe: (item: T) => string,
  ) {}

  push(item: T): void {
    const entry = { item, taken: false };
    this.items.push(entry);
    const i = this.waiters.findIndex((w) => w.match(item));
    if (i >= 0) {
      entry.taken = true;
      const [w] = this.waiters.splice(i, 1);
      w!.resolve(item);
    }
  }

  /** No more items will come (connection closed): pending waits fail at once with this reason. */
  close(reason: string): void {
    this.closedReason = reason;
  }

  /** Everything received so far, taken or not. */
  all(): T[] {
    return this.items.map((e) => e.item);
  }

  /** Marks everything received so far as taken (a fresh start for the next step). */
  drain(): void {
    for (const e of this.items) e.taken = true;
  }

  next(match: (item: T) => boolean, what: string, timeoutMs = WAIT_MS): Promise<T> {
    const found = this.items.find((e) => !e.taken && match(e.item));
    if (found) {
      found.taken = true;
      return Promise.resolve(found.item);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = {
        match,
        resolve: (item) => {
          clearTimeout(timer);
          clearInterval(closedCheck);
          resolve(item);
        },
      };
      const fail = (why: string) => {
        clearTimeout(timer);
        clearInterval(closedCheck);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.owner}: ${why} waiting for ${what}.\n${this.recent()}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
      // A closed connection will never deliver: fail soon instead of at the timeout.
      const closedCheck = setInterval(() => {
        if (this.closedReason !== undefined) fail(`connection closed (${this.closedReason}) while`);
      }, 200);
      this.waiters.push(waiter);
    });
  }

  /** Resolves after `ms` if nothing matching (and not yet taken) arrived; rejects with what did. */
  async none(match: (item: T) => boolean, what: string, ms = QUIET_MS): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const bad = this.items.find((e) => !e.taken && match(e.item));
    if (bad) {
      bad.taken = true;
      throw new Error(`${this.owner}: expected no ${what}, but received:\n  ${this.describe(bad.item)}`);
    }
  }

  private recent(): string {
    const last = this.items.slice(-8);
    if (last.length === 0) return "  (nothing received)";
    return (
      `  last ${last.length} of ${this.items.length} received (* = already taken):\n` +
      last.map((e) => `  ${e.taken ? "*" : " "} ${truncate(this.describe(e.item), 400)}`).join("\n")
    );
  }
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n) + "…" : s;
}
