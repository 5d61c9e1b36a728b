/**
 * Routed 1:1 message phases over the held sessions:
 * - throughput: every session sends its share of a fixed count to random other sessions with a
 *   bounded window in flight (it sends the next one when one of its messages arrives);
 * - latency: a fixed total rate for a fixed time, one-way send→receive time per message.
 * Every message id names its sender and sequence number, so the receiver can count it once,
 * check it reached the intended recipient and, for latency, look up when it was sent.
 */
import type { BenchConnection } from "./connection.js";
import type { LatencyResult, ThroughputResult } from "./protocol.js";
import { attr } from "./scanner.js";
import type { SessionPool } from "./sessions.js";

/** A typical short chat line. */
const BODY = "The quick brown fox jumps over the lazy dog; benchmark traffic 0123456789.";
/** How long to wait for stragglers once no message has arrived for this long. */
const STALL_MS = 10_000;
/** After the latency run, how long to wait at most for the last messages. */
const LATENCY_DRAIN_MS = 5_000;

type Counts = Omit<ThroughputResult, "wallMs" | "cpuMs" | "perSecond">;

/**
 * Runs so far: each run's ids carry its number, so a message of an earlier run that arrives late
 * (kept offline, or queued for a session that has since closed) is not counted as one of this run's.
 */
let runs = 0;

export function stanza(toJid: string, id: string): string {
  return `<message to='${toJid}' type='chat' id='${id}'><body>${BODY}</body></message>`;
}

function randomOther(n: number, self: number): number {
  const r = Math.floor(Math.random() * (n - 1));
  return r >= self ? r + 1 : r;
}

/** Parses ids of the form `${tag}${a}.${b}`; returns false if it is not one of ours. */
function parseId(id: string | undefined, tag: string, out: [number, number]): boolean {
  if (!id?.startsWith(tag)) return false;
  const dot = id.indexOf(".", tag.length);
  if (dot < 0) return false;
  out[0] = Number(id.slice(tag.length, dot));
  out[1] = Number(id.slice(dot + 1));
  return Number.isInteger(out[0]) && Number.isInteger(out[1]);
}

export function attach(
  sessions: BenchConnection[],
  onMessage: (receiver: number, openTag: string) => void,
): () => void {
  sessions.forEach((c, i) => {
    c.onMessage = (openTag) => onMessage(i, openTag);
  });
  return () => {
    for (const c of sessions) c.onMessage = undefined;
  };
}

/**
 * `recipientsFrom` splits the held sessions: those below it send, each to random sessions from
 * it on, which only receive (senders on one node of a cluster, recipients on another). Without
 * it every session sends to random other sessions.
 */
export async function throughput(
  pool: SessionPool,
  messages: number,
  window: number,
  recipientsFrom?: number,
): Promise<Omit<ThroughputResult, "wallMs" | "cpuMs">> {
  const sessions = pool.held;
  const n = sessions.length;
  if (n < 2) throw new Error("throughput needs at least 2 held sessions");
  if (recipientsFrom !== undefined && !(recipientsFrom >= 1 && recipientsFrom < n))
    throw new Error(`recipientsFrom must leave senders and recipients among ${n} held sessions`);
  const senders = recipientsFrom ?? n;
  const pickTarget =
    recipientsFrom === undefined
      ? (i: number) => randomOther(n, i)
      : () => recipientsFrom + Math.floor(Math.random() * (n - recipientsFrom));
  return routedThroughput(
    {
      senders: sessions.slice(0, senders),
      receivers: sessions,
      receiverJids: sessions.map((_, i) => pool.jidOf(i)),
      recipientOf: pickTarget,
      takeDropped: () => pool.takeDropped(),
    },
    messages,
    window,
  );
}

/** Who sends, who receives, and to whom each sender's next message goes. */
export interface Routes {
  senders: BenchConnection[];
  receivers: BenchConnection[];
  receiverJids: string[];
  /** Index in `receivers` of the recipient of `sender`'s next message. */
  recipientOf: (sender: number) => number;
  /** Sessions the servers closed since the last call. */
  takeDropped: () => number;
}

/**
 * Every sender sends its share of `messages`, at most `window` in flight, each next one when
 * one of its messages arrives at its recipient.
 */
