/**
 * Login throughput by storage backend: two Switchboard servers started alike, one on SQLite
 * (its data directory) and one on PostgreSQL (a database created for the run and dropped after),
 * both pinned to the server CPU, with the same accounts imported by `user import`. Only one is
 * under load at a time: rounds of full logins alternate in ABBA groups (SQLite, PostgreSQL,
 * PostgreSQL, SQLite), so drift within a group falls on both alike; the median over the groups
 * of PostgreSQL's rate relative to SQLite's is the result.
 *
 * The PostgreSQL server is the machine's own (SWITCHBOARD_BENCH_POSTGRES_URL, default the local
 * one on 127.0.0.1:5432): its processes are not pinned and share the two CPUs with the server and
 * the load generator, as a database on the same host would. Their CPU time per login is measured
 * (all processes named "postgres") and reported beside the server's own.
 */
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { SERVER_NODE_FLAGS } from "../../src/bin/node-flags.js";
import type { ConnectionTarget } from "../loadgen/connection.js";
import type { AccountSet, LoginsResult } from "../loadgen/protocol.js";
import { median } from "./licensing-logins.js";
import {
  cpuBusyMs,
  cpuTimeMs,
  freePort,
  makeTempDir,
  pinSelf,
  processCpu,
  processCpuSince,
  removeTempDir,
  spawnPinned,
  stopProcess,
  waitForPort,
} from "./processes.js";
import type { BenchSettings } from "./settings.js";
import { switchboardConfig } from "./switchboard.js";

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CLI = path.join(ROOT, "dist", "src", "bin", "switchboard.js");

export const BENCH_POSTGRES_URL =
  process.env.SWITCHBOARD_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const ACCOUNTS = 200;
const ACCOUNT_SET: AccountSet = { prefix: "st", passwordPrefix: "bench-secret-", count: ACCOUNTS };

export type Backend = "sqlite" | "postgres";
const ORDER: Backend[] = ["sqlite", "postgres", "postgres", "sqlite"];

/** What this phase needs of the load generator (bench/lib/load-generator.ts). */
export interface StorageLoginDriver {
  configure(target: ConnectionTarget, accounts: AccountSet): Promise<void>;
  logins(count: number, concurrency: number, accounts: number): Promise<LoginsResult>;
  stop(): Promise<void>;
}

export interface StorageRound {
  backend: Backend;
  group: number;
  completed: number;
  failures: number;
  wallMs: number;
  perSecond: number;
  /** Switchboard's own CPU time per login. */
  serverCpuMsPerLogin: number;
  /** CPU time of every PostgreSQL process per login (also during SQLite rounds: its idle cost). */
  postgresCpuMsPerLogin: number;
  /** CPU time other processes took on the server's CPU, in % of the round (PostgreSQL included). */
  otherOnServerCpuPct: number;
  loadgenCpuPct: number;
}

export interface BackendFigures {
  backend: Backend;
  perSecond: number | null;
  serverCpuMsPerLogin: number | null;
  postgresCpuMsPerLogin: number | null;
}

export interface StorageLoginResults {
  accounts: number;
  concurrency: number;
  loginsPerRound: number;
  groups: number;
  rounds: StorageRound[];
  backends: BackendFigures[];
  /** PostgreSQL's login rate relative to SQLite's, per group, in %. */
  groupRatiosPct: number[];
  medianRatioPct: number | null;
  /** Why the phase did not run, when it did not. */
  skipped?: string;
  errors: string[];
}

function log(text: string): void {
  console.error(`[storage] ${text}`);
}

