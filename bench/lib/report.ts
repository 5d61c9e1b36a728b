/**
 * Turns the two servers' results into figures (value for each, ratio Switchboard/Prosody,
 * target and whether it is met) and prints them as a table.
 */
import type { MemoryPoint, ServerResults, TransportResults } from "./scenario.js";
import { type BenchSettings, TRANSPORT_NAMES, type Transport } from "./settings.js";

export interface Figure {
  transport: Transport;
  label: string;
  unit: string;
  switchboard: number | null;
  prosody: number | null;
  /** switchboard / prosody. */
  ratio: number | null;
  /** Human-readable target, e.g. "≤ Prosody". */
  target: string;
  /** null when there is nothing to compare. */
  met: boolean | null;
  /** The other Switchboard variants of the run (by name): value and ratio to Prosody. */
  variants: Record<string, { value: number | null; ratio: number | null }>;
}

/** `le-limit`: Switchboard's value at most `factor` (a figure in its unit, not a ratio). */
type Compare = "le-prosody" | "ge-prosody" | "le-limit" | "zero" | "none";

/** Above this the load generator, not the server, may be what limits a rate. */
const LOADGEN_BUSY_PCT = 90;
/** Above this share of a phase spent waiting for a CPU that other processes used, a figure is disturbed. */
const WAIT_PCT = 5;
/** Memory per idle TLS session: at most this share of Prosody's. */
export const TLS_MEMORY_TARGET = 0.75;
/** What stream management may add to an idle session's memory, in KiB (same transport, same run). */
export const SM_MEMORY_TARGET_KIB = 2;

type Pick = (r: TransportResults) => number | undefined;

function figure(
  transport: Transport,
  label: string,
  unit: string,
  compare: Compare,
  pick: Pick,
  servers: ServerResults[],
  factor = 1,
): Figure {
  const value = (r: ServerResults | undefined): number | null => {
    const t = r?.transports[transport];
    return t ? (pick(t) ?? null) : null;
  };
  const pr = value(servers.find((r) => r.server === "prosody"));
  // A difference (le-limit) has no meaningful ratio: it may be near zero or negative.
  const ratioOf = (v: number | null): number | null =>
    compare !== "le-limit" && v !== null && pr !== null && pr !== 0 ? v / pr : null;
  const a = value(servers.find((r) => r.server === "switchboard"));
  let met: boolean | null = null;
  let target = "—";
  const times = factor === 1 ? "" : `${factor} × `;
  if (compare === "le-prosody") {
    target = `≤ ${times}Prosody`;
    met = a !== null && pr !== null ? a <= factor * pr : null;
  } else if (compare === "ge-prosody") {
    target = `≥ ${times}Prosody`;
    met = a !== null && pr !== null ? a >= factor * pr : null;
  } else if (compare === "le-limit") {
    target = `≤ ${factor} ${unit}`;
    met = a !== null ? a <= factor : null;
  } else if (compare === "zero") {
    target = "0";
    met = a !== null ? a === 0 : null;
  }
  const variants: Figure["variants"] = {};
  for (const r of servers) {
    if (r.server === "switchboard" || r.server === "prosody") continue;
    const v = value(r);
    variants[r.server] = { value: v, ratio: ratioOf(v) };
  }
  return { transport, label, unit, switchboard: a, prosody: pr, ratio: ratioOf(a), target, met, variants };
}

export function figures(s: BenchSettings, servers: ServerResults[]): Figure[] {
  const out: Figure[] = [];
  for (const transport of s.transports) {
    const tn = TRANSPORT_NAMES[transport];
    const f = (label: string, unit: string, compare: Compare, pick: Pick, factor = 1) =>
      figure(transport, `${tn}: ${label}`, unit, compare, pick, servers, factor);
    // ws:// on loopback carries no TLS: the plaintext target.
    const memoryFactor = transport === "starttls" || transport === "tls" ? TLS_MEMORY_TARGET : 1;
    const perSession = (points: MemoryPoint[] | undefined, sessions: number): number | undefined => {
      const p = points?.find((m) => m.sessions === sessions);
      return p ? p.bytesPerSession / 1024 : undefined;
    };
    const smCompared = servers.some((r) => r.transports[transport]?.memoryNoSm !== undefined);
    // Only the figures of the phases run (a partial run prints no rows of n/a).
    for (const sessions of s.phases.includes("memory") ? s.memorySessions : []) {
      const at = sessions.toLocaleString("en-US");
      out.push(
        f(
          `memory per idle session @ ${at}`,
          "KiB",
          "le-prosody",
          (r) => perSession(r.memory, sessions),
          memoryFactor,
        ),
      );
      if (!smCompared) continue;
      out.push(
        f(
          `  … without stream management @ ${at}`,
          "KiB",
          "le-prosody",
          (r) => perSession(r.memoryNoSm, sessions),
          memoryFactor,
        ),
        f(
          `  … stream management's part @ ${at}`,
          "KiB",
          "le-limit",
          (r) => {
            const on = perSession(r.memory, sessions);
            const off = perSession(r.memoryNoSm, sessions);
            return on !== undefined && off !== undefined ? on - off : undefined;
          },
          SM_MEMORY_TARGET_KIB,
        ),
      );
    }
    if (s.phases.includes("logins")) {
      out.push(
        f(
          `logins per second (${s.logins.concurrency} in flight)`,
          "/s",
          "ge-prosody",
          (r) => r.logins?.perSecond,
        ),
        f("  … per second of server CPU", "/CPU-s", "ge-prosody", (r) =>
          r.logins ? r.logins.completed / (r.logins.serverCpuMs / 1000) : undefined,
        ),
      );
    }
    if (!s.phases.includes("messages")) continue;
    out.push(
      f(
        `routed messages per second (${s.messaging.users.toLocaleString("en-US")} users)`,
        "msg/s",
        "ge-prosody",
        (r) => r.throughput?.perSecond,
      ),
      f("  … per second of server CPU", "/CPU-s", "ge-prosody", (r) =>
        r.throughput ? r.throughput.received / (r.throughput.serverCpuMs / 1000) : undefined,
      ),
      f(
        `latency p50 @ ${s.latency.rate.toLocaleString("en-US")} msg/s`,
        "ms",
        "none",
        (r) => r.latency?.p50Ms,
      ),
      f(
        `latency p99 @ ${s.latency.rate.toLocaleString("en-US")} msg/s`,
        "ms",
        "none",
        (r) => r.latency?.p99Ms,
      ),
      f("lost messages (throughput + latency)", "", "zero", (r) =>
        r.throughput && r.latency ? r.throughput.lost + r.latency.lost : undefined,
      ),
    );
  }
  return out;
}

