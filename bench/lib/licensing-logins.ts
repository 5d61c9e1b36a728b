/**
 * What the licence proof costs at login: one Switchboard server, the same accounts and the
 * same load generator, alternating rounds of full logins in `open` mode without a proof and
 * in `enforce` mode with one (ABBA order, so drift over the run falls on both alike). The
 * mode is switched the way an operator does it, by writing the policy to the shared storage
 * while the server runs; before each round a probe login without a proof shows that the
 * server applies the mode (refused with unlicensed-client in enforce, admitted in open).
 * The target: the proof costs under 10 % of login throughput.
 */
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { generateKeyPair } from "../../src/modules/licensing/keys.js";
import type { PolicyMode } from "../../src/modules/licensing/model.js";
import { LicensingRegistry } from "../../src/modules/licensing/registry.js";
import { openStorage } from "../../src/storage/index.js";
import type { ConnectionTarget } from "../loadgen/connection.js";
import type { LicenceCredentials } from "../loadgen/licence-proof.js";
import type { AccountSet, LoginsResult } from "../loadgen/protocol.js";
import {
  cpuBusyMs,
  cpuTimeMs,
  freePort,
  makeTempDir,
  pinSelf,
  removeTempDir,
  sleep,
  spawnPinned,
  stopProcess,
  waitForPort,
} from "./processes.js";
import type { BenchSettings } from "./settings.js";
import { switchboardConfig } from "./switchboard.js";

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CLI = path.join(ROOT, "dist", "src", "bin", "switchboard.js");

/** The proof may cost at most this share of login throughput. */
export const TARGET_COST_PCT = 10;
/** Above this share of the server's CPU taken by other processes, the figures are flagged as disturbed. */
const OTHER_LOAD_PCT = 10;
/** Above this the load generator, not the server, may be what limits a rate. */
const LOADGEN_BUSY_PCT = 90;
/** Accounts the logins cycle over (their SCRAM keys are derived once, in the warm-up). */
const ACCOUNTS = 200;
const APP = { clientId: "org.switchboard.bench", version: "1.0.0", platform: "linux", keyId: "bench-1" };
/** How long the server may take to apply a policy written to storage (it polls every 250 ms). */
const MODE_SWITCH_TIMEOUT_MS = 5_000;

/** What this phase needs of the load generator (bench/lib/load-generator.ts). */
export interface LicensedLoginDriver {
  configure(target: ConnectionTarget, accounts: AccountSet): Promise<void>;
  /** The following logins prove this licence during negotiation (null: no proof). */
  licence(credentials: LicenceCredentials | null): Promise<void>;
  logins(count: number, concurrency: number, accounts: number): Promise<LoginsResult>;
  stop(): Promise<void>;
}

export interface LicensingRound {
  mode: "open" | "enforce";
  completed: number;
  failures: number;
  wallMs: number;
  perSecond: number;
  /** Server CPU time per completed login. */
  serverCpuMsPerLogin: number;
  /** Server CPU time over wall time, in % of one core. */
  serverCpuPct: number;
  /** Load generator CPU time over wall time, in %: near 100 the generator, not the server, sets the rate. */
  loadgenCpuPct: number;
  /** CPU time other processes took on the server's CPU during the round, in %. */
  otherOnServerCpuPct: number;
  errors: string[];
}

export interface LicensingLoginResults {
  accounts: number;
  concurrency: number;
  loginsPerRound: number;
  rounds: LicensingRound[];
  /** Logins per second over all rounds of each mode (completed / wall time). */
  openPerSecond: number | null;
  enforcePerSecond: number | null;
  /** Login throughput lost to the proof, 100 × (1 − enforce/open). */
  throughputCostPct: number | null;
  /** Extra server CPU per login with the proof, in %. */
  cpuCostPct: number | null;
  targetPct: number;
  met: boolean | null;
  /** Logins without a proof were refused with unlicensed-client while enforce was in force. */
  refusedWithoutProof: boolean;
  errors: string[];
}