/** Creates a database for the run, or says why PostgreSQL cannot be used. */
export async function createBenchDatabase(): Promise<{ url: string; drop: () => Promise<void> } | string> {
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>) => {
    const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL, connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const name = `switchboard_bench_${randomBytes(4).toString("hex")}`;
  try {
    await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  } catch (error) {
    return `PostgreSQL at ${BENCH_POSTGRES_URL}: ${(error as Error).message}`;
  }
  const url = new URL(BENCH_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

interface Server {
  backend: Backend;
  child: ChildProcess;
  port: number;
}

async function startServer(
  s: BenchSettings,
  dir: string,
  backend: Backend,
  storage: string[],
): Promise<Server> {
  const config = path.join(dir, "switchboard.yaml");
  const dataDir = path.join(dir, `data-${backend}`);
  const lines: string[] = [];
  for (let i = 1; i <= ACCOUNTS; i++)
    lines.push(`${ACCOUNT_SET.prefix}${i},${ACCOUNT_SET.passwordPrefix}${i}`);
  const file = path.join(dir, "accounts.csv");
  await writeFile(file, `${lines.join("\n")}\n`);
  const common = ["--config", config, "--data-dir", dataDir, "--domain", s.domain, ...storage];
  try {
    await execFileAsync(process.execPath, [CLI, "user", "import", file, ...common], { cwd: dir });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`switchboard user import (${backend}) failed: ${e.stderr || e.message}`);
  }
  const port = await freePort();
  // biome-ignore format: option and value side by side
  const args = [CLI, "start", ...common, "--bind", s.host, "--c2s-port", String(port),
    "--c2s-tls-port", "0", "--http-port", "0", "--component-port", "0", "--s2s-port", "0", "--allow-plaintext",
    "--log-level", "warn"];
  const child = spawnPinned(process.execPath, [...SERVER_NODE_FLAGS, ...args], {
    cpu: s.serverCpu,
    cwd: dir,
    logFile: path.join(dir, `switchboard-${backend}.log`),
  });
  await waitForPort(s.host, port, child, 30_000);
  return { backend, child, port };
}

function rate(rounds: StorageRound[]): number | null {
  const wall = rounds.reduce((t, r) => t + r.wallMs, 0);
  return wall > 0 ? rounds.reduce((t, r) => t + r.completed, 0) / (wall / 1000) : null;
}

function perLogin(rounds: StorageRound[], pick: (r: StorageRound) => number): number | null {
  const done = rounds.reduce((t, r) => t + r.completed, 0);
  return done > 0 ? rounds.reduce((t, r) => t + pick(r) * r.completed, 0) / done : null;
}

export async function benchStorageLogins(
  s: BenchSettings,
  startLoadGenerator: (cpu: number) => StorageLoginDriver,
): Promise<StorageLoginResults> {
  const results: StorageLoginResults = {
    accounts: ACCOUNTS,
    concurrency: s.logins.concurrency,
    loginsPerRound: Math.max(100, Math.round(s.logins.count / 4)),
    groups: s.mode === "full" ? 6 : 2,
    rounds: [],
    backends: [],
    groupRatiosPct: [],
    medianRatioPct: null,
    errors: [],
  };
  const database = await createBenchDatabase();
  if (typeof database === "string") {
    results.skipped = database;
    log(`skipped: ${database}`);
    return results;
  }
  const dir = makeTempDir("storage");
  const servers: Server[] = [];
  let lg: StorageLoginDriver | undefined;
  try {
    await writeFile(path.join(dir, "switchboard.yaml"), switchboardConfig());
    log(`two servers (SQLite, PostgreSQL), ${ACCOUNTS} accounts each…`);
    servers.push(await startServer(s, dir, "sqlite", []));
    servers.push(await startServer(s, dir, "postgres", ["--storage", database.url]));
    pinSelf(String(s.loadCpu));
    lg = startLoadGenerator(s.loadCpu);
    const target = (server: Server): ConnectionTarget => ({
      host: s.host,
      port: server.port,
      domain: s.domain,
    });
    // Unmeasured: the JIT settles, the generator derives every account's SCRAM keys once.
    for (const server of servers) {
      await lg.configure(target(server), ACCOUNT_SET);
      const warm = await lg.logins(Math.max(1_000, results.loginsPerRound), s.logins.concurrency, ACCOUNTS);
      if (warm.failures > 0) throw new Error(`${server.backend}: logins failed: ${warm.errors.join("; ")}`);
    }
    for (let group = 0; group < results.groups; group++) {
      for (const backend of ORDER) {
        const server = servers.find((x) => x.backend === backend)!;
        await lg.configure(target(server), ACCOUNT_SET);
        const pid = server.child.pid as number;
        const [cpu0, pg0, busy0] = [cpuTimeMs(pid), processCpu("postgres"), cpuBusyMs(s.serverCpu)];
        const r = await lg.logins(results.loginsPerRound, s.logins.concurrency, ACCOUNTS);
        const serverMs = cpuTimeMs(pid) - cpu0;
        const round: StorageRound = {
          backend,
          group,
          completed: r.completed,
          failures: r.failures,
          wallMs: r.wallMs,
          perSecond: r.perSecond,
          serverCpuMsPerLogin: r.completed > 0 ? serverMs / r.completed : 0,
          postgresCpuMsPerLogin: r.completed > 0 ? processCpuSince(pg0, "postgres") / r.completed : 0,
          otherOnServerCpuPct: Math.max(0, ((cpuBusyMs(s.serverCpu) - busy0 - serverMs) / r.wallMs) * 100),
          loadgenCpuPct: (r.cpuMs / r.wallMs) * 100,
        };
        results.rounds.push(round);
        log(
          `#${group + 1} ${backend}: ${r.perSecond.toFixed(0)} logins/s, ${round.serverCpuMsPerLogin.toFixed(3)} ms ` +
            `server CPU and ${round.postgresCpuMsPerLogin.toFixed(3)} ms PostgreSQL CPU per login (${r.failures} failed)`,
        );
        if (r.failures > 0)
          results.errors.push(`${backend} round: ${r.failures} logins failed, e.g. ${r.errors.join("; ")}`);
      }
      const inGroup = results.rounds.filter((r) => r.group === group);
      const [a, b] = [
        rate(inGroup.filter((r) => r.backend === "sqlite")),
        rate(inGroup.filter((r) => r.backend === "postgres")),
      ];
      if (a && b !== null) results.groupRatiosPct.push((100 * b) / a);
    }
  } catch (err) {
    results.errors.push((err as Error).message);
    log(`FAILED ${(err as Error).message}`);
  } finally {
    await lg?.stop();
    for (const server of servers) await stopProcess(server.child);
    pinSelf(`0-${os.cpus().length - 1}`);
    removeTempDir(dir);
    await database
      .drop()
      .catch((e: Error) => results.errors.push(`dropping the bench database: ${e.message}`));
  }
  for (const backend of ["sqlite", "postgres"] as const) {
    const rounds = results.rounds.filter((r) => r.backend === backend);
    results.backends.push({
      backend,
      perSecond: rate(rounds),
      serverCpuMsPerLogin: perLogin(rounds, (r) => r.serverCpuMsPerLogin),
      postgresCpuMsPerLogin: perLogin(rounds, (r) => r.postgresCpuMsPerLogin),
    });
  }
  results.medianRatioPct = median(results.groupRatiosPct);
  return results;
}

/** Lines for the bench report. */
export function storageLoginLines(r: StorageLoginResults): string[] {
  if (r.skipped) return [`Login throughput by storage backend: not measured (${r.skipped})`];
  const n = (v: number | null, digits = 0) => (v === null ? "n/a" : v.toFixed(digits));
  const lines = [
    `Login throughput by storage backend (Switchboard, plaintext logins; ${r.concurrency} in flight, ` +
      `${r.accounts} accounts, ${r.groups} ABBA groups, rounds of ${r.loginsPerRound} logins):`,
  ];
  for (const b of r.backends) {
    lines.push(
      `  ${b.backend === "sqlite" ? "SQLite    " : "PostgreSQL"}: ${n(b.perSecond)} logins/s, ` +
        `${n(b.serverCpuMsPerLogin, 3)} ms server CPU per login, ${n(b.postgresCpuMsPerLogin, 3)} ms PostgreSQL CPU per login`,
    );
  }
  lines.push(
    `  PostgreSQL's rate is ${n(r.medianRatioPct, 1)} % of SQLite's (median of groups: ` +
      `${r.groupRatiosPct.map((g) => g.toFixed(1)).join(", ")})`,
  );
  const other = Math.max(
    0,
    ...r.rounds.filter((x) => x.backend === "sqlite").map((x) => x.otherOnServerCpuPct),
  );
  if (other > 10)
    lines.push(
      `  other processes took up to ${other.toFixed(0)} % of the server's CPU in a SQLite round: figures disturbed`,
    );
  for (const e of r.errors) lines.push(`  error: ${e}`);
  return lines;
}
