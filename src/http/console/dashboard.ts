/**
 * The dashboard: sessions now, messages per minute, the supported share, the policy in
 * force, sessions by app and version (refreshed by htmx every 10 s), adoption over time
 * (Chart.js), and what enforcement would cut off if it started now. Figures come from the
 * `stats clients` command, the same report the CLI prints; in a cluster, sessions and
 * messages per minute are the cluster's, with a row per node (`cluster status`, see
 * cluster-figures.ts).
 */

import type { FastifyInstance, FastifyRequest } from "fastify";
import { count } from "../../commands/plural.js";
import type { ClientStatsReport } from "../../licensing/index.js";
import { badge, emptyState, instant, percent, table } from "../assets/components.js";
import { sendFragment } from "../assets/respond.js";
import { html, type SafeHtml } from "../html.js";
import type { AdoptionHistory, AdoptionPoint } from "./adoption.js";
import { type ClusterFigures, clusterFigures, nodesSection } from "./cluster-figures.js";
import { CONSOLE, type ConsoleEnv, route } from "./env.js";
import { noRelayWarning } from "./mail.js";

const LIVE_REFRESH = "every 10s";
const DEFAULT_DAYS = 30;

const clientLabel = (clientId: string | null, version: string | null) =>
  `${clientId ?? "unknown client"}${version ? ` ${version}` : ""}`;

const statusBadge = (status: string) =>
  badge(status, status === "verified" ? "ok" : status === "unverified" ? "warn" : "info");

function livePanel(
  report: ClientStatsReport,
  messagesPerMinute: number | undefined,
  cluster: ClusterFigures,
): SafeHtml {
  const live = report.live;
  const next = report.policy.nextStage;
  const whole = cluster && "status" in cluster ? cluster.status : undefined;
  const sessions = whole ? whole.sessions : live?.sessions;
  const online = live ? `${count(live.accounts, "account")} online` : undefined;
  const perMinute = whole ? whole.messagesPerMinute : messagesPerMinute;
  const cards = html`<div class="cards">
    <div class="card"><h2>Sessions now</h2><p class="figure" data-testid="sessions-now">${sessions ?? "—"}</p>
      <p class="muted">${
        whole
          ? [online, `on ${count(whole.nodes.length, "node")}`].filter((t) => t !== undefined).join(" ")
          : (online ?? "no live figures: is the server running?")
      }</p></div>
    <div class="card"><h2>Messages per minute</h2><p class="figure" data-testid="messages-per-minute">${
      perMinute === undefined ? "—" : Math.round(perMinute)
    }</p><p class="muted">${whole ? "messages from clients, last minute, all nodes" : cluster ? "messages from clients, last minute, this node only" : "messages routed, last minute"}</p></div>
    <div class="card"><h2>Supported today</h2><p class="figure" data-testid="supported-share">${percent(
      report.daily.supported.share,
    )}</p><p class="muted">${report.daily.supported.supportedAccounts} of ${report.daily.accounts} active ${report.daily.accounts === 1 ? "account" : "accounts"} on licensed, supported clients</p></div>
    <div class="card"><h2>Policy</h2><p class="figure" data-testid="policy-mode">${report.policy.mode}</p>
      <p class="muted">${report.policy.percentage < 100 ? `${report.policy.percentage} % of accounts · ` : ""}${
        next ? html`next: ${next.mode} from ${instant(next.at)}` : "nothing scheduled"
      }</p></div>
  </div>`;

  // Sessions by app and version (platforms summed) for the chart; the table keeps the detail.
  const byVersion = new Map<string, number>();
  for (const r of live?.rows ?? []) {
    const label = `${clientLabel(r.clientId, r.version)} (${r.status})`;
    byVersion.set(label, (byVersion.get(label) ?? 0) + r.sessions);
  }
  const chartData = { labels: [...byVersion.keys()], sessions: [...byVersion.values()] };
  const rows = (live?.rows ?? []).map((r) => [
    r.clientId ?? html`<span class="muted">unknown</span>`,
    r.version ?? "—",
    r.platform ?? "—",
    statusBadge(r.status),
    r.sessions,
    r.accounts,
  ]);
  const cutoff = live?.cutoff;
  return html`<section id="live-panel" aria-labelledby="live-heading" hx-get="${CONSOLE}/live" hx-trigger="${LIVE_REFRESH}" hx-swap="outerHTML" data-testid="live-panel">
    <h2 id="live-heading" class="visually-hidden">Live figures</h2>
    ${cards}
    ${nodesSection(cluster)}
    <div class="sections">
      <div>
        <h2>Sessions by app and version</h2>
        ${
          live && live.rows.length > 0
            ? html`<div class="chart-box"><canvas id="versions-chart" data-chart="${JSON.stringify(chartData)}" role="img" aria-label="Bar chart of live sessions by app and version; the same figures are in the table below"></canvas></div>`
            : ""
        }
        ${table({
          caption: "Live sessions by app, version and platform",
          captionHidden: true,
          head: ["App", "Version", "Platform", "Verification", "Sessions", "Accounts"],
          numeric: [4, 5],
          rows,
          empty: live ? "No sessions right now." : "No live figures: the server has not reported any.",
          testid: "sessions-by-version",
        })}
      </div>
      <div>
        <h2>If enforcement started now</h2>
        ${
          !cutoff
            ? emptyState("No live figures.")
            : cutoff.sessions === 0
              ? emptyState("Nothing would be cut off: every live session runs a supported client.")
              : html`<p data-testid="cutoff-now"><strong>${cutoff.sessions}</strong> ${cutoff.sessions === 1 ? "session" : "sessions"} of <strong>${cutoff.accounts}</strong> ${cutoff.accounts === 1 ? "account" : "accounts"} would be cut off.</p>
                ${table({
                  caption: "Sessions enforcement would cut off now",
                  captionHidden: true,
                  head: ["App", "Version", "Why", "Sessions", "Accounts"],
                  numeric: [3, 4],
                  rows: cutoff.rows.map((r) => [
                    r.clientId ?? "unknown",
                    r.version ?? "—",
                    r.reason,
                    r.sessions,
                    r.accounts,
                  ]),
                  empty: "Nothing would be cut off.",
                })}`
        }
        ${
          cutoff && (cutoff.spared.exempt.sessions > 0 || cutoff.spared.rollout.sessions > 0)
            ? html`<p class="muted">Spared: ${count(cutoff.spared.exempt.sessions, "session")} of exempt accounts.</p>`
            : ""
        }
      </div>
    </div>
  </section>`;
}

