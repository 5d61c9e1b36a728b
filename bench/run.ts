/**
 * `npm run bench [-- --quick] [-- --only switchboard|prosody|storage|cluster|federation]`:
 * measures Switchboard and Prosody one after the other under the same load, each pinned to its
 * own CPU, over plaintext, STARTTLS, direct TLS and WebSocket, then Switchboard on its two
 * storage backends (SQLite, PostgreSQL), then routing between two nodes of a cluster against
 * one, then messages across a server-to-server link between Switchboard and Prosody
 * (federation), prints the figures with the ratios and writes them to .bench/latest.json.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { benchClusterRouting, clusterRoutingLines } from "./lib/cluster-routing.js";
import { benchFederation, type FederationResults, federationLines } from "./lib/federation.js";
import { benchLicensedLogins, licensingLoginLines } from "./lib/licensing-logins.js";
import { LoadGenerator } from "./lib/load-generator.js";
import { machineFacts } from "./lib/machine.js";
import { cpuBusyShare, setNiceness, tasksetAvailable } from "./lib/processes.js";
import { ProsodyServer } from "./lib/prosody.js";
import { figures, formatTable, notes } from "./lib/report.js";
import { benchServer, type ServerResults } from "./lib/scenario.js";
import type { BenchServer } from "./lib/server.js";
import {
  FEATURE_SETS,
  type FeatureSet,
  FULL,
  PHASES,
  type Phase,
  QUICK,
  TRANSPORTS,
  type Transport,
} from "./lib/settings.js";
import {
  benchStorageLogins,
  createBenchDatabase,
  type StorageLoginResults,
  storageLoginLines,
} from "./lib/storage-logins.js";
import { benchStorageOps, type StorageOpFigure, storageOpLines } from "./lib/storage-ops.js";
import { SwitchboardServer, type SwitchboardVariant } from "./lib/switchboard.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = path.join(ROOT, ".bench", "latest.json");
const LOGS = path.join(ROOT, ".bench", "logs");
/**
 * Hard limits on a whole run of three transports with three phases each (memory, logins,
 * messages); a run of more or fewer gets proportionally more or less. Past the limit
 * everything started is killed.
 */
const DEADLINE_MINUTES = { full: 50, quick: 12 };
const DEADLINE_LIVES = 9;
/** Added to the limit when the cluster phase runs (minutes). */
const CLUSTER_DEADLINE_MINUTES = { full: 12, quick: 5 };
/** Added to the limit when the federation phases run (minutes). */
const FEDERATION_MINUTES = { full: 25, quick: 15 };
const ONLY = ["switchboard", "prosody", "storage", "cluster", "federation"];

interface Options {
  quick: boolean;
  only: string | undefined;
  /** Seconds to wait at most for the machine to be quiet before each server's run. */
  waitQuiet: number;
  /** Niceness of the servers and the load generator (negative: ahead of other work). */
  nice: number;
  transports: Transport[] | undefined;
  /** Switchboard on the system's malloc too (what `npm start` gets without jemalloc). */
  systemMalloc: boolean;
  /** Another checkout's build measured beside this one (e.g. the commit before a change). */
  baseline: string | undefined;
  phases: Phase[] | undefined;
  /** Switchboard variants with more environment, e.g. another malloc configuration. */
  variants: SwitchboardVariant[];
  features: FeatureSet | undefined;
}

const USAGE =
  "usage: npm run bench [-- [--quick] [--only switchboard|prosody|storage|cluster|federation] [--transports plaintext,starttls,tls,websocket]\n" +
  "                        [--phases memory,memory-no-sm,logins,messages] [--features mobile|im] [--system-malloc] [--baseline CHECKOUT]\n" +
  "                        [--variant 'NAME:VAR=VALUE;…'] [--wait-quiet SECONDS] [--nice N]]";

