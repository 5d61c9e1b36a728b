/**
 * How the clients connect: plaintext (loopback only), STARTTLS on the client port (RFC 6120),
 * direct TLS on its own port (XEP-0368), or XMPP over WebSocket (RFC 7395, `ws://` on the HTTP
 * listener at /xmpp-websocket, loopback only), what web clients use. Every real client uses TLS
 * (a web client wss://, usually ended at a reverse proxy).
 */
export type Transport = "plaintext" | "starttls" | "tls" | "websocket";

export const TRANSPORTS: Transport[] = ["plaintext", "starttls", "tls", "websocket"];

/** Where both servers serve XMPP over WebSocket on their HTTP listener. */
export const WEBSOCKET_PATH = "/xmpp-websocket";

/**
 * What the servers run and the clients ask for. `mobile`: what a phone client gets today — stream
 * management enabled by every client (acks answered), carbons enabled, the message archive,
 * stanza ids and client state indication on both servers (Switchboard's defaults; Prosody with
 * mod_smacks, mod_carbons, mod_mam and mod_csi_simple). `im`: the instant-messaging core alone
 * (Switchboard without those modules, Prosody without them, clients not asking for them).
 */
export type FeatureSet = "mobile" | "im";

export const FEATURE_SETS: FeatureSet[] = ["mobile", "im"];

/**
 * Memory per idle session; the same with clients that do not enable stream management (the
 * mobile feature set only: what stream management costs a session); login rate; routed
 * messages (throughput and latency).
 */
export type Phase = "memory" | "memory-no-sm" | "logins" | "messages";

export const PHASES: Phase[] = ["memory", "memory-no-sm", "logins", "messages"];

export const TRANSPORT_NAMES: Record<Transport, string> = {
  plaintext: "plaintext",
  starttls: "STARTTLS",
  tls: "direct TLS",
  websocket: "WebSocket",
};

/** The load of one bench run; both servers get exactly the same. */
export interface BenchSettings {
  mode: "full" | "quick";
  domain: string;
  host: string;
  /** CPU the server under test is pinned to, and the CPU of the load generator (and orchestrator). */
  serverCpu: number;
  loadCpu: number;
  /** Each transport gets every phase, on servers started for it. */
  transports: Transport[];
  /** The phases run (all by default). */
  phases: Phase[];
  /** Features on both servers and in the clients (mobile by default). */
  features: FeatureSet;
  /** Idle sessions at which memory is measured, in increasing order (the largest sets the account count). */
  memorySessions: number[];
  /** Least time to let RSS settle after logins before reading it (federation links). */
  settleMs: number;
  /**
   * Least time a server has been idle before its memory per idle session is read: after its
   * start (the baseline) and after the last login. A server's first seconds are not its idle
   * state: Switchboard's JavaScript heap keeps its start-up garbage and a young generation grown
   * by the logins until V8's memory reducer runs (about 8–15 s), and an idle stream gives its
   * XML tokenizer up within 5–10 s (src/core/xml/parser.ts). Both servers wait the same.
   */
  idleMs: number;
  /** Logins in flight while opening the idle sessions. */
  holdConcurrency: number;
  /** Unmeasured logins first, then `count` measured ones. */
  logins: { warmup: number; count: number; concurrency: number };
  messaging: {
    /** Online users exchanging messages. */
    users: number;
    /** Unmeasured run first, so both servers are measured warm. */
    warmupMessages: number;
    messages: number;
    /** Messages in flight per sender. */
    window: number;
  };
  latency: { rate: number; durationMs: number };
  /**
   * Routing between two cluster nodes against one (bench/lib/cluster-routing.ts): users online
   * (half send, half receive), unmeasured messages per placement, messages per round, messages
   * in flight per sender, groups of six rounds.
   */
  cluster: { users: number; warmupMessages: number; messages: number; window: number; groups: number };
  /** The federation phases (see bench/lib/federation.ts). */
  federation: {
    /** Senders on one server, each writing to its own recipient on the other. */
    pairs: number;
    warmupMessages: number;
    messages: number;
    /** Messages in flight per sender. */
    window: number;
    /** Idle links opened into the receiving server for the memory figure (one per domain). */
    idleLinks: number;
  };
}

const common = {
  domain: "bench.local",
  host: "127.0.0.1",
  serverCpu: 0,
  loadCpu: 1,
  holdConcurrency: 100,
  transports: TRANSPORTS,
  phases: PHASES,
  features: "mobile" as FeatureSet,
};

export const FULL: BenchSettings = {
  ...common,
  mode: "full",
  memorySessions: [1_000, 10_000],
  settleMs: 5_000,
  idleMs: 15_000,
  logins: { warmup: 300, count: 3_000, concurrency: 50 },
  messaging: { users: 1_000, warmupMessages: 20_000, messages: 200_000, window: 5 },
  latency: { rate: 2_000, durationMs: 10_000 },
  cluster: { users: 1_000, warmupMessages: 10_000, messages: 60_000, window: 5, groups: 3 },
  federation: { pairs: 500, warmupMessages: 10_000, messages: 100_000, window: 5, idleLinks: 200 },
};

export const QUICK: BenchSettings = {
  ...common,
  mode: "quick",
  memorySessions: [500, 1_000],
  settleMs: 2_000,
  idleMs: 15_000,
  logins: { warmup: 100, count: 1_000, concurrency: 50 },
  messaging: { users: 500, warmupMessages: 5_000, messages: 30_000, window: 5 },
  latency: { rate: 1_000, durationMs: 3_000 },
  cluster: { users: 500, warmupMessages: 5_000, messages: 20_000, window: 5, groups: 2 },
  federation: { pairs: 100, warmupMessages: 1_000, messages: 10_000, window: 5, idleLinks: 50 },
};

export function accountCount(s: BenchSettings): number {
  return Math.max(...s.memorySessions, s.messaging.users, 2);
}