function num(v: number | null, unit: string): string {
  if (v === null || Number.isNaN(v)) return "n/a";
  const digits = unit === "ms" ? 2 : unit === "KiB" ? 1 : 0;
  return `${v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}${unit ? ` ${unit}` : ""}`;
}

export function formatTable(rows: Figure[]): string {
  const variants = Object.keys(rows[0]?.variants ?? {});
  const header = [
    "Figure",
    "Switchboard",
    "Prosody",
    "Ratio SB/P",
    "Target",
    "Met",
    ...variants.flatMap((v) => [v, "/P"]),
  ];
  const ratio = (r: number | null) => (r === null ? "n/a" : r.toFixed(2));
  const body = rows.map((f) => [
    f.label,
    num(f.switchboard, f.unit),
    num(f.prosody, f.unit),
    ratio(f.ratio),
    f.target,
    f.met === null ? "n/a" : f.met ? "yes" : "NO",
    ...variants.flatMap((v) => [
      num(f.variants[v]?.value ?? null, f.unit),
      ratio(f.variants[v]?.ratio ?? null),
    ]),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === 4 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** Remarks worth reading next to the table: errors, saturation of the generator, dropped sessions. */
export function notes(s: BenchSettings, results: ServerResults[]): string[] {
  const out: string[] = [];
  for (const server of results) {
    for (const e of server.errors) out.push(`${server.server}: ${e}`);
    if (server.allocator) out.push(`${server.server}: ran on ${server.allocator}`);
    if (server.gracefulStop === false) out.push(`${server.server}: did not exit cleanly (code 0) on SIGTERM`);
    for (const [transport, r] of Object.entries(server.transports) as [Transport, TransportResults][]) {
      out.push(...transportNotes(s, `${server.server} ${TRANSPORT_NAMES[transport]}`, r));
    }
  }
  return out;
}

function transportNotes(s: BenchSettings, who: string, r: TransportResults): string[] {
  const out: string[] = [];
  for (const [name, phase] of [
    ["logins", r.logins],
    ["throughput", r.throughput],
    ["latency", r.latency],
  ] as const) {
    if (!phase) continue;
    // Waiting for a CPU while other processes ran on it: a runtime's own helper threads on the
    // same CPU also make its main thread wait, which is not a disturbance.
    const disturbed =
      (phase.serverWaitPct > WAIT_PCT && phase.otherOnServerCpuPct > WAIT_PCT) ||
      (phase.loadgenWaitPct > WAIT_PCT && phase.otherOnLoadCpuPct > WAIT_PCT);
    out.push(
      `${who} ${name}: server CPU ${phase.serverCpuPct.toFixed(0)} % (main thread waiting ${phase.serverWaitPct.toFixed(1)} %), ` +
        `generator CPU ${phase.loadgenCpuPct.toFixed(0)} % (waiting ${phase.loadgenWaitPct.toFixed(1)} %), ` +
        `other processes ${phase.otherOnServerCpuPct.toFixed(0)} % of CPU ${s.serverCpu} and ${phase.otherOnLoadCpuPct.toFixed(0)} % of CPU ${s.loadCpu}` +
        (phase.loadgenCpuPct > LOADGEN_BUSY_PCT ? "; generator saturated: the figure is a lower bound" : "") +
        (disturbed ? "; other work in the way: figure disturbed" : ""),
    );
  }
  for (const [name, phase] of [
    ["throughput", r.throughput],
    ["latency", r.latency],
  ] as const) {
    if (!phase) continue;
    if (phase.dropped || phase.duplicates || phase.misrouted) {
      out.push(
        `${who} ${name}: ${phase.dropped} sessions dropped, ${phase.duplicates} duplicates, ${phase.misrouted} misrouted`,
      );
    }
  }
  if (r.logins?.derivations) {
    out.push(
      `${who} logins: the generator had to derive ${r.logins.derivations} SCRAM keys during the measured logins (figure too low)`,
    );
  }
  if (r.latency) {
    out.push(
      `${who} latency: ${r.latency.sent} sent at ${r.latency.achievedRate.toFixed(0)} msg/s, p90 ${r.latency.p90Ms.toFixed(2)} ms, max ${r.latency.maxMs.toFixed(2)} ms; started once the server was quiet, ${(r.latency.quietWaitMs / 1000).toFixed(1)} s after the flood`,
    );
  }
  return out;
}
