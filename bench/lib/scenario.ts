/**
 * The measurement sequence for one server, for each transport (plaintext, STARTTLS, direct
 * TLS, WebSocket): start it pinned, then memory per idle session (with the mobile features:
 * once with clients enabling stream management, once with clients that do not), login rate,
 * message throughput and latency, then stop it. Each phase's failure is recorded
 * and the sequence goes on where it still makes sense; the server and the load generator are
 * always stopped and the temp dir removed.
 */
import type { ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ConnectionTarget } from "../loadgen/connection.js";
import type {
  AccountSet,
  HoldResult,
  LatencyResult,
  LoginsResult,
  ThroughputResult,
} from "../loadgen/protocol.js";
import { writeBenchCertificate } from "./certificate.js";
import { LoadGenerator } from "./load-generator.js";
import {
  cpuBusyMs,
  cpuTimeMs,
  freePort,
  makeTempDir,
  pinSelf,
  quietProcess,
  removeTempDir,
  rssBytes,
  runQueueWaitMs,
  settledRss,
  sleep,
  stopProcess,
} from "./processes.js";
import type { BenchServer } from "./server.js";
import {
  accountCount,
  type BenchSettings,
  type Phase,
  TRANSPORT_NAMES,
  type Transport,
  WEBSOCKET_PATH,
} from "./settings.js";

export interface MemoryPoint {
  sessions: number;
  rssBytes: number;
  bytesPerSession: number;
  loginSeconds: number;
}

export interface ServerCpu {
  /** Server CPU time (user + system) during the phase. */
  serverCpuMs: number;
  /** Server CPU time over wall time, in % of one core. */
  serverCpuPct: number;
  loadgenCpuPct: number;
  /**
   * Time the server's and the generator's main threads were runnable but waiting for a CPU
   * (other work in the way), in % of the phase: the measure of how disturbed a figure is.
   */
  serverWaitPct: number;
  loadgenWaitPct: number;
  /** CPU time other processes took on the server's CPU and on the load CPU, in % (idle time they used included). */
  otherOnServerCpuPct: number;
  otherOnLoadCpuPct: number;
}

/** The figures of one transport. */
export interface TransportResults {
  baselineRssBytes?: number;
  /** Idle sessions as the feature set has them (mobile: stream management enabled). */
  memory: MemoryPoint[];
  /** Mobile feature set only: the same with clients that do not enable stream management. */
  memoryNoSm?: MemoryPoint[];
  baselineRssNoSmBytes?: number;
  logins?: LoginsResult & ServerCpu;
  throughput?: ThroughputResult & ServerCpu;
  latency?: LatencyResult & ServerCpu & { quietWaitMs: number };
}

export interface ServerResults {
  server: string;
  version: string;
  passwordStorage: string;
  /** The malloc the server process ran on (read from its memory map). */
  allocator?: string;
  prepareSeconds?: number;
  transports: Partial<Record<Transport, TransportResults>>;
  /** How busy each CPU was (other work) just before this server's run, in %. */
  busyBeforePct?: number[];
  /** Copies of the server's logs (they outlive the temp dir). */
  logs?: string[];
  /** Did the server exit cleanly on SIGTERM? */
  gracefulStop?: boolean;
  errors: string[];
}

const ACCOUNTS: Omit<AccountSet, "count"> = { prefix: "u", passwordPrefix: "bench-secret-" };

function log(server: string, text: string): void {
  console.error(`[${server}] ${text}`);
}

interface Pids {
  server: number;
  loadgen: number;
}

interface CpuProbe {
  at: number;
  server: number;
  serverWait: number;
  loadgenWait: number;
  serverCpuBusy: number;
  loadCpuBusy: number;
}

function probe(pids: Pids, s: BenchSettings): CpuProbe {
  return {
    at: performance.now(),
    server: cpuTimeMs(pids.server),
    serverWait: runQueueWaitMs(pids.server),
    loadgenWait: runQueueWaitMs(pids.loadgen),
    serverCpuBusy: cpuBusyMs(s.serverCpu),
    loadCpuBusy: cpuBusyMs(s.loadCpu),
  };
}

/** CPU use over a phase; `loadgenCpuMs` is what the generator measured for itself. */
function cpuShare(pids: Pids, s: BenchSettings, p0: CpuProbe, loadgenCpuMs: number): ServerCpu {
  const p1 = probe(pids, s);
  const wall = p1.at - p0.at;
  const pct = (ms: number): number => Math.max(0, (ms / wall) * 100);
  const server = p1.server - p0.server;
  return {
    serverCpuMs: server,
    serverCpuPct: pct(server),
    loadgenCpuPct: pct(loadgenCpuMs),
    serverWaitPct: pct(p1.serverWait - p0.serverWait),
    loadgenWaitPct: pct(p1.loadgenWait - p0.loadgenWait),
    otherOnServerCpuPct: pct(p1.serverCpuBusy - p0.serverCpuBusy - server),
    // The orchestrator shares the load CPU but idles during a phase.
    otherOnLoadCpuPct: pct(p1.loadCpuBusy - p0.loadCpuBusy - loadgenCpuMs),
  };
}