/** ABBA: open, enforce, enforce, open, repeated. */
function roundOrder(pairs: number): ("open" | "enforce")[] {
  const out: ("open" | "enforce")[] = [];
  for (let i = 0; i < pairs; i++)
    out.push(...(i % 2 === 0 ? (["open", "enforce"] as const) : (["enforce", "open"] as const)));
  return out;
}

function log(text: string): void {
  console.error(`[licensing] ${text}`);
}

/** Registers a publisher, an app with one key and a licence, and sets the policy open. */
async function setUpLicensing(dbPath: string): Promise<LicenceCredentials> {
  const storage = await openStorage({ backend: "sqlite", path: dbPath });
  try {
    const registry = new LicensingRegistry(storage, { now: () => Date.now() });
    const actor = "cli:bench";
    const keys = generateKeyPair();
    const pub = await registry.addPublisher(actor, {
      organisation: "Switchboard bench",
      contactEmail: "bench@example.org",
    });
    await registry.registerApp(actor, {
      clientId: APP.clientId,
      name: "Bench client",
      publisherId: pub.id,
      platforms: [APP.platform],
    });
    await registry.addKey(actor, APP.clientId, { keyId: APP.keyId, publicKey: keys.publicKey });
    await registry.grantLicence(actor, { clientId: APP.clientId, scope: "client" });
    await registry.setPolicy(actor, (p) => ({ ...p, mode: "open", stages: [] }));
    return { ...APP, privateKeyPem: keys.privateKeyPem };
  } finally {
    await storage.close();
  }
}

async function setMode(dbPath: string, mode: PolicyMode): Promise<void> {
  const storage = await openStorage({ backend: "sqlite", path: dbPath });
  try {
    await new LicensingRegistry(storage, { now: () => Date.now() }).setPolicy("cli:bench", (p) => ({
      ...p,
      mode,
    }));
  } finally {
    await storage.close();
  }
}

/**
 * Waits until the server applies `mode`: a login without a proof is refused with
 * unlicensed-client (enforce) or completes (open). Returns false on timeout.
 */
async function awaitMode(lg: LicensedLoginDriver, mode: PolicyMode): Promise<boolean> {
  await lg.licence(null);
  const deadline = Date.now() + MODE_SWITCH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const r = await lg.logins(1, 1, ACCOUNTS);
    const refused = r.failures === 1 && r.errors.some((e) => e.includes("unlicensed-client"));
    if (mode === "enforce" ? refused : r.completed === 1) return true;
    await sleep(100);
  }
  return false;
}

