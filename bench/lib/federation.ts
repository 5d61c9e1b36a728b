/**
 * The federation phases: messages across one server-to-server link, and memory per idle link.
 *
 * - Throughput, for each pair of servers (Switchboard → Switchboard, Switchboard → Prosody,
 *   Prosody → Switchboard, Prosody → Prosody, the last the baseline): N senders logged in to
 *   server A each write to their own recipient logged in to server B, a bounded window in
 *   flight per sender, so every message crosses the one link A opened to B. The figure is
 *   messages delivered per second of server CPU, both servers' CPU time summed over the phase;
 *   lost, duplicated and misrouted messages are counted.
 * - Memory per idle link, for each server: the sending server serves K more domains, account 1
 *   of each sends one message to a recipient on the receiving server (a link per domain pair),
 *   then logs out; (RSS after − RSS before) of the receiving server / the links it gained
 *   (counted in the kernel's socket table).
 *
 * Both servers of a pair run on the server CPU, the load generator on the other; each pair is
 * a fresh start of both servers, on two loopback addresses of their own.
 */
import { mkdirSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { TestCa } from "../../test/helpers/test-ca.js";
import { TestDns } from "../../test/helpers/test-dns.js";
import type { AccountSet, ThroughputResult } from "../loadgen/protocol.js";
import {
  type FederationAddress,
  type FederationKind,
  type FederationServerSpec,
  logFilesOf,
  logTail,
  type RunningFederationServer,
  startFederationServer,
} from "./federation-servers.js";
import type { LoadGenerator } from "./load-generator.js";
import {
  cpuBusyMs,
  cpuTimeMs,
  freePort,
  makeTempDir,
  pinSelf,
  removeTempDir,
  settledRss,
  stopProcess,
} from "./processes.js";
import type { BenchSettings } from "./settings.js";
import { inboundLinks } from "./tcp-links.js";

const ACCOUNTS: Omit<AccountSet, "count"> = { prefix: "u", passwordPrefix: "bench-secret-" };
const SENDING_DOMAIN = "a.bench.local";
const RECEIVING_DOMAIN = "b.bench.local";
/** Links being opened at once in the memory phase. */
const LINK_CONCURRENCY = 10;
/** The target: Switchboard → Switchboard at least this many times Prosody → Prosody per server-CPU-second. */
export const FEDERATION_TARGET = 5;

export interface FederationPair {
  sender: FederationKind;
  recipient: FederationKind;
}

/** The pairs measured, the baseline (Prosody → Prosody) last. */
export const FEDERATION_PAIRS: FederationPair[] = [
  { sender: "switchboard", recipient: "switchboard" },
  { sender: "switchboard", recipient: "prosody" },
  { sender: "prosody", recipient: "switchboard" },
  { sender: "prosody", recipient: "prosody" },
];

export interface FederatedThroughput extends ThroughputResult {
  sender: FederationKind;
  recipient: FederationKind;
  senderCpuMs: number;
  recipientCpuMs: number;
  /** Messages delivered per second of both servers' CPU time. */
  perServerCpuSecond: number;
  /** Both servers' CPU over wall time, in % of one core (they share one). */
  serverCpuPct: number;
  loadgenCpuPct: number;
  /** CPU time other processes took on the server CPU and on the load CPU, in %. */
  otherOnServerCpuPct: number;
  otherOnLoadCpuPct: number;
}

export interface LinkMemory {
  server: FederationKind;
  /** Links into the server before and after the K domains sent their message. */
  linksBefore: number;
  linksAfter: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerLink: number | null;
  openSeconds: number;
}

export interface FederationResults {
  pairs: number;
  messages: number;
  window: number;
  idleLinks: number;
  throughput: FederatedThroughput[];
  memory: LinkMemory[];
  /** How busy each CPU was (other work) just before the phases, in %. */
  busyBeforePct?: number[];
  logs: string[];
  errors: string[];
}

const NAMES: Record<FederationKind, string> = { switchboard: "Switchboard", prosody: "Prosody" };

export function pairName(p: FederationPair): string {
  return `${NAMES[p.sender]} → ${NAMES[p.recipient]}`;
}

function log(text: string): void {
  console.error(`[federation] ${text}`);
}

/** Two addresses and a DNS server address on a loopback /24 of their own. */
function loopbackNet(): { a: string; b: string; dns: string } {
  const sub = 100 + Math.floor(Math.random() * 150);
  return { a: `127.91.${sub}.1`, b: `127.91.${sub}.2`, dns: `127.91.${sub}.53` };
}

interface Pair {
  a: RunningFederationServer;
  b: RunningFederationServer;
}

export async function benchFederation(
  s: BenchSettings,
  newLoadGenerator: (cpu: number) => LoadGenerator,
  logDir: string,
): Promise<FederationResults> {
  const f = s.federation;
  const results: FederationResults = {
    pairs: f.pairs,
    messages: f.messages,
    window: f.window,
    idleLinks: f.idleLinks,
    throughput: [],
    memory: [],
    logs: [],
    errors: [],
  };
  const fail = (message: string): void => {
    results.errors.push(message);
    log(`FAILED ${message}`);
  };
  const ca = new TestCa("Switchboard Bench CA");
  const certs = { a: ca.issue(SENDING_DOMAIN), b: ca.issue(RECEIVING_DOMAIN) };
  let loadgen: LoadGenerator | undefined;

  /** Starts a fresh pair, runs `run`, stops both and keeps their logs, whatever happens. */
  const withPair = async (
    name: string,
    pair: FederationPair,
    hostsOnA: number,
    run: (p: Pair, lg: LoadGenerator) => Promise<void>,
  ): Promise<void> => {
    const lg = loadgen;
    if (!lg) return;
    const dir = makeTempDir(`federation-${name}`);
    const net = loopbackNet();
    let dns: TestDns | undefined;
    const running: RunningFederationServer[] = [];
    try {
      const [c2sA, s2sA, c2sB, s2sB] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      const addrA: FederationAddress = {
        domain: SENDING_DOMAIN,
        hosts: Array.from({ length: hostsOnA }, (_, i) => `h${i + 1}.${SENDING_DOMAIN}`),
        host: net.a,
        c2sPort: c2sA,
        s2sPort: s2sA,
      };
      const addrB: FederationAddress = {
        domain: RECEIVING_DOMAIN,
        hosts: [],
        host: net.b,
        c2sPort: c2sB,
        s2sPort: s2sB,
      };
      dns = await TestDns.start(net.dns);
      for (const addr of [addrA, addrB]) {
        for (const d of [addr.domain, ...addr.hosts]) {
          dns
            .addSrv(`_xmpp-server._tcp.${d}`, {
              priority: 0,
              weight: 5,
              port: addr.s2sPort,
              target: addr.domain,
            })
            .addA(d, addr.host);
        }
      }
      const resolvConf = dns.resolvConf(dir);
      const spec = (
        kind: FederationKind,
        side: "a" | "b",
        addr: FederationAddress,
        peer: FederationAddress,
        count: number,
      ): FederationServerSpec => {
        const sideDir = path.join(dir, side);
        mkdirSync(sideDir);
        return {
          ...addr,
          kind,
          dir: sideDir,
          accounts: { ...ACCOUNTS, count },
          features: s.features,
          certFile: certs[side].certFile,
          keyFile: certs[side].keyFile,
          caFile: ca.caFile,
          peer,
          resolvConf,
        };
      };
      const specB = spec(pair.recipient, "b", addrB, addrA, f.pairs);
      const specA = spec(pair.sender, "a", addrA, addrB, f.pairs);
      log(`${name}: starting ${pair.recipient} on ${net.b}, then ${pair.sender} on ${net.a}…`);
      running.push(await startFederationServer(specB, s.serverCpu));
      running.push(await startFederationServer(specA, s.serverCpu));
      const [b, a] = running as [RunningFederationServer, RunningFederationServer];
      // Clients as in the other phases: a phone client's stream management and carbons with the mobile set.
      const mobile = s.features === "mobile";
      const client = { streamManagement: mobile, carbons: mobile };
      await lg.configure(
        { host: net.a, port: c2sA, domain: SENDING_DOMAIN, ...client },
        { ...ACCOUNTS, count: f.pairs },
      );
      await lg.configurePeer(
        { host: net.b, port: c2sB, domain: RECEIVING_DOMAIN, ...client },
        { ...ACCOUNTS, count: f.pairs },
      );
      await run({ a, b }, lg);
    } catch (err) {
      for (const r of running) log(`${r.spec.kind} ${r.spec.domain} log tail:\n${logTail(r)}`);
      fail(`${name}: ${(err as Error).message}`);
    } finally {
      await lg.release().catch(() => {});
      for (const r of running.reverse()) {
        const alive = r.child.exitCode === null && r.child.signalCode === null;
        if (!alive) fail(`${name}: ${r.spec.kind} (${r.spec.domain}) ended early (code ${r.child.exitCode})`);
        else await stopProcess(r.child);
        results.logs.push(...(await keepLogs(r, logDir, name)));
      }
      await dns?.stop();
      removeTempDir(dir);
    }
  };

  try {
    pinSelf(String(s.loadCpu));
    loadgen = newLoadGenerator(s.loadCpu);
    for (const pair of FEDERATION_PAIRS) {
      const name = `${pair.sender}-to-${pair.recipient}`;
      await withPair(name, pair, 0, async ({ a, b }, lg) => {
        await holdBoth(lg, f.pairs, s.holdConcurrency);
        const warm = await lg.federated(f.warmupMessages, f.window);
        log(`${pairName(pair)}: warm-up ${warm.perSecond.toFixed(0)} msg/s, ${warm.lost} lost`);
        if (warm.received === 0) throw new Error("no message crossed the link in the warm-up");
        const p0 = cpuProbe(a, b, s);
        const t = await lg.federated(f.messages, f.window);
        const r = measuredThroughput(pair, t, p0, cpuProbe(a, b, s));
        results.throughput.push(r);
        log(
          `${pairName(pair)}: ${t.perSecond.toFixed(0)} msg/s, ${r.perServerCpuSecond.toFixed(0)} per server-CPU-second, ` +
            `${t.lost} lost, ${t.duplicates} duplicates, ${t.misrouted} misrouted`,
        );
      });
    }
    for (const kind of ["switchboard", "prosody"] as const) {
      await withPair(
        `${kind}-idle-links`,
        { sender: kind, recipient: kind },
        f.idleLinks,
        async ({ a, b }, lg) => {
          const held = await lg.holdPeer(1, 1);
          if (held.failures > 0) throw new Error(`recipient login failed: ${held.errors.join("; ")}`);
          // One link first, so code and buffers every link shares are in the baseline.
          await openLinksOrFail(lg, [SENDING_DOMAIN]);
          const pid = b.child.pid as number;
          const rssBefore = await settledRss(pid, s.settleMs);
          const linksBefore = inboundLinks(b.spec.host, b.spec.s2sPort);
          const t0 = performance.now();
          await openLinksOrFail(lg, a.spec.hosts);
          const openSeconds = (performance.now() - t0) / 1000;
          const rssAfter = await settledRss(pid, s.settleMs);
          const linksAfter = inboundLinks(b.spec.host, b.spec.s2sPort);
          const gained = linksAfter - linksBefore;
          const m: LinkMemory = {
            server: kind,
            linksBefore,
            linksAfter,
            rssBeforeBytes: rssBefore,
            rssAfterBytes: rssAfter,
            bytesPerLink: gained > 0 ? (rssAfter - rssBefore) / gained : null,
            openSeconds,
          };
          results.memory.push(m);
          log(
            `${NAMES[kind]}: ${gained} idle links in: RSS ${mib(rssBefore)} → ${mib(rssAfter)}, ` +
              `${m.bytesPerLink === null ? "n/a" : `${(m.bytesPerLink / 1024).toFixed(1)} KiB`} per link`,
          );
          if (gained < a.spec.hosts.length) {
            fail(
              `${NAMES[kind]}: ${a.spec.hosts.length} domains sent, but only ${gained} more links are open`,
            );
          }
        },
      );
    }
  } finally {
    await loadgen?.stop();
    pinSelf(`0-${os.cpus().length - 1}`);
    removeTempDir(ca.dir);
  }
  return results;
}

async function holdBoth(lg: LoadGenerator, count: number, concurrency: number): Promise<void> {
  for (const held of [await lg.hold(count, concurrency), await lg.holdPeer(count, concurrency)]) {
    if (held.failures > 0 || held.held !== count) {
      throw new Error(`${held.failures} of ${count} logins failed, e.g. ${held.errors.join("; ")}`);
    }
  }
}

async function openLinksOrFail(lg: LoadGenerator, domains: string[]): Promise<void> {
  const r = await lg.links(domains, LINK_CONCURRENCY);
  if (r.failures > 0)
    throw new Error(`${r.failures} of ${domains.length} links failed: ${r.errors.join("; ")}`);
}

interface CpuProbe {
  at: number;
  a: number;
  b: number;
  serverCpuBusy: number;
  loadCpuBusy: number;
}

function cpuProbe(a: RunningFederationServer, b: RunningFederationServer, s: BenchSettings): CpuProbe {
  return {
    at: performance.now(),
    a: cpuTimeMs(a.child.pid as number),
    b: cpuTimeMs(b.child.pid as number),
    serverCpuBusy: cpuBusyMs(s.serverCpu),
    loadCpuBusy: cpuBusyMs(s.loadCpu),
  };
}

function measuredThroughput(
  pair: FederationPair,
  t: ThroughputResult,
  p0: CpuProbe,
  p1: CpuProbe,
): FederatedThroughput {
  const wall = p1.at - p0.at;
  const pct = (ms: number): number => Math.max(0, (ms / wall) * 100);
  const senderCpuMs = p1.a - p0.a;
  const recipientCpuMs = p1.b - p0.b;
  const servers = senderCpuMs + recipientCpuMs;
  return {
    ...t,
    sender: pair.sender,
    recipient: pair.recipient,
    senderCpuMs,
    recipientCpuMs,
    perServerCpuSecond: servers > 0 ? t.received / (servers / 1000) : 0,
    serverCpuPct: pct(servers),
    loadgenCpuPct: pct(t.cpuMs),
    otherOnServerCpuPct: pct(p1.serverCpuBusy - p0.serverCpuBusy - servers),
    otherOnLoadCpuPct: pct(p1.loadCpuBusy - p0.loadCpuBusy - t.cpuMs),
  };
}

async function keepLogs(r: RunningFederationServer, logDir: string, name: string): Promise<string[]> {
  const kept: string[] = [];
  mkdirSync(logDir, { recursive: true });
  for (const file of logFilesOf(r)) {
    const copy = path.join(logDir, `federation-${name}-${r.spec.domain}-${path.basename(file)}`);
    try {
      await copyFile(file, copy);
      kept.push(copy);
    } catch {
      // not written
    }
  }
  return kept;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Whether the target is met: null when either figure is missing or something was lost. */
export function federationTargetMet(r: FederationResults): boolean | null {
  const ss = r.throughput.find((t) => t.sender === "switchboard" && t.recipient === "switchboard");
  const pp = r.throughput.find((t) => t.sender === "prosody" && t.recipient === "prosody");
  if (!ss || !pp || pp.perServerCpuSecond === 0) return null;
  return ss.perServerCpuSecond >= FEDERATION_TARGET * pp.perServerCpuSecond && ss.lost === 0;
}

/** The lines printed after the other tables. */
export function federationLines(s: BenchSettings, r: FederationResults): string[] {
  const baseline = r.throughput.find((t) => t.sender === "prosody" && t.recipient === "prosody");
  const ratio = (v: number, base: number | undefined) =>
    base === undefined || base === 0 ? "n/a" : (v / base).toFixed(2);
  const rows = [
    [
      "Pair (sender → recipient)",
      "msg/s",
      "/P→P",
      "msg per server-CPU-s",
      "/P→P",
      "lost",
      "dup",
      "misrouted",
    ],
    ...r.throughput.map((t) => [
      pairName(t),
      t.perSecond.toFixed(0),
      ratio(t.perSecond, baseline?.perSecond),
      t.perServerCpuSecond.toFixed(0),
      ratio(t.perServerCpuSecond, baseline?.perServerCpuSecond),
      String(t.lost),
      String(t.duplicates),
      String(t.misrouted),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const out = [
    `Federation — one server-to-server link (TLS, SASL EXTERNAL), ${r.pairs} senders on one server each writing to their own recipient on the other, ` +
      `${r.messages.toLocaleString("en-US")} messages, ${r.window} in flight per sender; both servers on CPU ${s.serverCpu}, generator on CPU ${s.loadCpu}`,
    "",
    line(rows[0]!),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(1).map(line),
  ];
  const met = federationTargetMet(r);
  out.push(
    "",
    `Target: Switchboard → Switchboard ≥ ${FEDERATION_TARGET} × Prosody → Prosody per server-CPU-second, 0 lost: ${
      met === null ? "n/a" : met ? "met" : "NOT met"
    }`,
  );
  const sb = r.memory.find((m) => m.server === "switchboard");
  const pr = r.memory.find((m) => m.server === "prosody");
  // RSS can fall while links are opened (the heap shrinking after a collection): then the
  // links' memory is within the noise of the count, and no figure is given.
  const perLink = (m: LinkMemory | undefined) =>
    m?.bytesPerLink != null && m.bytesPerLink > 0 ? m.bytesPerLink : null;
  const kib = (m: LinkMemory | undefined) => {
    const v = perLink(m);
    if (v !== null) return `${(v / 1024).toFixed(1)} KiB`;
    return m ? `n/a (RSS ${mib(m.rssBeforeBytes)} → ${mib(m.rssAfterBytes)}: within the noise)` : "n/a";
  };
  const sbLink = perLink(sb);
  const prLink = perLink(pr);
  out.push(
    `Memory per idle s2s link (${r.idleLinks} links into the receiving server): Switchboard ${kib(sb)}, Prosody ${kib(pr)}, ratio ${
      sbLink !== null && prLink !== null ? (sbLink / prLink).toFixed(2) : "n/a"
    }`,
  );
  for (const t of r.throughput) {
    out.push(
      `- ${pairName(t)}: servers ${t.serverCpuPct.toFixed(0)} % of CPU ${s.serverCpu} (sender ${(t.senderCpuMs / 1000).toFixed(1)} s, recipient ${(t.recipientCpuMs / 1000).toFixed(1)} s), ` +
        `generator ${t.loadgenCpuPct.toFixed(0)} %, other processes ${t.otherOnServerCpuPct.toFixed(0)} % of CPU ${s.serverCpu} and ${t.otherOnLoadCpuPct.toFixed(0)} % of CPU ${s.loadCpu}` +
        (t.dropped > 0 ? `; ${t.dropped} sessions dropped` : ""),
    );
  }
  for (const e of r.errors) out.push(`- error: ${e}`);
  return out;
}
