/**
 * Rate limits of the portal's account actions, per email address and per client address,
 * so that neither one address nor one mailbox can be used to guess passwords or to flood
 * someone with mails. In memory (the web portal runs in the server process), bounded, with
 * the injectable clock. The HTTP layer answers a RateLimited error with 429 and Retry-After.
 */
import type { Clock } from "../core/clock.js";
import { FailureLimiter } from "../core/rate-limit.js";

export type PortalAction = "signup" | "login" | "reset" | "resend";

export interface Limit {
  /** Attempts (for "login": failed attempts) allowed within the window. */
  max: number;
  windowMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export const DEFAULT_LIMITS: Record<PortalAction, { email: Limit; address: Limit }> = {
  signup: { email: { max: 3, windowMs: HOUR }, address: { max: 10, windowMs: HOUR } },
  login: { email: { max: 10, windowMs: 15 * MINUTE }, address: { max: 50, windowMs: 15 * MINUTE } },
  reset: { email: { max: 3, windowMs: HOUR }, address: { max: 10, windowMs: HOUR } },
  resend: { email: { max: 3, windowMs: HOUR }, address: { max: 10, windowMs: HOUR } },
};

/** Too many attempts; try again after `retryAfterMs`. */
export class RateLimited extends Error {
  constructor(
    readonly action: PortalAction,
    readonly retryAfterMs: number,
  ) {
    super(`too many attempts; try again in ${Math.ceil(retryAfterMs / 60_000)} minute(s)`);
    this.name = "RateLimited";
  }
}

export interface Requester {
  /** Normalised email address the action is about. */
  email?: string;
  /** The client's IP address. */
  address?: string;
}

export class PortalRateLimits {
  readonly #limiters = new Map<string, FailureLimiter>();

  constructor(clock: Clock, limits: Partial<Record<PortalAction, { email: Limit; address: Limit }>> = {}) {
    const all = { ...DEFAULT_LIMITS, ...limits };
    for (const [action, byKind] of Object.entries(all)) {
      for (const [kind, limit] of Object.entries(byKind)) {
        this.#limiters.set(
          `${action}/${kind}`,
          new FailureLimiter({ ...limit, maxKeys: 50_000, now: () => clock.now() }),
        );
      }
    }
  }

  #each(action: PortalAction, who: Requester, fn: (limiter: FailureLimiter, key: string) => void): void {
    if (who.email) fn(this.#limiters.get(`${action}/email`)!, who.email);
    if (who.address) fn(this.#limiters.get(`${action}/address`)!, who.address);
  }

  /** Milliseconds until `action` is allowed again for this requester (0: allowed now). */
  retryAfterMs(action: PortalAction, who: Requester): number {
    let wait = 0;
    this.#each(action, who, (l, key) => {
      wait = Math.max(wait, l.retryAfterMs(key));
    });
    return wait;
  }

  /** Throws RateLimited when the requester has used up its attempts. */
  check(action: PortalAction, who: Requester): void {
    const wait = this.retryAfterMs(action, who);
    if (wait > 0) throw new RateLimited(action, wait);
  }

  /** Counts one attempt (for "login": one failure). */
  record(action: PortalAction, who: Requester): void {
    this.#each(action, who, (l, key) => l.record(key));
  }

  /** Forgets the requester's attempts (a successful login clears the failures of its address). */
  reset(action: PortalAction, who: Requester): void {
    this.#each(action, who, (l, key) => l.reset(key));
  }
}