function adoptionSection(points: AdoptionPoint[]): SafeHtml {
  const anyData = points.some((p) => p.accounts > 0);
  const pct = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 10);
  return html`<section aria-labelledby="adoption-heading" data-testid="adoption">
    <h2 id="adoption-heading">Adoption over the last ${points.length} days</h2>
    <p class="muted">Share of the accounts active each day whose clients are all licensed and supported (judged by the current policy), and whose clients all proved a licence.</p>
    ${
      anyData
        ? html`<div class="chart-box"><canvas id="adoption-chart" data-chart="${JSON.stringify({
            days: points.map((p) => p.day),
            supported: points.map((p) => pct(p.supported)),
            licensed: points.map((p) => pct(p.licensed)),
          })}" role="img" aria-label="Line chart of the daily share of active accounts on licensed, supported clients; the figures are in the table below"></canvas></div>
          <details><summary>Figures per day</summary>
            ${table({
              caption: "Adoption per day",
              captionHidden: true,
              head: ["Day", "Active accounts", "Supported", "Licensed"],
              numeric: [1, 2, 3],
              rows: points
                .filter((p) => p.accounts > 0)
                .map((p) => [p.day, p.accounts, percent(p.supported), percent(p.licensed)]),
              empty: "No activity recorded.",
              testid: "adoption-table",
            })}
          </details>`
        : emptyState("No activity recorded yet: the chart appears once accounts have logged in.")
    }
  </section>`;
}

export function registerDashboard(app: FastifyInstance, env: ConsoleEnv, history: AdoptionHistory): void {
  const report = (request: FastifyRequest) => env.data<ClientStatsReport>(request, "stats clients");

  app.get<{ Querystring: { days?: string } }>(route(CONSOLE), async (request, reply) => {
    const requested = Number.parseInt(request.query.days ?? "", 10);
    const days = Number.isFinite(requested) ? Math.min(Math.max(requested, 7), 365) : DEFAULT_DAYS;
    const [r, points, cluster] = await Promise.all([
      report(request),
      history.series(days),
      clusterFigures(env, request),
    ]);
    return env.page(request, reply, {
      title: "Dashboard",
      current: "dashboard",
      scripts: ["dashboard"],
      body: html`<h1>Dashboard</h1>
        ${noRelayWarning({ configured: env.deps.config.mail.smtp.host !== undefined })}
        ${livePanel(r, env.deps.messagesPerMinute?.(), cluster)}
        ${adoptionSection(points)}
        <p class="muted">Figures at ${instant(r.at)}${
          r.staleNodes.length > 0 ? `; ${count(r.staleNodes.length, "server node")} stopped reporting` : ""
        }.</p>`,
    });
  });

  app.get(route(`${CONSOLE}/live`), async (request, reply) => {
    const [r, cluster] = await Promise.all([report(request), clusterFigures(env, request)]);
    return sendFragment(reply, livePanel(r, env.deps.messagesPerMinute?.(), cluster));
  });
}
