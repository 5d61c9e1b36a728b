/**
 * XEP-0198 sequence numbers and the queue of stanzas a peer has not acknowledged yet.
 * Counters are unsigned 32-bit integers: after 2^32 − 1 comes 0 (XEP-0198 §4), so every
 * comparison is a distance modulo 2^32.
 */

/** Sequence numbers wrap here. */
export const H_MODULUS = 2 ** 32;

/** `h` after `n` more stanzas. */
export function advance(h: number, n = 1): number {
  return (h + n) % H_MODULUS;
}

/** How many stanzas lie between counter values `from` and `to` (modulo 2^32). */
export function distance(from: number, to: number): number {
  return (((to - from) % H_MODULUS) + H_MODULUS) % H_MODULUS;
}

/** An `h` attribute: an unsignedInt (0 … 2^32 − 1) written in decimal, or undefined. */
export function parseH(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d{1,10}$/.test(raw)) return undefined;
  const h = Number(raw);
  return h < H_MODULUS ? h : undefined;
}

/** The peer acknowledged more stanzas than were sent to it. */
export class HandledCountTooHigh extends Error {
  constructor(
    readonly h: number,
    readonly sendCount: number,
  ) {
    super(`acknowledged ${h} stanzas, but only ${sendCount} were sent`);
    this.name = "HandledCountTooHigh";
  }
}

/**
 * Stanzas sent and not yet acknowledged, oldest first, with the counter of stanzas sent.
 * `acked + length === sent` (modulo 2^32) always holds.
 */
export class UnackedQueue<T> {
  private items: T[] = [];
  /** Index of the oldest unacknowledged item in `items` (acknowledged ones are dropped lazily). */
  private head = 0;
  /** `ackedBefore`: stanzas acknowledged before this queue took over (a resumed session's). */
  constructor(ackedBefore = 0) {
    this.ackedTotal = ackedBefore;
  }

  /** Stanzas sent, modulo 2^32. */
  sent = 0;
  /** The last `h` the peer acknowledged. */
  acked = 0;
  /** Stanzas acknowledged in all (not wrapped): how far back a stale `h` may reach. */
  private ackedTotal = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Records one more stanza sent. */
  push(item: T): void {
    this.items.push(item);
    this.sent = advance(this.sent);
  }

  /**
   * Applies the peer's `h`: the items it acknowledges now, oldest first. An `h` behind one
   * the peer already sent acknowledges nothing new and changes nothing: @xmpp/client, for
   * one, restarts its count when <enabled/> is handled, after stanzas that arrived with it,
   * and Prosody and ejabberd ignore such an `h` too. An `h` that acknowledges more than was
   * sent throws HandledCountTooHigh and changes nothing.
   */
  ack(h: number): T[] {
    const n = distance(this.acked, h);
    if (n === 0) return [];
    if (n > this.length) {
      if (distance(h, this.acked) <= this.ackedTotal) return [];
      throw new HandledCountTooHigh(h, this.sent);
    }
    const done = this.items.slice(this.head, this.head + n);
    this.head += n;
    this.acked = h;
    this.ackedTotal += n;
    // Memory follows what is unacknowledged: everything acknowledged lets go of every item
    // at once (an idle session would otherwise hold the stanzas of its login for its whole
    // life), and a dominating acknowledged prefix is compacted.
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 32 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return done;
  }

  /** The `i`-th unacknowledged item, oldest first (0: the oldest). */
  at(i: number): T | undefined {
    return i < 0 ? undefined : this.items[this.head + i];
  }

  /** The unacknowledged items, oldest first (they stay queued). */
  pending(): T[] {
    return this.items.slice(this.head);
  }

  /** Removes and returns every unacknowledged item. */
  drain(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.ackedTotal += rest.length;
    this.acked = this.sent;
    return rest;
  }
}

/** A queue taken over from elsewhere: `acked` stanzas acknowledged, then `items` unacknowledged. */
export function restoredQueue<T>(acked: number, items: T[]): UnackedQueue<T> {
  const queue = new UnackedQueue<T>(acked);
  queue.acked = acked;
  queue.sent = acked;
  for (const item of items) queue.push(item);
  return queue;
}