export async function routedThroughput(
  routes: Routes,
  messages: number,
  window: number,
): Promise<Omit<ThroughputResult, "wallMs" | "cpuMs">> {
  const { senders, receivers, receiverJids: jids, recipientOf } = routes;
  const n = senders.length;
  routes.takeDropped();
  const tag = `t${++runs}_`;
  // Sender i sends quota[i] messages, numbered from offset[i] in the flat per-message arrays.
  const quota = new Int32Array(n);
  const offset = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    quota[i] = Math.floor(messages / n) + (i < messages % n ? 1 : 0);
    offset[i] = i === 0 ? 0 : offset[i - 1]! + quota[i - 1]!;
  }
  const sentBy = new Int32Array(n);
  const targetOf = new Int32Array(messages);
  const got = new Uint8Array(messages);
  const counts: Counts = { sent: 0, received: 0, lost: 0, duplicates: 0, misrouted: 0, dropped: 0 };

  const sendNext = (i: number): void => {
    const seq = sentBy[i]!;
    if (seq >= quota[i]!) return;
    sentBy[i] = seq + 1;
    const to = recipientOf(i);
    targetOf[offset[i]! + seq] = to;
    counts.sent++;
    senders[i]!.send(stanza(jids[to]!, `${tag}${i}.${seq}`));
  };

  const ids: [number, number] = [0, 0];
  let lastArrival = performance.now();
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const detach = attach(receivers, (receiver, openTag) => {
    if (!parseId(attr(openTag, "id"), tag, ids)) return;
    const [sender, seq] = ids;
    if (sender < 0 || sender >= n || seq < 0 || seq >= quota[sender]!) return;
    const k = offset[sender]! + seq;
    if (got[k]) {
      counts.duplicates++;
      return;
    }
    got[k] = 1;
    counts.received++;
    if (targetOf[k] !== receiver) counts.misrouted++;
    lastArrival = performance.now();
    sendNext(sender);
    if (counts.received === messages) finish();
  });

  const t0 = performance.now();
  for (let w = 0; w < window; w++) for (let i = 0; i < n; i++) sendNext(i);
  const watchdog = setInterval(() => {
    if (performance.now() - lastArrival > STALL_MS) finish();
  }, 500);
  await done;
  // The rate counts up to the last arrival: a stall wait must not dilute it.
  const seconds = (lastArrival - t0) / 1000;
  clearInterval(watchdog);
  detach();
  counts.lost = counts.sent - counts.received;
  counts.dropped = routes.takeDropped();
  return { ...counts, perSecond: counts.received / seconds };
}

export async function latency(
  pool: SessionPool,
  rate: number,
  durationMs: number,
): Promise<Omit<LatencyResult, "wallMs" | "cpuMs">> {
  const sessions = pool.held;
  const n = sessions.length;
  if (n < 2) throw new Error("latency needs at least 2 held sessions");
  pool.takeDropped();
  const tag = `l${++runs}_`;
  const total = Math.round((rate * durationMs) / 1000);
  const sentAt = new Float64Array(total);
  const targetOf = new Int32Array(total);
  const got = new Uint8Array(total);
  const latencies = new Float64Array(total);
  const jids = sessions.map((_, i) => pool.jidOf(i));
  const counts: Counts = { sent: 0, received: 0, lost: 0, duplicates: 0, misrouted: 0, dropped: 0 };

  const ids: [number, number] = [0, 0];
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const detach = attach(sessions, (receiver, openTag) => {
    const now = performance.now();
    if (!parseId(attr(openTag, "id"), tag, ids)) return;
    const seq = ids[1];
    if (seq < 0 || seq >= total) return;
    if (got[seq]) {
      counts.duplicates++;
      return;
    }
    got[seq] = 1;
    if (targetOf[seq] !== receiver) counts.misrouted++;
    latencies[counts.received++] = now - sentAt[seq]!;
    if (counts.received === total) finish();
  });

  // Paced sender: on each tick send however many messages are due by now.
  const t0 = performance.now();
  let sender = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - t0;
      const due = Math.min(total, Math.floor((elapsed * rate) / 1000));
      while (counts.sent < due) {
        const seq = counts.sent++;
        const to = randomOther(n, sender);
        targetOf[seq] = to;
        sentAt[seq] = performance.now();
        sessions[sender]!.send(stanza(jids[to]!, `${tag}${sender}.${seq}`));
        sender = (sender + 1) % n;
      }
      if (counts.sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const sendSeconds = (performance.now() - t0) / 1000;
  const drain = setTimeout(finish, LATENCY_DRAIN_MS);
  await done;
  clearTimeout(drain);
  detach();
  counts.lost = counts.sent - counts.received;
  counts.dropped = pool.takeDropped();
  const sorted = latencies.subarray(0, counts.received).sort();
  const pct = (p: number): number =>
    sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
  return {
    ...counts,
    achievedRate: counts.sent / sendSeconds,
    p50Ms: pct(0.5),
    p90Ms: pct(0.9),
    p99Ms: pct(0.99),
    maxMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}
