/**
 * Turns the two servers' results into figures (value for each, ratio Switchboard/Prosody,
 * target and whether it is met) and prints them as a table.
 */
import type { ServerResults } from "./scenario.js";
import type { BenchSettings } from "./settings.js";

export interface Figure {
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
}

type Compare = "le-prosody" | "ge-prosody" | "zero" | "none";

/** Above this the load generator, not the server, may be what limits a rate. */
const LOADGEN_BUSY_PCT = 90;
/** Above this share of a phase spent waiting for a CPU that other processes used, a figure is disturbed. */
const WAIT_PCT = 5;

function figure(
  label: string,
  unit: string,
  compare: Compare,
  pick: (r: ServerResults) => number | undefined,
  sb: ServerResults | undefined,
  pr: ServerResults | undefined,
): Figure {
  const a = sb ? (pick(sb) ?? null) : null;
  const b = pr ? (pick(pr) ?? null) : null;
  const ratio = a !== null && b !== null && b !== 0 ? a / b : null;
  let met: boolean | null = null;
  let target = "—";
  if (compare === "le-prosody") {
    target = "≤ Prosody";
    met = a !== null && b !== null ? a <= b : null;
  } else if (compare === "ge-prosody") {
    target = "≥ Prosody";
    met = a !== null && b !== null ? a >= b : null;
  } else if (compare === "zero") {
    target = "0";
    met = a !== null ? a === 0 : null;
  }
  return { label, unit, switchboard: a, prosody: b, ratio, target, met };
}

export function figures(
  s: BenchSettings,
  sb: ServerResults | undefined,
  pr: ServerResults | undefined,
): Figure[] {
  const out: Figure[] = [];
  for (const sessions of s.memorySessions) {
    out.push(
      figure(
        `Memory per idle session @ ${sessions.toLocaleString("en-US")}`,
        "KiB",
        "le-prosody",
        (r) => {
          const p = r.memory.find((m) => m.sessions === sessions);
          return p ? p.bytesPerSession / 1024 : undefined;
        },
        sb,
        pr,
      ),
    );
  }
  out.push(
    figure(
      `Logins per second (${s.logins.concurrency} in flight)`,
      "/s",
      "ge-prosody",
      (r) => r.logins?.perSecond,
      sb,
      pr,
    ),
    figure(
      "  … per second of server CPU",
      "/CPU-s",
      "ge-prosody",
      (r) => (r.logins ? r.logins.completed / (r.logins.serverCpuMs / 1000) : undefined),
      sb,
      pr,
    ),
    figure(
      `Routed messages per second (${s.messaging.users.toLocaleString("en-US")} users)`,
      "msg/s",
      "ge-prosody",
      (r) => r.throughput?.perSecond,
      sb,
      pr,
    ),
    figure(
      "  … per second of server CPU",
      "/CPU-s",
      "ge-prosody",
      (r) => (r.throughput ? r.throughput.received / (r.throughput.serverCpuMs / 1000) : undefined),
      sb,
      pr,
    ),
    figure(
      `Latency p50 @ ${s.latency.rate.toLocaleString("en-US")} msg/s`,
      "ms",
      "none",
      (r) => r.latency?.p50Ms,
      sb,
      pr,
    ),
    figure(
      `Latency p99 @ ${s.latency.rate.toLocaleString("en-US")} msg/s`,
      "ms",
      "none",
      (r) => r.latency?.p99Ms,
      sb,
      pr,
    ),
    figure(
      "Lost messages (throughput + latency)",
      "",
      "zero",
      (r) => (r.throughput && r.latency ? r.throughput.lost + r.latency.lost : undefined),
      sb,
      pr,
    ),
  );
  return out;
}

function num(v: number | null, unit: string): string {
  if (v === null || Number.isNaN(v)) return "n/a";
  const digits = unit === "ms" ? 2 : unit === "KiB" ? 1 : 0;
  return `${v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}${unit ? ` ${unit}` : ""}`;
}

export function formatTable(rows: Figure[]): string {
  const header = ["Figure", "Switchboard", "Prosody", "Ratio SB/P", "Target", "Met"];
  const body = rows.map((f) => [
    f.label,
    num(f.switchboard, f.unit),
    num(f.prosody, f.unit),
    f.ratio === null ? "n/a" : f.ratio.toFixed(2),
    f.target,
    f.met === null ? "n/a" : f.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** Remarks worth reading next to the table: errors, saturation of the generator, dropped sessions. */
export function notes(s: BenchSettings, results: ServerResults[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    for (const e of r.errors) out.push(`${r.server}: ${e}`);
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
        `${r.server} ${name}: server CPU ${phase.serverCpuPct.toFixed(0)} % (main thread waiting ${phase.serverWaitPct.toFixed(1)} %), ` +
          `generator CPU ${phase.loadgenCpuPct.toFixed(0)} % (waiting ${phase.loadgenWaitPct.toFixed(1)} %), ` +
          `other processes ${phase.otherOnServerCpuPct.toFixed(0)} % of CPU ${s.serverCpu} and ${phase.otherOnLoadCpuPct.toFixed(0)} % of CPU ${s.loadCpu}` +
          (phase.loadgenCpuPct > LOADGEN_BUSY_PCT
            ? "; generator saturated: the figure is a lower bound"
            : "") +
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
          `${r.server} ${name}: ${phase.dropped} sessions dropped, ${phase.duplicates} duplicates, ${phase.misrouted} misrouted`,
        );
      }
    }
    if (r.logins?.derivations) {
      out.push(
        `${r.server} logins: the generator had to derive ${r.logins.derivations} SCRAM keys during the measured logins (figure too low)`,
      );
    }
    if (r.latency) {
      out.push(
        `${r.server} latency: ${r.latency.sent} sent at ${r.latency.achievedRate.toFixed(0)} msg/s, p90 ${r.latency.p90Ms.toFixed(2)} ms, max ${r.latency.maxMs.toFixed(2)} ms`,
      );
    }
    if (r.gracefulStop === false) out.push(`${r.server}: did not exit cleanly (code 0) on SIGTERM`);
  }
  return out;
}
