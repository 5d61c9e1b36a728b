/**
 * What the licence proof costs at login: one Switchboard server, the same accounts and the
 * same load generator, alternating rounds of full logins in `open` mode without a proof and
 * in `enforce` mode with one: a signed (Ed25519) proof, what a client does at its first login,
 * and over TLS also a ticket proof (an HMAC under the ticket a signed proof earned), what a
 * returning client does. Rounds come in short groups in ABBA order (open, signed, ticket,
 * ticket, signed, open), so drift within a group falls on every kind alike; each group gives
 * one cost figure per kind of proof and the median over the groups is the result, so a burst
 * of load from a neighbour on a shared machine moves one group, not the figure. The mode is switched
 * the way an operator does it, by writing the policy to the shared storage while the server
 * runs; before each round a probe login without a proof shows that the server applies the
 * mode (refused as unlicensed in enforce, admitted in open).
 *
 * Measured over plaintext streams (the cheapest possible login, so the proof's largest
 * share) and over STARTTLS (how clients connect in production; the proof is then bound to
 * the TLS channel with tls-exporter). The target, the proof costing under 10 % of login
 * throughput, is judged on TLS logins of returning clients (ticket proofs) when they were
 * measured; every figure is reported with its own verdict.
 */
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SERVER_NODE_FLAGS } from "../../src/bin/node-flags.js";
import type { PolicyMode } from "../../src/licensing/index.js";
import { generateKeyPair, LicensingRegistry } from "../../src/licensing/index.js";
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

export type Transport = "plaintext" | "starttls";
/** How a login proves its licence: none (open mode), a signature, or a ticket's HMAC. */
export type ProofKind = "signed" | "ticket";
type RoundKind = "none" | ProofKind;

/** Where the load generator connects; `tls` asks it to negotiate STARTTLS. */
export type LicensingTarget = ConnectionTarget & { tls?: boolean };

/** What this phase needs of the load generator (bench/lib/load-generator.ts). */
export interface LicensedLoginDriver {
  configure(target: LicensingTarget, accounts: AccountSet): Promise<void>;
  /** The following logins prove this licence during negotiation (null: no proof). */
  licence(credentials: LicenceCredentials | null): Promise<void>;
  logins(count: number, concurrency: number, accounts: number): Promise<LoginsResult>;
  stop(): Promise<void>;
}

