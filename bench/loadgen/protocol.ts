/**
 * Messages between the bench orchestrator and the load generator process (over the Node IPC
 * channel). Every command gets exactly one reply, in order.
 */
import type { ConnectionTarget } from "./connection.js";
import type { LicenceCredentials } from "./licence-proof.js";

/** Accounts are `${prefix}${i}` with password `${passwordPrefix}${i}`, for i in 1..count. */
export interface AccountSet {
  prefix: string;
  passwordPrefix: string;
  count: number;
}

/** Accounts numbered `from` and above connect to `target` instead (a second node of a cluster). */
export interface SecondTarget {
  from: number;
  target: ConnectionTarget;
}

export type LoadCommand =
  | { op: "configure"; target: ConnectionTarget; accounts: AccountSet; second?: SecondTarget }
  /** The recipients' server of the federated phases (another pool, with its own accounts). */
  | { op: "configure-peer"; target: ConnectionTarget; accounts: AccountSet }
  /** Keeps accounts 1..count logged in and idle (logs in the missing ones). */
  | { op: "hold"; count: number; concurrency: number }
  /** Keeps accounts 1..count of the peer logged in and idle. */
  | { op: "hold-peer"; count: number; concurrency: number }
  /** Held session i sends its share of `messages` to the peer's held session i, `window` in flight each. */
  | { op: "federated"; messages: number; window: number }
  /** Account 1 of each domain of the configured server sends one message to the peer's first held session. */
  | { op: "links"; domains: string[]; concurrency: number }
  /** Closes every held session (of the peer too). */
  | { op: "release" }
  /** `count` full logins (login then disconnect), `concurrency` at a time, cycling over accounts 1..accounts. */
  | { op: "logins"; count: number; concurrency: number; accounts: number }
  /**
   * Each held session sends its share of `messages` to random other held sessions, `window` in
   * flight each. With `recipientsFrom`, only held sessions 0 … recipientsFrom − 1 send, each to
   * random sessions from recipientsFrom on (which only receive).
   */
  | { op: "throughput"; messages: number; window: number; recipientsFrom?: number }
  /** Messages at a fixed total `rate` per second for `durationMs` between random held sessions. */
  | { op: "latency"; rate: number; durationMs: number }
  /** The following logins prove this client licence (null: no proof). */
  | { op: "licence"; credentials: LicenceCredentials | null }
  | { op: "exit" };

export interface PhaseCost {
  wallMs: number;
  /** Load generator CPU time (user + system) during the phase. */
  cpuMs: number;
}

export interface HoldResult extends PhaseCost {
  held: number;
  failures: number;
  errors: string[];
  /** SCRAM key derivations (PBKDF2) the generator had to do. */
  derivations: number;
}

export interface LoginsResult extends PhaseCost {
  completed: number;
  /** SCRAM key derivations (PBKDF2) the generator had to do; 0 when every account was cached. */
  derivations: number;
  failures: number;
  errors: string[];
  perSecond: number;
}

export interface ThroughputResult extends PhaseCost {
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  misrouted: number;
  /** Sessions the server closed during the phase. */
  dropped: number;
  perSecond: number;
}

export interface LinksResult extends PhaseCost {
  /** Domains whose message crossed to the peer. */
  opened: number;
  failures: number;
  errors: string[];
}

export interface LatencyResult extends PhaseCost {
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  misrouted: number;
  dropped: number;
  achievedRate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export type LoadReply =
  | { ok: true; result: HoldResult | LoginsResult | ThroughputResult | LatencyResult | LinksResult | null }
  | { ok: false; error: string };