async function importAccounts(
  dir: string,
  config: string,
  dataDir: string,
  s: BenchSettings,
  accounts: AccountSet,
) {
  const lines: string[] = [];
  for (let i = 1; i <= accounts.count; i++)
    lines.push(`${accounts.prefix}${i},${accounts.passwordPrefix}${i}`);
  const file = path.join(dir, "accounts.csv");
  await writeFile(file, `${lines.join("\n")}\n`);
  const args = [CLI, "user", "import", file, "--config", config, "--data-dir", dataDir, "--domain", s.domain];
  try {
    await execFileAsync(process.execPath, args, { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`switchboard user import failed: ${e.stderr || e.stdout || e.message}`);
  }
}

function rate(rounds: LicensingRound[]): number | null {
  const wall = rounds.reduce((t, r) => t + r.wallMs, 0);
  return wall > 0 ? rounds.reduce((t, r) => t + r.completed, 0) / (wall / 1000) : null;
}

function cpuPerLogin(rounds: LicensingRound[]): number | null {
  const done = rounds.reduce((t, r) => t + r.completed, 0);
  return done > 0 ? rounds.reduce((t, r) => t + r.serverCpuMsPerLogin * r.completed, 0) / done : null;
}

/**
 * Runs the phase on its own server (started from dist/ and stopped at the end, its temp dir
 * removed). `startLoadGenerator` starts the load generator pinned to a CPU.
 */
export async function benchLicensedLogins(
  s: BenchSettings,
  startLoadGenerator: (cpu: number) => LicensedLoginDriver,
): Promise<LicensingLoginResults> {
  const loginsPerRound = Math.max(100, Math.round(s.logins.count / 2));
  const order = roundOrder(s.mode === "full" ? 3 : 2);
  // Enough for the server's JIT to settle on both paths before anything is measured.
  const warmup = Math.max(1_000, loginsPerRound);
  const results: LicensingLoginResults = {
    accounts: ACCOUNTS,
    concurrency: s.logins.concurrency,
    loginsPerRound,
    rounds: [],
    openPerSecond: null,
    enforcePerSecond: null,
    throughputCostPct: null,
    cpuCostPct: null,
    targetPct: TARGET_COST_PCT,
    met: null,
    refusedWithoutProof: false,
    errors: [],
  };
  const dir = makeTempDir("licensing");
  const dataDir = path.join(dir, "data");
  const config = path.join(dir, "switchboard.yaml");
  const dbPath = path.join(dataDir, "switchboard.sqlite");
  const accounts: AccountSet = { prefix: "lic", passwordPrefix: "bench-secret-", count: ACCOUNTS };
  let child: ChildProcess | undefined;
  let lg: LicensedLoginDriver | undefined;
  try {
    // The version query after binding would add work to unlicensed logins only: leave it out.
    await writeFile(config, `${switchboardConfig()}modules:\n  licensing:\n    queryClientVersion: false\n`);
    log(`creating ${ACCOUNTS} accounts and a licensed app…`);
    await importAccounts(dir, config, dataDir, s, accounts);
    const credentials = await setUpLicensing(dbPath);

    const port = await freePort();
    pinSelf(String(s.loadCpu));
    child = spawnPinned(
      process.execPath,
      [
        CLI,
        "start",
        "--config",
        config,
        "--domain",
        s.domain,
        "--data-dir",
        dataDir,
        "--bind",
        s.host,
        "--c2s-port",
        String(port),
        "--c2s-tls-port",
        "0",
        "--http-port",
        "0",
        "--allow-plaintext",
        "--log-level",
        "warn",
      ],
      { cpu: s.serverCpu, cwd: dir, logFile: path.join(dir, "switchboard.log") },
    );
    await waitForPort(s.host, port, child, 30_000);
    const pid = child.pid as number;
    lg = startLoadGenerator(s.loadCpu);
    await lg.configure({ host: s.host, port, domain: s.domain }, accounts);

    // Warm-up, unmeasured: SCRAM keys of every account and the login path, then the proof path.
    await lg.licence(null);
    await lg.logins(warmup, s.logins.concurrency, ACCOUNTS);
    await setMode(dbPath, "enforce");
    if (!(await awaitMode(lg, "enforce"))) {
      throw new Error(
        "enforce mode did not take effect: logins without a proof were not refused (is the licensing module loaded?)",
      );
    }
    results.refusedWithoutProof = true;
    await lg.licence(credentials);
    const warm = await lg.logins(warmup, s.logins.concurrency, ACCOUNTS);
    if (warm.failures > 0) throw new Error(`licensed logins failed: ${warm.errors.join("; ")}`);

    let mode: PolicyMode = "enforce";
    for (const wanted of order) {
      if (wanted !== mode) {
        await setMode(dbPath, wanted);
        if (!(await awaitMode(lg, wanted))) throw new Error(`${wanted} mode did not take effect`);
        mode = wanted;
      }
      await lg.licence(wanted === "enforce" ? credentials : null);
      const cpu0 = cpuTimeMs(pid);
      const busy0 = cpuBusyMs(s.serverCpu);
      const r = await lg.logins(loginsPerRound, s.logins.concurrency, ACCOUNTS);
      const serverMs = cpuTimeMs(pid) - cpu0;
      const round: LicensingRound = {
        mode: wanted,
        completed: r.completed,
        failures: r.failures,
        wallMs: r.wallMs,
        perSecond: r.perSecond,
        serverCpuMsPerLogin: r.completed > 0 ? serverMs / r.completed : 0,
        serverCpuPct: (serverMs / r.wallMs) * 100,
        loadgenCpuPct: (r.cpuMs / r.wallMs) * 100,
        otherOnServerCpuPct: Math.max(0, ((cpuBusyMs(s.serverCpu) - busy0 - serverMs) / r.wallMs) * 100),
        errors: r.errors,
      };
      results.rounds.push(round);
      log(
        `${wanted}${wanted === "enforce" ? " with proof" : ", no proof"}: ${r.perSecond.toFixed(0)} logins/s, ` +
          `${round.serverCpuMsPerLogin.toFixed(3)} ms server CPU per login, server ${round.serverCpuPct.toFixed(0)} % ` +
          `/ generator ${round.loadgenCpuPct.toFixed(0)} % busy (${r.failures} failed)`,
      );
      if (r.failures > 0)
        results.errors.push(`${wanted} round: ${r.failures} logins failed, e.g. ${r.errors.join("; ")}`);
    }
  } catch (err) {
    results.errors.push((err as Error).message);
    log(`FAILED ${(err as Error).message}`);
  } finally {
    await lg?.stop();
    if (child) await stopProcess(child);
    pinSelf(`0-${os.cpus().length - 1}`);
    removeTempDir(dir);
  }
  const open = results.rounds.filter((r) => r.mode === "open");
  const enforce = results.rounds.filter((r) => r.mode === "enforce");
  results.openPerSecond = rate(open);
  results.enforcePerSecond = rate(enforce);
  if (results.openPerSecond && results.enforcePerSecond !== null) {
    results.throughputCostPct = 100 * (1 - results.enforcePerSecond / results.openPerSecond);
    results.met = results.errors.length === 0 && results.throughputCostPct < TARGET_COST_PCT;
  }
  const cpuOpen = cpuPerLogin(open);
  const cpuEnforce = cpuPerLogin(enforce);
  if (cpuOpen && cpuEnforce !== null) results.cpuCostPct = 100 * (cpuEnforce / cpuOpen - 1);
  return results;
}

/** Lines for the bench report. */
export function licensingLoginLines(r: LicensingLoginResults): string[] {
  const n = (v: number | null, digits = 0) => (v === null ? "n/a" : v.toFixed(digits));
  const perLogin = (mode: "open" | "enforce") => n(cpuPerLogin(r.rounds.filter((x) => x.mode === mode)), 3);
  const rounds = r.rounds.length / 2;
  const lines = [
    `Licence proof at login (Switchboard; ${r.concurrency} in flight, ${r.accounts} accounts, ` +
      `${rounds} × ${r.loginsPerRound} logins per mode in ABBA order):`,
    `  open, no proof:       ${n(r.openPerSecond).padStart(6)} logins/s, ${perLogin("open")} ms server CPU per login`,
    `  enforce, with proof:  ${n(r.enforcePerSecond).padStart(6)} logins/s, ${perLogin("enforce")} ms server CPU per login`,
    `  proof cost: ${n(r.throughputCostPct, 1)} % of login throughput (target < ${r.targetPct} %: ` +
      `${r.met === null ? "n/a" : r.met ? "met" : "NOT met"}), ${n(r.cpuCostPct, 1)} % server CPU per login`,
  ];
  const other = Math.max(0, ...r.rounds.map((x) => x.otherOnServerCpuPct));
  if (other > OTHER_LOAD_PCT) {
    lines.push(
      `  other processes took up to ${other.toFixed(0)} % of the server's CPU during a round: figures disturbed`,
    );
  }
  const generator = Math.max(0, ...r.rounds.map((x) => x.loadgenCpuPct));
  if (generator > LOADGEN_BUSY_PCT) {
    lines.push(
      `  the load generator was up to ${generator.toFixed(0)} % busy: it may have limited the rates`,
    );
  }
  if (!r.refusedWithoutProof) lines.push("  enforce was never seen refusing a login without a proof");
  for (const e of r.errors) lines.push(`  error: ${e}`);
  return lines;
}