/** Runs every phase against `server`; its logs are copied into `logDir` at the end. */
export async function benchServer(
  server: BenchServer,
  s: BenchSettings,
  logDir: string,
): Promise<ServerResults> {
  const results: ServerResults = {
    server: server.name,
    version: server.version(),
    passwordStorage: server.passwordStorage,
    transports: {},
    errors: [],
  };
  const fail = (message: string): void => {
    results.errors.push(message);
    log(server.name, `FAILED ${message}`);
  };
  const dir = makeTempDir(server.name);
  let loadgen: LoadGenerator | undefined;

  /**
   * One life of the server: started fresh, so no figure depends on what an earlier phase left
   * behind (Prosody, for one, routes messages markedly slower after 10,000 sessions came and went).
   */
  const life = async (
    transport: Transport,
    phase: Phase,
    run: (pid: number, lg: LoadGenerator) => Promise<void>,
  ): Promise<void> => {
    if (!loadgen || !s.phases.includes(phase)) return;
    const name = `${TRANSPORT_NAMES[transport]} ${phase}`;
    const lg = loadgen;
    const port = await freePort();
    let child: ChildProcess | undefined;
    let cause: string | undefined;
    const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
    try {
      child = await server.start(s.serverCpu, port, transport);
      results.allocator ??= allocatorOf(child.pid as number);
      await lg.configure(clientTarget(s, port, transport, phase), { ...ACCOUNTS, count: accountCount(s) });
      await run(child.pid as number, lg);
    } catch (err) {
      await sleep(500); // a server that just died may not have been reaped yet
      if (alive() || !child) fail(`${name}: ${(err as Error).message}`);
      else cause = (err as Error).message;
    } finally {
      if (child) {
        // Sessions end first, so stopping the server is a plain shutdown.
        await lg.release().catch(() => {});
        if (alive()) {
          const { graceful } = await stopProcess(child);
          if (!graceful || child.exitCode !== 0) results.gracefulStop = false;
          else results.gracefulStop ??= true;
        } else {
          fail(
            `server process ended during ${name} (code ${child.exitCode}, signal ${child.signalCode})` +
              (cause ? `; the phase then failed with: ${cause}` : ""),
          );
          const tail = safeTail(server);
          if (tail) log(server.name, `log tail:\n${tail}`);
        }
      }
    }
  };

  try {
    const accounts: AccountSet = { ...ACCOUNTS, count: accountCount(s) };
    log(server.name, `creating ${accounts.count} accounts…`);
    const t0 = performance.now();
    const certificate = await writeBenchCertificate(dir, s.domain);
    await server.prepare({
      dir,
      domain: s.domain,
      host: s.host,
      accounts,
      features: s.features,
      ...certificate,
    });
    results.prepareSeconds = (performance.now() - t0) / 1000;
    log(
      server.name,
      `accounts ready in ${results.prepareSeconds.toFixed(1)} s; server on CPU ${s.serverCpu}`,
    );

    // From here on the orchestrator stays off the server's CPU.
    pinSelf(String(s.loadCpu));
    loadgen = new LoadGenerator(s.loadCpu);

    for (const transport of s.transports) {
      const r: TransportResults = { memory: [] };
      results.transports[transport] = r;
      const tn = TRANSPORT_NAMES[transport];
      /** RSS before the first login, then at each count of idle sessions. */
      const memory = async (
        pid: number,
        lg: LoadGenerator,
        what: string,
      ): Promise<[number, MemoryPoint[]]> => {
        const idleRss = () => settledRss(pid, s.idleMs, s.idleMs + 15_000);
        await sleep(1_000);
        const baseline = await idleRss();
        log(server.name, `${tn}${what}: RSS before logins: ${mb(baseline)}`);
        const points: MemoryPoint[] = [];
        for (const sessions of s.memorySessions) {
          const held = await lg.hold(sessions, s.holdConcurrency);
          checkHold(held, sessions);
          const rss = await idleRss();
          const point = {
            sessions,
            rssBytes: rss,
            bytesPerSession: (rss - baseline) / sessions,
            loginSeconds: held.wallMs / 1000,
          };
          points.push(point);
          log(
            server.name,
            `${tn}${what}: ${sessions} idle sessions: RSS ${mb(rss)}, ${kb(point.bytesPerSession)} per session`,
          );
        }
        return [baseline, points];
      };
      await life(transport, "memory", async (pid, lg) => {
        [r.baselineRssBytes, r.memory] = await memory(pid, lg, "");
      });
      // Without the mobile features no client enables stream management in either phase.
      if (s.features === "mobile") {
        await life(transport, "memory-no-sm", async (pid, lg) => {
          [r.baselineRssNoSmBytes, r.memoryNoSm] = await memory(pid, lg, " without stream management");
        });
      }

      await life(transport, "logins", async (pid, lg) => {
        const { warmup, count, concurrency } = s.logins;
        const accountsUsed = Math.min(count, accountCount(s));
        await lg.logins(warmup, concurrency, accountsUsed);
        const p0 = probe({ server: pid, loadgen: lg.pid }, s);
        const l = await lg.logins(count, concurrency, accountsUsed);
        r.logins = { ...l, ...cpuShare({ server: pid, loadgen: lg.pid }, s, p0, l.cpuMs) };
        log(
          server.name,
          `${tn}: logins: ${l.perSecond.toFixed(0)}/s (${l.completed} done, ${l.failures} failed)`,
        );
        if (l.failures > 0) throw new Error(`${l.failures} logins failed, e.g. ${l.errors.join("; ")}`);
      });

      await life(transport, "messages", async (pid, lg) => {
        const m = s.messaging;
        checkHold(await lg.hold(m.users, s.holdConcurrency), m.users);
        const warm = await lg.throughput(m.warmupMessages, m.window);
        log(server.name, `${tn}: warm-up: ${warm.perSecond.toFixed(0)} msg/s, ${warm.lost} lost`);
        const pids = { server: pid, loadgen: lg.pid };
        let p0 = probe(pids, s);
        const t = await lg.throughput(m.messages, m.window);
        r.throughput = { ...t, ...cpuShare(pids, s, p0, t.cpuMs) };
        log(
          server.name,
          `${tn}: throughput: ${t.perSecond.toFixed(0)} msg/s, ${t.lost} lost, ${t.dropped} sessions dropped`,
        );
        // The paced phase starts on a quiet server: its first messages would otherwise measure
        // what the flood left behind (docs/benchmarks.md, "The flood's aftermath").
        const quietWaitMs = await quietProcess(pid);
        p0 = probe(pids, s);
        const l = await lg.latency(s.latency.rate, s.latency.durationMs);
        r.latency = { ...l, ...cpuShare(pids, s, p0, l.cpuMs), quietWaitMs };
        log(
          server.name,
          `${tn}: latency at ${l.achievedRate.toFixed(0)} msg/s: p50 ${l.p50Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms, ${l.lost} lost`,
        );
        log(server.name, `${tn}: RSS at the end: ${mb(rssBytes(pid))}`);
      });
    }
  } catch (err) {
    fail((err as Error).message);
  } finally {
    await loadgen?.stop();
    pinSelf(`0-${os.cpus().length - 1}`); // back to every CPU for the next server's preparation
    results.logs = keepLogs(server, logDir);
    removeTempDir(dir);
  }
  return results;
}

