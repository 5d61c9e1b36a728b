/**
 * Password guessing defence shared by every login path (XMPP SASL, the web faces).
 *
 * Two signals, two answers:
 * - per address: an address that failed `perAddress` times within the window is refused
 *   outright (it is the guesser; once it has failed, its attempts still in flight count, so
 *   parallel connections cannot slip past the limit);
 * - per account: an account that failed `perAccount` times within the window, from any
 *   addresses, is under attack. Its attempts are slowed (the answer, success or failure,
 *   waits a delay that doubles with each further failure, up to `maxDelayMs`) but never
 *   refused: a stranger who knows the name cannot keep the owner out. Addresses that logged
 *   into the account before (`trustedForMs`) are not slowed at all.
 *
 * Only a checked password that was wrong counts as a failure: a refused mechanism or
 * channel-binding type says nothing about the password. Crossing a threshold is logged once.
 *
 * In a cluster every node's guard sees every node's outcomes (`share` and `apply`), so a
 * guesser cannot spread attempts over the nodes to get each node's budget.
 */
import type { Logger } from "pino";
import { FailureLimiter } from "./rate-limit.js";

export interface LoginGuardOptions {
  perAddress: number;
  perAccount: number;
  windowMs: number;
  /** Longest delay given to an attempt on an account under attack. */
  maxDelayMs: number;
  /** How long an address that logged into an account stays trusted for it. */
  trustedForMs: number;
  now: () => number;
  log: Logger;
  /** What the log calls the login path ("xmpp", "web"). */
  face: string;
  /** Remembered keys at most per table (addresses, accounts, trusted pairs). */
  maxKeys?: number;
}

/** A login outcome as one guard tells the others (the nodes of a cluster). */
export type LoginOutcome =
  | { outcome: "failed"; account?: string; address: string }
  | { outcome: "succeeded"; account: string; address: string };

/** The verdict before a password is checked. */
export type LoginVerdict = { refused: true; retryAfterMs: number } | { refused: false };

const FIRST_DELAY_MS = 1000;
/** Failures past the account threshold that still lengthen the delay. */
const ESCALATION_STEPS = 16;

export class LoginGuard {
  private readonly byAddress: FailureLimiter;
  private readonly byAccount: FailureLimiter;
  /** "account\0address" → last successful login; Map order is oldest first. */
  private readonly trusted = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  /** Keys already reported as throttled in their current episode (cleared when they recover). */
  private readonly reported = new Set<string>();
  private readonly maxKeys: number;
  /** Where this guard's outcomes go (the other nodes), when shared. */
  private publish: ((outcome: LoginOutcome) => void) | undefined;

  constructor(private readonly opts: LoginGuardOptions) {
    this.maxKeys = opts.maxKeys ?? 100_000;
    const common = { windowMs: opts.windowMs, maxKeys: this.maxKeys, now: opts.now };
    this.byAddress = new FailureLimiter({ ...common, max: opts.perAddress });
    // Failures past the threshold are kept too: each one doubles the delay.
    this.byAccount = new FailureLimiter({ ...common, max: opts.perAccount + ESCALATION_STEPS });
  }

  /**
   * Called when an attempt from `address` starts. A refused address gets no attempt; an
   * accepted one must be ended with `end()` (whatever its outcome).
   */
  begin(address: string): LoginVerdict {
    const pending = this.inFlight.get(address) ?? 0;
    const failures = this.byAddress.count(address);
    // Attempts in flight count once the address has failed: a guesser's parallel streams cannot
    // outrun the limit, while many clients behind one address log in side by side.
    if (failures > 0 && failures + pending >= this.opts.perAddress) {
      this.report(`address:${address}`, { address }, "login attempts from this address refused for a while");
      return { refused: true, retryAfterMs: Math.max(this.byAddress.retryAfterMs(address), 1000) };
    }
    this.reported.delete(`address:${address}`);
    this.inFlight.set(address, pending + 1);
    return { refused: false };
  }

  /** The attempt that `begin()` accepted is over (answered, aborted or its stream gone). */
  end(address: string): void {
    const n = (this.inFlight.get(address) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(address);
    else this.inFlight.set(address, n);
  }

  /**
   * How long the answer to a checked password for `account` from `address` waits: 0 unless
   * the account is under attack and the address is not trusted for it.
   */
  delayMs(account: string, address: string): number {
    const failures = this.byAccount.count(account);
    const excess = failures - this.opts.perAccount;
    if (excess < 0) {
      this.reported.delete(`account:${account}`);
      return 0;
    }
    if (this.isTrusted(account, address)) return 0;
    this.report(
      `account:${account}`,
      { account, failures },
      "login attempts on this account slowed (from addresses it was not used from)",
    );
    return Math.min(this.opts.maxDelayMs, FIRST_DELAY_MS * 2 ** excess);
  }

  /** A checked password was wrong. */
  failed(account: string | undefined, address: string): void {
    this.recordFailure(account, address);
    this.publish?.(
      account === undefined ? { outcome: "failed", address } : { outcome: "failed", account, address },
    );
  }

  /** A password was right: the address becomes trusted for the account. */
  succeeded(account: string, address: string): void {
    this.recordSuccess(account, address);
    this.publish?.({ outcome: "succeeded", account, address });
  }

  /** Tells `publish` every outcome from now on (a cluster node sends them to the other nodes). */
  share(publish: (outcome: LoginOutcome) => void): () => void {
    this.publish = publish;
    return () => {
      if (this.publish === publish) this.publish = undefined;
    };
  }

  /** Counts an outcome another guard saw (another node's login). */
  apply(o: LoginOutcome): void {
    if (o.outcome === "failed") this.recordFailure(o.account, o.address);
    else this.recordSuccess(o.account, o.address);
  }

  private recordFailure(account: string | undefined, address: string): void {
    this.byAddress.record(address);
    if (account !== undefined) this.byAccount.record(account);
  }

  private recordSuccess(account: string, address: string): void {
    const key = `${account}\u0000${address}`;
    this.trusted.delete(key);
    this.trusted.set(key, this.opts.now());
    if (this.trusted.size > this.maxKeys) {
      const oldest = this.trusted.keys().next().value;
      if (oldest !== undefined) this.trusted.delete(oldest);
    }
  }

  /** Failed attempts remembered (addresses and accounts): for tests and metrics. */
  get failuresRemembered(): number {
    return this.byAddress.size + this.byAccount.size;
  }

  private isTrusted(account: string, address: string): boolean {
    const at = this.trusted.get(`${account}\u0000${address}`);
    return at !== undefined && this.opts.now() - at < this.opts.trustedForMs;
  }

  private report(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    if (this.reported.size > this.maxKeys) this.reported.delete(this.reported.values().next().value!);
    this.opts.log.warn({ ...fields, face: this.opts.face, windowSeconds: this.opts.windowMs / 1000 }, msg);
  }
}