export interface LicensingRound {
  transport: Transport;
  /** The ABBA group the round belongs to. */
  group: number;
  mode: "open" | "enforce";
  proof: RoundKind;
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

/** The comparison of one kind of proof with open logins, over one transport. */
export interface ProofCost {
  transport: Transport;
  proof: ProofKind;
  /** Logins per second over all rounds of each mode (completed / wall time). */
  openPerSecond: number | null;
  enforcePerSecond: number | null;
  openCpuMsPerLogin: number | null;
  enforceCpuMsPerLogin: number | null;
  /** Login throughput lost to the proof, 100 × (1 − enforce/open), over all rounds together. */
  throughputCostPct: number | null;
  /** The same figure for each ABBA group, in group order. */
  groupCostsPct: number[];
  /** The median of the group figures: the result. */
  medianCostPct: number | null;
  /** Extra server CPU per login with the proof, in %. */
  cpuCostPct: number | null;
  /** The median is under the target. */
  met: boolean | null;
}

export interface LicensingLoginResults {
  accounts: number;
  concurrency: number;
  loginsPerRound: number;
  /** ABBA groups per transport. */
  groups: number;
  rounds: LicensingRound[];
  costs: ProofCost[];
  targetPct: number;
  /** The figure the target is judged on (STARTTLS ticket proofs when measured). */
  judgedOn: { transport: Transport; proof: ProofKind } | null;
  met: boolean | null;
  /** Logins without a proof were refused as unlicensed while enforce was in force. */
  refusedWithoutProof: boolean;
  errors: string[];
}

/** One ABBA group: tickets are only issued over TLS. */
function groupOrder(transport: Transport): RoundKind[] {
  return transport === "starttls"
    ? ["none", "signed", "ticket", "ticket", "signed", "none"]
    : ["none", "signed", "signed", "none"];
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
 * Waits until the server applies `mode`: a login without a proof is refused as unlicensed
 * (enforce) or completes (open). Throws on timeout, with the last outcome.
 */
async function awaitMode(lg: LicensedLoginDriver, mode: PolicyMode): Promise<void> {
  await lg.licence(null);
  const deadline = Date.now() + MODE_SWITCH_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    const r = await lg.logins(1, 1, ACCOUNTS);
    // The refusal of a login without a proof: a SASL failure account-disabled (the form
    // mainstream clients show, docs/licensing-protocol.md), or unlicensed-client where the
    // generator saw the stream error or a SASL2 failure.
    const refused =
      r.failures === 1 &&
      r.errors.some((e) => e.includes("unlicensed-client") || e.includes("<account-disabled"));
    if (mode === "enforce" ? refused : r.completed === 1) return;
    last = r.completed === 1 ? "the login completed" : `the login failed: ${r.errors.join("; ")}`;
    await sleep(100);
  }
  throw new Error(
    `${mode} mode did not take effect within ${MODE_SWITCH_TIMEOUT_MS} ms of the policy change (${last})` +
      (mode === "enforce" ? "; is the licensing module loaded?" : ""),
  );
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

/** Throughput lost to this kind of proof over these rounds, in %. */
function throughputCost(rounds: LicensingRound[], proof: ProofKind): number | null {
  const open = rate(rounds.filter((r) => r.proof === "none"));
  const enforce = rate(rounds.filter((r) => r.proof === proof));
  return open && enforce !== null ? 100 * (1 - enforce / open) : null;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function proofCost(transport: Transport, proof: ProofKind, allRounds: LicensingRound[]): ProofCost {
  const rounds = allRounds.filter((r) => r.transport === transport);
  const open = rounds.filter((r) => r.proof === "none");
  const enforce = rounds.filter((r) => r.proof === proof);
  const groupCostsPct: number[] = [];
  for (const g of new Set(rounds.map((r) => r.group))) {
    const c = throughputCost(
      rounds.filter((r) => r.group === g),
      proof,
    );
    if (c !== null) groupCostsPct.push(c);
  }
  const medianCostPct = median(groupCostsPct);
  const cost: ProofCost = {
    transport,
    proof,
    openPerSecond: rate(open),
    enforcePerSecond: rate(enforce),
    openCpuMsPerLogin: cpuPerLogin(open),
    enforceCpuMsPerLogin: cpuPerLogin(enforce),
    throughputCostPct: throughputCost(rounds, proof),
    groupCostsPct,
    medianCostPct,
    cpuCostPct: null,
    met: medianCostPct === null ? null : medianCostPct < TARGET_COST_PCT,
  };
  if (cost.openCpuMsPerLogin && cost.enforceCpuMsPerLogin !== null)
    cost.cpuCostPct = 100 * (cost.enforceCpuMsPerLogin / cost.openCpuMsPerLogin - 1);
  return cost;
}

interface Run {
  s: BenchSettings;
  lg: LicensedLoginDriver;
  pid: number;
  dbPath: string;
  credentials: LicenceCredentials;
  results: LicensingLoginResults;
  /** The mode the server is in. */
  mode: PolicyMode;
}

async function switchMode(run: Run, mode: PolicyMode): Promise<void> {
  if (run.mode === mode) return;
  await setMode(run.dbPath, mode);
  await awaitMode(run.lg, mode);
  run.mode = mode;
  if (mode === "enforce") run.results.refusedWithoutProof = true;
}

/** Puts the server in the mode and the generator on the proof this kind of login needs. */
async function prepare(run: Run, kind: RoundKind): Promise<void> {
  await switchMode(run, kind === "none" ? "open" : "enforce");
  await run.lg.licence(kind === "none" ? null : { ...run.credentials, useTickets: kind === "ticket" });
}

const KIND_TEXT: Record<RoundKind, string> = {
  none: "open, no proof",
  signed: "enforce, signed proof",
  ticket: "enforce, ticket proof",
};

async function measureRound(run: Run, transport: Transport, group: number, kind: RoundKind): Promise<void> {
  const { s, lg, pid, results } = run;
  const mode = kind === "none" ? "open" : "enforce";
  await prepare(run, kind);
  const cpu0 = cpuTimeMs(pid);
  const busy0 = cpuBusyMs(s.serverCpu);
  const r = await lg.logins(results.loginsPerRound, s.logins.concurrency, ACCOUNTS);
  const serverMs = cpuTimeMs(pid) - cpu0;
  const round: LicensingRound = {
    transport,
    group,
    mode,
    proof: kind,
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
    `${transport} #${group + 1}, ${KIND_TEXT[kind]}: ${r.perSecond.toFixed(0)} logins/s, ` +
      `${round.serverCpuMsPerLogin.toFixed(3)} ms server CPU per login, server ${round.serverCpuPct.toFixed(0)} % ` +
      `/ generator ${round.loadgenCpuPct.toFixed(0)} % busy, others ${round.otherOnServerCpuPct.toFixed(0)} % ` +
      `of the server's CPU (${r.failures} failed)`,
  );
  if (r.failures > 0) {
    results.errors.push(
      `${transport} ${KIND_TEXT[kind]} round: ${r.failures} logins failed, e.g. ${r.errors.join("; ")}`,
    );
  }
}

/** Warm-up of both paths over one transport, then the ABBA rounds. */
async function measureTransport(run: Run, target: LicensingTarget, transport: Transport): Promise<void> {
  const { s, lg } = run;
  const accounts: AccountSet = { prefix: "lic", passwordPrefix: "bench-secret-", count: ACCOUNTS };
  await lg.configure({ ...target, tls: transport === "starttls" }, accounts);
  // Unmeasured, long enough for the server's JIT to settle on both paths (and for the
  // generator to derive every account's SCRAM keys once).
  const warmup = Math.max(1_000, run.results.loginsPerRound);
  const order = groupOrder(transport);
  for (const kind of new Set(order)) {
    await prepare(run, kind);
    const warm = await lg.logins(warmup, s.logins.concurrency, ACCOUNTS);
    if (warm.failures > 0)
      throw new Error(`${transport} ${KIND_TEXT[kind]}: logins failed: ${warm.errors.join("; ")}`);
  }
  for (let group = 0; group < run.results.groups; group++)
    for (const kind of order) await measureRound(run, transport, group, kind);
}

/**
 * Runs the phase on its own server (started from dist/ and stopped at the end, its temp dir
 * removed). `startLoadGenerator` starts the load generator pinned to a CPU; `transports`
 * are measured in order (STARTTLS needs a load generator that negotiates it).
 */
export async function benchLicensedLogins(
  s: BenchSettings,
  startLoadGenerator: (cpu: number) => LicensedLoginDriver,
  transports: Transport[] = ["plaintext", "starttls"],
): Promise<LicensingLoginResults> {
  const results: LicensingLoginResults = {
    accounts: ACCOUNTS,
    concurrency: s.logins.concurrency,
    // Short rounds in many groups: each group is over before the machine's load changes much.
    loginsPerRound: Math.max(100, Math.round(s.logins.count / 4)),
    groups: s.mode === "full" ? 8 : 3,
    rounds: [],
    costs: [],
    targetPct: TARGET_COST_PCT,
    judgedOn: null,
    met: null,
    refusedWithoutProof: false,
    errors: [],
  };
  const dir = makeTempDir("licensing");
  const dataDir = path.join(dir, "data");
  const config = path.join(dir, "switchboard.yaml");
  const dbPath = path.join(dataDir, "switchboard.sqlite");
  let child: ChildProcess | undefined;
  let lg: LicensedLoginDriver | undefined;
  try {
    // The version query after binding would add work to unlicensed logins only: leave it out.
    await writeFile(config, `${switchboardConfig()}modules:\n  licensing:\n    queryClientVersion: false\n`);
    log(`creating ${ACCOUNTS} accounts and a licensed app…`);
    const accounts: AccountSet = { prefix: "lic", passwordPrefix: "bench-secret-", count: ACCOUNTS };
    await importAccounts(dir, config, dataDir, s, accounts);
    const credentials = await setUpLicensing(dbPath);

    const port = await freePort();
    pinSelf(String(s.loadCpu));
    // Launched as the Switchboard phases launch it; STARTTLS on the client port (self-signed
    // certificate), plaintext allowed as well.
    // biome-ignore format: option and value side by side
    const args = [CLI, "start", "--config", config, "--domain", s.domain, "--data-dir", dataDir,
      "--bind", s.host, "--c2s-port", String(port), "--c2s-tls-port", "0", "--http-port", "0", "--component-port", "0", "--s2s-port", "0",
      "--allow-plaintext", "--log-level", "warn"];
    child = spawnPinned(process.execPath, [...SERVER_NODE_FLAGS, ...args], {
      cpu: s.serverCpu,
      cwd: dir,
      logFile: path.join(dir, "switchboard.log"),
    });
    await waitForPort(s.host, port, child, 30_000);
    lg = startLoadGenerator(s.loadCpu);
    const run: Run = { s, lg, pid: child.pid as number, dbPath, credentials, results, mode: "open" };
    for (const transport of transports) {
      await measureTransport(run, { host: s.host, port, domain: s.domain }, transport);
      for (const proof of ["signed", "ticket"] as const) {
        if (groupOrder(transport).includes(proof))
          results.costs.push(proofCost(transport, proof, results.rounds));
      }
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
  const judged =
    results.costs.find((c) => c.transport === "starttls" && c.proof === "ticket") ?? results.costs[0];
  if (judged && judged.met !== null) {
    results.judgedOn = { transport: judged.transport, proof: judged.proof };
    results.met = results.errors.length === 0 && judged.met;
  }
  return results;
}

/** Lines for the bench report. */
export function licensingLoginLines(r: LicensingLoginResults): string[] {
  const n = (v: number | null, digits = 0) => (v === null ? "n/a" : v.toFixed(digits));
  const lines = [
    `Licence proof at login (Switchboard; ${r.concurrency} in flight, ${r.accounts} accounts, ` +
      `${r.groups} ABBA groups per transport, rounds of ${r.loginsPerRound} logins; ` +
      `target < ${r.targetPct} % of login throughput, judged on ` +
      `${r.judgedOn ? `${r.judgedOn.transport} ${r.judgedOn.proof} proofs: ${r.met ? "met" : "NOT met"}` : "nothing"}):`,
  ];
  for (const c of r.costs) {
    const verdict = c.met === null ? "" : `, ${c.met ? "under" : "NOT under"} ${r.targetPct} %`;
    lines.push(
      `  ${c.transport}, ${c.proof} proof: open, no proof ${n(c.openPerSecond)} logins/s (${n(c.openCpuMsPerLogin, 3)} ms server CPU each); ` +
        `enforce, ${c.proof} proof ${n(c.enforcePerSecond)} logins/s (${n(c.enforceCpuMsPerLogin, 3)} ms)`,
      `    proof cost: median ${n(c.medianCostPct, 1)} % of login throughput${verdict} ` +
        `(groups ${c.groupCostsPct.map((g) => g.toFixed(1)).join(", ")}; all rounds together ${n(c.throughputCostPct, 1)} %); ` +
        `${n(c.cpuCostPct, 1)} % more server CPU per login`,
    );
  }
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
