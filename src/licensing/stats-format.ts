/** The client statistics report as text tables for people (`switchboard stats clients`). */

import type { SupportShare, Tally } from "./stats-model.js";
import type { ClientStatsReport } from "./stats-report.js";

/** Columns padded to their widest cell; numeric columns right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string[] {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

const dash = (v: string | null): string => v ?? "-";
const app = (v: string | null): string => v ?? "(unknown)";

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function percent(share: number | null): string {
  return share === null ? "n/a" : `${(share * 100).toFixed(1)} %`;
}

function shareLine(s: SupportShare): string {
  return `${s.supportedAccounts} of ${plural(s.accounts, "account")} (${percent(s.share)})`;
}

function tallyText(t: Tally): string {
  return `${plural(t.sessions, "session")} of ${plural(t.accounts, "account")}`;
}

function iso(t: number): string {
  return new Date(t).toISOString().replace(".000Z", "Z");
}

export function formatClientStats(r: ClientStatsReport): string {
  const out: string[] = [];
  const p = r.policy;
  const mode = p.percentage < 100 ? `${p.mode} for ${p.percentage} % of accounts` : p.mode;
  let policyLine = `Policy: ${mode} (registry revision ${p.revision})`;
  if (p.nextStage) {
    const pct = p.nextStage.percentage ?? 100;
    policyLine += `; next: ${p.nextStage.mode}${pct < 100 ? ` for ${pct} % of accounts` : ""} at ${iso(p.nextStage.at)}`;
  }
  out.push(policyLine, "");

  const live = r.live;
  if (!live) {
    out.push("Live: no figures (no server has written a snapshot in the last 30 s)");
  } else {
    const oldest = Math.min(...live.nodes.map((n) => n.at));
    out.push(
      `Live: ${plural(live.sessions, "session")}, ${plural(live.accounts, "account")} ` +
        `(${plural(live.nodes.length, "node")}, as of ${iso(oldest)})`,
    );
    if (live.rows.length > 0) {
      out.push(
        ...table(
          ["APP", "VERSION", "PLATFORM", "STATUS", "SESSIONS", "ACCOUNTS"],
          live.rows.map((x) => [
            app(x.clientId),
            dash(x.version),
            dash(x.platform),
            x.status,
            x.sessions,
            x.accounts,
          ]),
        ).map((l) => `  ${l}`),
      );
    }
    out.push(`Live accounts on a supported client: ${shareLine(live.supported)}`);
  }
  for (const n of r.staleNodes)
    out.push(`(ignored the stale snapshot of node ${n.nodeId}, last written ${iso(n.at)})`);
  out.push("");

  const d = r.daily;
  out.push(`Active accounts on ${d.day} (UTC): ${d.accounts}`);
  if (d.rows.length > 0) {
    out.push(
      ...table(
        ["APP", "VERSION", "STATUS", "ACCOUNTS"],
        d.rows.map((x) => [app(x.clientId), dash(x.version), x.status, x.accounts]),
      ).map((l) => `  ${l}`),
    );
  }
  out.push(
    `Headline: ${shareLine(d.supported)} used only licensed clients at or above the minimum version`,
    "",
  );

  if (live) {
    const c = live.cutoff;
    out.push(
      c.sessions === 0
        ? "If enforcement started now: nothing would be cut off"
        : `If enforcement started now: ${tallyText(c)} would be cut off`,
    );
    if (c.rows.length > 0) {
      out.push(
        ...table(
          ["APP", "VERSION", "STATUS", "REASON", "SESSIONS", "ACCOUNTS"],
          c.rows.map((x) => [app(x.clientId), dash(x.version), x.status, x.reason, x.sessions, x.accounts]),
        ).map((l) => `  ${l}`),
      );
    }
    if (c.spared.exempt.sessions > 0) out.push(`Spared by exemption: ${tallyText(c.spared.exempt)}`);
  }
  return out.join("\n").trimEnd();
}
