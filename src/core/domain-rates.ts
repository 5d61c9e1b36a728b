/**
 * Rate limits per remote domain (a federated server, a gateway component): one allowance
 * of stanzas and one of bytes per second for everything a domain sends, however many
 * streams it opens (a peer cannot multiply its allowance by connecting more often). Above
 * it the domain's streams stop reading until the debt is paid — TCP pushes back on the
 * peer, nothing is dropped — as the c2s byte limit does for one connection.
 */
import { z } from "zod";
import { TokenBucket } from "./rate-limit.js";

/** A domain's limits in the configuration; 0 means unlimited. */
export const DomainRateSchema = z.object({
  /** Sustained stanzas per second from one domain (0: unlimited). */
  stanzasPerSecond: z.number().min(0).default(1000),
  /** Stanzas a domain may send at once above the sustained rate. */
  burstStanzas: z.number().int().min(1).default(5000),
  /** Sustained bytes per second from one domain (0: unlimited). */
  bytesPerSecond: z
    .number()
    .int()
    .min(0)
    .default(1024 * 1024),
  /** Bytes a domain may send at once above the sustained rate. */
  burstBytes: z
    .number()
    .int()
    .min(1)
    .default(4 * 1024 * 1024),
});

/** Per-domain overrides of the limits, keyed by domain; unset keys keep the defaults. */
export const DomainRatesSchema = z
  .record(z.string().min(1).toLowerCase(), DomainRateSchema.partial())
  .default({});

export interface DomainRate {
  /** Sustained stanzas per second (0: unlimited). */
  stanzasPerSecond: number;
  burstStanzas: number;
  /** Sustained bytes per second (0: unlimited). */
  bytesPerSecond: number;
  burstBytes: number;
}

interface Buckets {
  stanzas: TokenBucket | undefined;
  bytes: TokenBucket | undefined;
  /** Times the domain's input was paused (for switchboard_s2s_throttled_total). */
  throttled: number;
  /** When the domain was last reported throttled in the log. */
  loggedAt: number;
}

/** Domains remembered at most (only authenticated peers get here); past it the oldest is forgotten. */
const MAX_DOMAINS = 10_000;
/** A throttled domain is logged at most once per this many milliseconds. */
const LOG_EVERY_MS = 60_000;

export class DomainRateLimits {
  private readonly buckets = new Map<string, Buckets>();

  constructor(
    private readonly defaults: DomainRate,
    private readonly perDomain: Readonly<Record<string, Partial<DomainRate>>> = {},
    private readonly onThrottled: (domain: string, what: "stanzas" | "bytes", pauseMs: number) => void = () =>
      undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The limits that apply to `domain`. */
  rateOf(domain: string): DomainRate {
    return { ...this.defaults, ...this.perDomain[domain] };
  }

  /** One stanza from `domain`: milliseconds its streams should stop reading (0: none). */
  stanza(domain: string): number {
    return this.charge(domain, "stanzas", 1);
  }

  /**
   * One stanza from `domain` read from `input`: undefined when it may go on now; otherwise
   * `input` stops reading and the stanza (and those after it) waits for the returned
   * promise, so at most what was already read waits with it.
   */
  admit(domain: string, input: { pauseInput(ms: number): void }): Promise<void> | undefined {
    const waitMs = this.stanza(domain);
    if (waitMs <= 0) return undefined;
    input.pauseInput(waitMs);
    return new Promise((resolve) => setTimeout(resolve, waitMs));
  }

  /** `n` bytes from `domain`: milliseconds its streams should stop reading (0: none). */
  bytes(domain: string, n: number): number {
    return this.charge(domain, "bytes", n);
  }

  /** Pauses per domain so far. */
  throttledCounts(): [domain: string, count: number][] {
    return [...this.buckets].filter(([, b]) => b.throttled > 0).map(([d, b]) => [d, b.throttled]);
  }

  private charge(domain: string, what: "stanzas" | "bytes", n: number): number {
    const b = this.bucketsOf(domain);
    const bucket = what === "stanzas" ? b.stanzas : b.bytes;
    if (!bucket) return 0;
    const pauseMs = bucket.consume(n);
    if (pauseMs > 0) {
      b.throttled++;
      const now = this.now();
      if (now - b.loggedAt >= LOG_EVERY_MS) {
        b.loggedAt = now;
        this.onThrottled(domain, what, pauseMs);
      }
    }
    return pauseMs;
  }

  private bucketsOf(domain: string): Buckets {
    let b = this.buckets.get(domain);
    if (b) return b;
    const rate = this.rateOf(domain);
    const bucket = (perSecond: number, burst: number) =>
      perSecond > 0
        ? new TokenBucket({ capacity: Math.max(burst, 1), refillPerSecond: perSecond, now: this.now })
        : undefined;
    b = {
      stanzas: bucket(rate.stanzasPerSecond, rate.burstStanzas),
      bytes: bucket(rate.bytesPerSecond, rate.burstBytes),
      throttled: 0,
      loggedAt: -Infinity,
    };
    this.buckets.set(domain, b);
    if (this.buckets.size > MAX_DOMAINS) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return b;
  }
}
