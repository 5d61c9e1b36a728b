/**
 * The pool of idle, logged-in sessions the memory and message phases work on, and the
 * login-rate phase (full login then disconnect, at a fixed concurrency).
 */
import { BenchConnection, type ConnectionTarget } from "./connection.js";
import { type LicenceCredentials, LicenceProver } from "./licence-proof.js";
import { runPool } from "./pool.js";
import type { AccountSet, HoldResult, LoginsResult, SecondTarget } from "./protocol.js";
import type { ScramKeyCache } from "./scram.js";

const MAX_ERRORS_KEPT = 5;

export class SessionPool {
  /** held[i] is account i + 1. */
  readonly held: BenchConnection[] = [];
  /** Held sessions the server closed (counted until read by takeDropped). */
  private dropped = 0;
  /** When set, every new connection proves this licence before SASL. */
  private licence: LicenceProver | undefined;
  /** The latest prover, kept through rounds without a proof: its ticket outlives them. */
  private lastProver: LicenceProver | undefined;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly accounts: AccountSet,
    private readonly cache: ScramKeyCache,
    /** Accounts from `second.from` on log in at another address (another node of the same cluster). */
    private readonly second?: SecondTarget,
  ) {}

  /** Makes the following logins prove this client licence (null: no proof). */
  setLicence(credentials: LicenceCredentials | null): void {
    this.licence = credentials ? new LicenceProver(credentials, this.target.domain) : undefined;
    if (this.licence && this.lastProver) this.licence.adoptTicket(this.lastProver);
    if (this.licence) this.lastProver = this.licence;
  }

  connection(account: number): BenchConnection {
    return new BenchConnection(
      this.second && account >= this.second.from ? this.second.target : this.target,
      `${this.accounts.prefix}${account}`,
      `${this.accounts.passwordPrefix}${account}`,
      this.cache,
      this.licence,
    );
  }

  jidOf(index: number): string {
    return `${this.accounts.prefix}${index + 1}@${this.target.domain}`;
  }

  takeDropped(): number {
    const n = this.dropped;
    this.dropped = 0;
    return n;
  }

  /** Logs in accounts held.length + 1 … count, `concurrency` at a time. */
  async hold(count: number, concurrency: number): Promise<Omit<HoldResult, "wallMs" | "cpuMs">> {
    if (count > this.accounts.count) throw new Error(`only ${this.accounts.count} accounts exist`);
    const derivationsBefore = this.cache.derivations;
    const errors: string[] = [];
    let failures = 0;
    const start = this.held.length;
    const slots: (BenchConnection | undefined)[] = new Array(count - start);
    await runPool(count - start, concurrency, async (k) => {
      const conn = this.connection(start + k + 1);
      try {
        await conn.login();
        conn.onLost = () => {
          this.dropped++;
        };
        slots[k] = conn;
      } catch (err) {
        failures++;
        if (errors.length < MAX_ERRORS_KEPT) errors.push((err as Error).message);
      }
    });
    if (failures > 0) {
      // Keep the pool dense (held[i] is account i + 1): drop the partial batch.
      await Promise.all(slots.map((c) => c?.close()));
    } else {
      for (const c of slots) this.held.push(c as BenchConnection);
    }
    return {
      held: this.held.length,
      failures,
      errors,
      derivations: this.cache.derivations - derivationsBefore,
    };
  }

  async release(): Promise<void> {
    const all = this.held.splice(0);
    for (const c of all) c.onLost = undefined;
    // Bounded batches so thousands of closes do not all hit the server in the same instant.
    await runPool(all.length, 200, (k) => all[k]!.close());
  }

  /** `count` complete logins and disconnects, `concurrency` in flight, cycling over accounts 1..accounts. */
  async logins(
    count: number,
    concurrency: number,
    accounts: number,
  ): Promise<Omit<LoginsResult, "wallMs" | "cpuMs">> {
    const errors: string[] = [];
    let failures = 0;
    let completed = 0;
    const derivationsBefore = this.cache.derivations;
    const t0 = performance.now();
    await runPool(count, concurrency, async (k) => {
      const conn = this.connection((k % accounts) + 1);
      try {
        await conn.login();
        await conn.close();
        completed++;
      } catch (err) {
        failures++;
        if (errors.length < MAX_ERRORS_KEPT) errors.push((err as Error).message);
      }
    });
    const seconds = (performance.now() - t0) / 1000;
    return {
      completed,
      failures,
      errors,
      perSecond: completed / seconds,
      derivations: this.cache.derivations - derivationsBefore,
    };
  }
}
