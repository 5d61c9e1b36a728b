/**
 * Rate limiting of failed password logins on the web (console and portal): after too
 * many failures from one address, or for one account, within a window, further attempts
 * are refused before the password is checked. Same limits as XMPP logins
 * (`limits.authFailuresPerAddress`, `authFailuresPerAccount`, `failureWindowSeconds`).
 */
import type { Clock } from "../core/clock.js";
import type { Limits } from "../core/config.js";
import { FailureLimiter } from "../core/rate-limit.js";

export class LoginThrottle {
  private readonly byAddress: FailureLimiter;
  private readonly byAccount: FailureLimiter;

  constructor(limits: Limits, clock: Clock) {
    const windowMs = limits.failureWindowSeconds * 1000;
    const now = () => clock.now();
    this.byAddress = new FailureLimiter({
      max: limits.authFailuresPerAddress,
      windowMs,
      maxKeys: 100_000,
      now,
    });
    this.byAccount = new FailureLimiter({
      max: limits.authFailuresPerAccount,
      windowMs,
      maxKeys: 100_000,
      now,
    });
  }

  /** Milliseconds to wait before this address may try this account again (0: go ahead). */
  retryAfterMs(address: string, account: string | undefined): number {
    return Math.max(
      this.byAddress.retryAfterMs(address),
      account === undefined ? 0 : this.byAccount.retryAfterMs(account),
    );
  }

  failed(address: string, account: string | undefined): void {
    this.byAddress.record(address);
    if (account !== undefined) this.byAccount.record(account);
  }

  succeeded(account: string): void {
    this.byAccount.reset(account);
  }
}
