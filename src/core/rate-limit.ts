/**
 * Rate limits with bounded memory and an injectable clock:
 * - FailureLimiter: "at most `max` failures per key within a sliding window" (failed logins per
 *   address or per account). Keeps only the last `max` failure times per key and at most `maxKeys`
 *   keys, evicting the one that failed least recently.
 * - TokenBucket: a sustained rate with bursts (bytes or stanzas per second).
 */

export interface FailureLimiterOptions {
  /** Failures within the window that block the key. */
  max: number;
  windowMs: number;
  /** Keys remembered at most; past it the least recently failed key is forgotten. */
  maxKeys: number;
  /** Milliseconds clock; Date.now by default. */
  now?: () => number;
}

export class FailureLimiter {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** Failure times per key, oldest first, at most `max`; Map order is least recently failed first. */
  private readonly failures = new Map<string, number[]>();

  constructor(opts: FailureLimiterOptions) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new RangeError("max must be a positive integer");
    if (!(opts.windowMs > 0)) throw new RangeError("windowMs must be positive");
    if (!Number.isInteger(opts.maxKeys) || opts.maxKeys < 1)
      throw new RangeError("maxKeys must be a positive integer");
    this.max = opts.max;
    this.windowMs = opts.windowMs;
    this.maxKeys = opts.maxKeys;
    this.now = opts.now ?? Date.now;
  }

  /** Notes one failure for the key. */
  record(key: string): void {
    const now = this.now();
    const times = this.current(key, now) ?? [];
    this.failures.delete(key); // re-inserted below: moves the key to the most recent end
    times.push(now);
    if (times.length > this.max) times.shift();
    this.failures.set(key, times);
    if (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  /** Failures of the key within the window. */
  count(key: string): number {
    return this.current(key, this.now())?.length ?? 0;
  }

  /** Has the key reached `max` failures within the window? */
  blocked(key: string): boolean {
    const times = this.current(key, this.now());
    return times !== undefined && times.length >= this.max;
  }

  /** Milliseconds until the key is no longer blocked (0 when it is not). */
  retryAfterMs(key: string): number {
    const now = this.now();
    const times = this.current(key, now);
    if (!times || times.length < this.max) return 0;
    return times[0]! + this.windowMs - now;
  }

  /** Forgets the key's failures (e.g. after a successful login). */
  reset(key: string): void {
    this.failures.delete(key);
  }

  /** Keys currently remembered. */
  get size(): number {
    return this.failures.size;
  }

  /** Drops every key whose failures have all left the window; returns how many were dropped. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const key of [...this.failures.keys()]) {
      if (this.current(key, now) === undefined) dropped++;
    }
    return dropped;
  }

  /** The key's failure times still inside the window; drops the key when none are. */
  private current(key: string, now: number): number[] | undefined {
    const times = this.failures.get(key);
    if (!times) return undefined;
    let expired = 0;
    while (expired < times.length && now - times[expired]! >= this.windowMs) expired++;
    if (expired === times.length) {
      this.failures.delete(key);
      return undefined;
    }
    if (expired > 0) times.splice(0, expired);
    return times;
  }
}

export interface TokenBucketOptions {
  /** Most tokens the bucket holds: the largest burst. It starts full. */
  capacity: number;
  /** Tokens added per second: the sustained rate. */
  refillPerSecond: number;
  /** Milliseconds clock; Date.now by default. */
  now?: () => number;
}

export class TokenBucket {
  private readonly capacity: number;
  private readonly ratePerMs: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.capacity > 0)) throw new RangeError("capacity must be positive");
    if (!(opts.refillPerSecond >= 0)) throw new RangeError("refillPerSecond must not be negative");
    this.capacity = opts.capacity;
    this.ratePerMs = opts.refillPerSecond / 1000;
    this.now = opts.now ?? Date.now;
    this.tokens = opts.capacity;
    this.last = this.now();
  }

  /** Takes n tokens if all of them are there; otherwise takes none and returns false. */
  take(n = 1): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /**
   * Takes n tokens even if the bucket goes into debt (data already read must be paid for); returns
   * the milliseconds to wait until the balance is back to zero (0 when no debt).
   */
  consume(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : this.ratePerMs > 0 ? Math.ceil(-this.tokens / this.ratePerMs) : Infinity;
  }

  /** Tokens available now (negative while in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Milliseconds until n tokens are available: 0 if they are now, Infinity if they never can be. */
  waitMs(n = 1): number {
    this.refill();
    if (this.tokens >= n) return 0;
    if (n > this.capacity || this.ratePerMs === 0) return Infinity;
    return Math.ceil((n - this.tokens) / this.ratePerMs);
  }

  private refill(): void {
    const now = this.now();
    // A clock that steps back adds nothing (and does not take tokens away).
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.ratePerMs);
  }
}