/** `NAME:VAR=VALUE;VAR=VALUE` (a value may not hold a semicolon). */
function parseVariant(spec: string): SwitchboardVariant {
  const colon = spec.indexOf(":");
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const env: Record<string, string> = {};
  for (const pair of colon < 0 ? [] : spec.slice(colon + 1).split(";")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      console.error(`--variant ${spec}: expected NAME:VAR=VALUE;…`);
      process.exit(2);
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { name, env };
}

function parseArgs(argv: string[]): Options {
  let quick = false;
  let only: string | undefined;
  let waitQuiet = 0;
  let nice = 0;
  let transports: Transport[] | undefined;
  let systemMalloc = false;
  let baseline: string | undefined;
  let phases: Phase[] | undefined;
  let features: FeatureSet | undefined;
  const variants: SwitchboardVariant[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--system-malloc") systemMalloc = true;
    else if (a === "--baseline") baseline = argv[++i];
    else if (a === "--variant") variants.push(parseVariant(argv[++i] ?? ""));
    else if (a === "--features") {
      const f = argv[++i] ?? "";
      if (!(FEATURE_SETS as string[]).includes(f)) {
        console.error(`--features takes one of ${FEATURE_SETS.join(", ")}`);
        process.exit(2);
      }
      features = f as FeatureSet;
    } else if (a === "--phases") {
      const list = (argv[++i] ?? "").split(",");
      if (!list.every((p): p is Phase => (PHASES as string[]).includes(p))) {
        console.error(`--phases takes a comma-separated list of ${PHASES.join(", ")}`);
        process.exit(2);
      }
      phases = list;
    } else if (a === "--transports") {
      const list = (argv[++i] ?? "").split(",");
      if (!list.every((t): t is Transport => (TRANSPORTS as string[]).includes(t))) {
        console.error(`--transports takes a comma-separated list of ${TRANSPORTS.join(", ")}`);
        process.exit(2);
      }
      transports = list;
    } else if (a === "--wait-quiet") waitQuiet = Number(argv[++i]);
    else if (a === "--nice") nice = Number(argv[++i]);
    else if (a === "--only") only = argv[++i];
    else if (a.startsWith("--only=")) only = a.slice("--only=".length);
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown option ${a}\n${USAGE}`);
      process.exit(2);
    }
  }
  if (only !== undefined && !ONLY.includes(only)) {
    console.error(`--only takes one of ${ONLY.join(", ")}`);
    process.exit(2);
  }
  if (!(waitQuiet >= 0)) {
    console.error("--wait-quiet takes a number of seconds");
    process.exit(2);
  }
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) {
    console.error("--nice takes an integer from -20 to 19");
    process.exit(2);
  }
  return { quick, only, waitQuiet, nice, transports, systemMalloc, baseline, phases, variants, features };
}

/** CPU share below which the machine counts as quiet. */
const QUIET_PCT = 15;

/**
 * Samples how busy the two CPUs are (3 s windows) until both are quiet or `maxSeconds` have
 * passed; returns the last sample.
 */
async function machineBusy(cpus: number[], maxSeconds: number): Promise<number[]> {
  const deadline = Date.now() + maxSeconds * 1000;
  for (;;) {
    const busy = await cpuBusyShare(cpus, 3_000);
    if (busy.every((b) => b < QUIET_PCT) || Date.now() >= deadline) return busy;
    console.error(`bench: machine busy (${busy.map((b) => `${b.toFixed(0)} %`).join(", ")}), waiting…`);
  }
}

async function main(): Promise<void> {
  const { quick, only, waitQuiet, nice, transports, systemMalloc, baseline, phases, variants, features } =
    parseArgs(process.argv.slice(2));
  setNiceness(nice);
  const settings = {
    ...(quick ? QUICK : FULL),
    ...(transports ? { transports } : {}),
    ...(phases ? { phases } : {}),
    ...(features ? { features } : {}),
  };
  const lives =
    settings.transports.length *
    settings.phases.filter((p) => p !== "memory-no-sm" || settings.features === "mobile").length;
  const clusterPhase =
    phases === undefined && transports === undefined && (only === undefined || only === "cluster");
  const partial = phases !== undefined || transports !== undefined;
  const federation = !partial && (only === undefined || only === "federation");
  const deadline =
    (only === "federation"
      ? 0
      : (DEADLINE_MINUTES[settings.mode] * Math.max(lives, DEADLINE_LIVES)) / DEADLINE_LIVES) +
    (clusterPhase ? CLUSTER_DEADLINE_MINUTES[settings.mode] : 0) +
    (federation ? FEDERATION_MINUTES[settings.mode] : 0) +
    waitQuiet / 60;
  setTimeout(() => {
    console.error(`bench: still running after ${deadline.toFixed(0)} minutes; stopping everything`);
    process.exit(1); // the exit hook kills every child and removes the temp dirs
  }, deadline * 60_000).unref();
  if (settings.features !== "mobile" && phases?.includes("memory-no-sm")) {
    console.error(
      "bench: memory-no-sm is measured with --features mobile only (no client enables stream management otherwise)",
    );
  }
  if (!tasksetAvailable()) {
    console.error("bench: taskset (util-linux) is needed to pin the server and the load generator to CPUs");
    process.exit(1);
  }
  const switchboard = new SwitchboardServer();
  const prosody = new ProsodyServer();
  const prosodyMissing = prosody.unavailable();
  if (prosodyMissing) {
    console.error(
      `bench: Prosody is not available (${prosodyMissing}); measuring Switchboard alone, ratios are n/a.`,
    );
  }
  const machine = machineFacts(prosodyMissing ? undefined : prosody.version());
  console.error(
    `bench (${settings.mode}): ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, Prosody ${machine.prosody}, load average ${machine.loadAverage.toFixed(2)}`,
  );

  rmSync(LOGS, { recursive: true, force: true }); // logs of the previous run
  const runs: BenchServer[] = [];
  if (only === undefined || only === "switchboard") {
    runs.push(switchboard);
    if (systemMalloc) runs.push(new SwitchboardServer({ name: "sb-system-malloc", allocator: "system" }));
    if (baseline) runs.push(new SwitchboardServer({ name: "sb-baseline", root: baseline }));
    for (const v of variants) runs.push(new SwitchboardServer(v));
  }
  if ((only === undefined || only === "prosody") && !prosodyMissing) runs.push(prosody);
  const results = new Map<string, ServerResults>();
  for (const server of runs) {
    const missing = server.unavailable();
    if (missing) {
      console.error(`bench: skipping ${server.name}: ${missing}`);
      continue;
    }
    const cpus = [settings.serverCpu, settings.loadCpu];
    const busy = await machineBusy(cpus, waitQuiet);
    if (busy.some((b) => b >= QUIET_PCT)) {
      console.error(
        `bench: other work keeps the CPUs busy (${busy.map((b) => `${b.toFixed(0)} %`).join(", ")}): figures will be disturbed`,
      );
    }
    const r = await benchServer(server, settings, LOGS);
    r.busyBeforePct = busy;
    results.set(server.name, r);
  }

  // The licence proof's cost at login: open without a proof vs enforce with one, same run.
  const licensing =
    partial || (only !== undefined && only !== "switchboard") || switchboard.unavailable()
      ? undefined
      : await benchLicensedLogins(settings, (cpu) => new LoadGenerator(cpu));

  // The storage backends: operations in one process, then logins on a server on each.
  let storageOps: StorageOpFigure[] | undefined;
  let storageLogins: StorageLoginResults | undefined;
  if (!partial && (only === undefined || only === "storage") && !switchboard.unavailable()) {
    const database = await createBenchDatabase();
    if (typeof database === "string") console.error(`bench: storage operations on SQLite only (${database})`);
    try {
      storageOps = await benchStorageOps(
        settings.serverCpu,
        settings.mode === "full" ? 5_000 : 1_000,
        typeof database === "string" ? undefined : database.url,
      );
    } finally {
      if (typeof database !== "string") await database.drop();
    }
    storageLogins = await benchStorageLogins(settings, (cpu) => new LoadGenerator(cpu));
  }

  // Routing between two nodes of a cluster against one node, and a node outside any cluster.
  const cluster =
    clusterPhase && !switchboard.unavailable()
      ? await benchClusterRouting(settings, (cpu) => new LoadGenerator(cpu), LOGS)
      : undefined;
  // Messages across one server-to-server link, each pair of servers; memory per idle link.
  let federationResults: FederationResults | undefined;
  if (federation) {
    const missing = switchboard.unavailable() ?? prosodyMissing;
    if (missing) console.error(`bench: skipping the federation phases: ${missing}`);
    else {
      const busy = await machineBusy([settings.serverCpu, settings.loadCpu], waitQuiet);
      if (busy.some((b) => b >= QUIET_PCT)) {
        console.error(
          `bench: other work keeps the CPUs busy (${busy.map((b) => `${b.toFixed(0)} %`).join(", ")}): federation figures will be disturbed`,
        );
      }
      federationResults = await benchFederation(settings, (cpu) => new LoadGenerator(cpu), LOGS);
      federationResults.busyBeforePct = busy;
    }
  }

  const rows = figures(settings, [...results.values()]);
  console.log("");
  console.log(
    `${results.size > 0 ? "Switchboard vs Prosody" : "Switchboard"} — ${settings.mode} run, ${settings.features} features, server on CPU ${settings.serverCpu}, load generator on CPU ${settings.loadCpu}` +
      (nice !== 0 ? `, both at niceness ${nice}` : ""),
  );
  console.log(
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, Prosody ${machine.prosody}`,
  );
  if (results.size > 0) {
    for (const r of results.values()) console.log(`Password storage, ${r.server}: ${r.passwordStorage}`);
    console.log("");
    console.log(formatTable(rows));
    const remarks = notes(settings, [...results.values()]);
    if (remarks.length > 0) {
      console.log("");
      for (const n of remarks) console.log(`- ${n}`);
    }
  }

  if (licensing) console.log(["", ...licensingLoginLines(licensing)].join("\n"));
  if (storageOps) console.log(["", ...storageOpLines(storageOps)].join("\n"));
  if (storageLogins) console.log(["", ...storageLoginLines(storageLogins)].join("\n"));
  if (cluster) console.log(["", ...clusterRoutingLines(cluster)].join("\n"));
  if (federationResults) console.log(["", ...federationLines(settings, federationResults)].join("\n"));

  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        settings,
        niceness: nice,
        figures: rows,
        servers: Object.fromEntries(results),
        licensing,
        storageOps,
        storageLogins,
        cluster,
        federation: federationResults,
      },
      null,
      2,
    )}\n`,
  );
  console.log(
    `\nResults written to ${path.relative(process.cwd(), OUT)}, server logs to ${path.relative(process.cwd(), LOGS)}/`,
  );
  const failed =
    [...results.values()].some((r) => r.errors.length > 0) ||
    (licensing?.errors.length ?? 0) > 0 ||
    (storageLogins?.errors.length ?? 0) > 0 ||
    (cluster?.errors.length ?? 0) > 0 ||
    (federationResults?.errors.length ?? 0) > 0;
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