/** How the load generator's clients connect and what they enable, for one phase. */
export function clientTarget(
  s: BenchSettings,
  port: number,
  transport: Transport,
  phase: Phase,
): ConnectionTarget {
  const mobile = s.features === "mobile";
  return {
    host: s.host,
    port,
    domain: s.domain,
    tls: transport === "starttls",
    directTls: transport === "tls",
    ...(transport === "websocket" ? { websocketPath: WEBSOCKET_PATH } : {}),
    streamManagement: mobile && phase !== "memory-no-sm",
    carbons: mobile,
  };
}

/** "jemalloc" when the process has it mapped, else the system's malloc. */
function allocatorOf(pid: number): string {
  try {
    const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
    return /libjemalloc/.test(maps) ? "jemalloc" : "system malloc";
  } catch {
    return "unknown";
  }
}

function checkHold(r: HoldResult, wanted: number): void {
  if (r.failures > 0 || r.held !== wanted) {
    throw new Error(
      `${r.failures} of the logins to reach ${wanted} sessions failed, e.g. ${r.errors.join("; ")}`,
    );
  }
}

function keepLogs(server: BenchServer, logDir: string): string[] {
  const kept: string[] = [];
  try {
    mkdirSync(logDir, { recursive: true });
    for (const file of server.logFiles()) {
      if (!existsSync(file)) continue;
      const base = path.basename(file);
      const copy = path.join(logDir, base.startsWith(server.name) ? base : `${server.name}-${base}`);
      copyFileSync(file, copy);
      kept.push(copy);
    }
  } catch {
    // setup never ran: nothing to keep
  }
  return kept;
}

function safeTail(server: BenchServer): string {
  try {
    return server.logTail(20);
  } catch {
    return "";
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
