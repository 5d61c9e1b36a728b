/**
 * The licensing module's metrics: sessions by client app, version and verification, the
 * accounts a cutoff would leave supported, proofs, tickets, refusals, warnings and the
 * leaked-key signal. Read at scrape time from what the module keeps anyway.
 */
import type { Clock } from "../../core/clock.js";
import type { MetricDefinition } from "../../core/metrics.js";
import type { SessionDirectory } from "../../core/session-directory.js";
import type { KeyAddressFigure, LicensingSnapshot } from "../../licensing/index.js";
import { type ObservedClient, observedClient, statusOf, supportShare } from "../../licensing/index.js";
import type { LicensingCounters } from "./enforcement.js";

/** Most app/version series exported; the rest are summed under app="other" (client names can be anything). */
const MAX_CLIENT_SERIES = 200;
const MAX_LABEL_LENGTH = 64;

function label(v: string | undefined): string {
  if (v === undefined) return "";
  return v.length > MAX_LABEL_LENGTH ? v.slice(0, MAX_LABEL_LENGTH) : v;
}

export interface LicensingMetricSources {
  sessions: SessionDirectory;
  clock: Clock;
  counters(): LicensingCounters;
  snapshot(): LicensingSnapshot;
  keyAddresses(): KeyAddressFigure[];
}

type Row = readonly [Readonly<Record<string, string>>, number];

export function licensingMetrics(src: LicensingMetricSources): MetricDefinition[] {
  return [
    {
      name: "switchboard_client_sessions",
      help: "Bound sessions by client app, version and verification (licensing module)",
      type: "gauge",
      labelNames: ["app", "version", "verification"],
      collect() {
        const rows = new Map<string, { app: string; version: string; verification: string; n: number }>();
        for (const s of src.sessions.all()) {
          if (s.closed) continue;
          const c = observedClient(s);
          const app = label(c.clientId);
          const version = label(c.version);
          const verification = statusOf(c);
          const key = `${app}\u0000${version}\u0000${verification}`;
          const row = rows.get(key);
          if (row) row.n++;
          else rows.set(key, { app, version, verification, n: 1 });
        }
        const sorted = [...rows.values()].sort((a, b) => b.n - a.n);
        const out: Row[] = [];
        const other = new Map<string, number>();
        sorted.forEach((row, i) => {
          if (i < MAX_CLIENT_SERIES)
            out.push([{ app: row.app, version: row.version, verification: row.verification }, row.n]);
          else other.set(row.verification, (other.get(row.verification) ?? 0) + row.n);
        });
        for (const [verification, n] of other) out.push([{ app: "other", version: "", verification }, n]);
        return out;
      },
    },
    {
      name: "switchboard_online_accounts_supported",
      help: "Online accounts whose every session runs a licensed client at or above its minimum version (licensing module)",
      type: "gauge",
      collect() {
        const byAccount = new Map<string, ObservedClient[]>();
        for (const s of src.sessions.all()) {
          if (s.closed || s.username === undefined) continue;
          const list = byAccount.get(s.username);
          if (list) list.push(observedClient(s));
          else byAccount.set(s.username, [observedClient(s)]);
        }
        const snap = src.snapshot();
        return supportShare(byAccount, snap, snap.policy, src.clock.now()).supportedAccounts;
      },
    },
    {
      name: "switchboard_licence_refusals_total",
      help: "Clients refused by the licensing policy, by reason; stage=login (before the session) or live (closed later)",
      type: "counter",
      labelNames: ["reason", "stage"],
      collect() {
        const c = src.counters();
        const login = new Map<string, number>(Object.entries(c.proofsRefused) as [string, number][]);
        login.set("unlicensed-client", (login.get("unlicensed-client") ?? 0) + c.unlicensedRefused);
        const out: Row[] = [];
        for (const [reason, n] of login) out.push([{ reason, stage: "login" }, n]);
        for (const [reason, n] of Object.entries(c.sessionsClosed))
          out.push([{ reason, stage: "live" }, n ?? 0]);
        return out;
      },
    },
    {
      name: "switchboard_licence_proofs_total",
      help: "Licence proofs received, by result",
      type: "counter",
      labelNames: ["result"],
      collect() {
        const c = src.counters();
        const refused = Object.values(c.proofsRefused).reduce((a, b) => a + (b ?? 0), 0);
        return [
          [{ result: "accepted" }, c.proofsAccepted],
          [{ result: "refused" }, refused],
          [{ result: "rate_limited" }, c.proofsRateLimited],
        ];
      },
    },
    {
      name: "switchboard_licence_tickets_total",
      help: "Licence tickets: issued after signed proofs, accepted in place of a signature, refused (expired or replaced key)",
      type: "counter",
      labelNames: ["event"],
      collect() {
        const c = src.counters();
        return [
          [{ event: "issued" }, c.ticketsIssued],
          [{ event: "accepted" }, c.ticketProofsAccepted],
          [{ event: "refused" }, c.ticketsRefused],
        ];
      },
    },
    {
      name: "switchboard_licence_key_addresses",
      help: "Distinct client addresses each app key proved its licence from in the current window (modules.licensing.keyAddressWindowMinutes); a sudden rise suggests an extracted key",
      type: "gauge",
      labelNames: ["client_id", "key_id"],
      collect: () =>
        src.keyAddresses().map((f): Row => [{ client_id: f.clientId, key_id: f.keyId }, f.addresses]),
    },
    {
      name: "switchboard_licence_key_address_alerts_total",
      help: "Times an app key passed modules.licensing.keyAddressAlert distinct addresses in one window",
      type: "counter",
      collect: () => src.counters().keyAddressAlerts,
    },
    {
      name: "switchboard_licence_warnings_total",
      help: "Warning headlines sent to accounts on unlicensed clients (warn mode)",
      type: "counter",
      collect: () => src.counters().warningsSent,
    },
    {
      name: "switchboard_licence_refusal_notices_total",
      help: "Headlines sent to sessions of clients without a proven licence just before the policy closed them",
      type: "counter",
      collect: () => src.counters().refusalNotices,
    },
  ];
}
