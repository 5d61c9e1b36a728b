/**
 * Routing between two nodes of a cluster against routing within one node, per second of server
 * CPU. Two Switchboard nodes started as an operator starts them (`--storage postgres://…
 * --cluster nats://… --node NAME`), sharing a PostgreSQL database created for the run and the
 * machine's NATS (a subject and bucket prefix of the run's own), and one node on SQLite without
 * a cluster as the reference; all three pinned to the server CPU, only one placement under load
 * at a time:
 *
 * - two nodes: the senders (the first half of the users) on node A, the recipients on node B,
 *   so every message crosses NATS;
 * - one node: the same users and load, all on node A of the same cluster (node B idle);
 * - single: the same on the SQLite node outside any cluster.
 *
 * Every server runs the run's feature set, and the clients ask for what it includes (stream
 * management and carbons with `mobile`). With the mobile set every message also writes two
 * archive rows, which on the cluster nodes go to PostgreSQL (in batches) and on the single node
 * to SQLite: `--features im` measures routing alone.
 *
 * Rounds alternate in groups (single, one, two, two, one, single), so drift within a group falls
 * on every placement alike; the median over the groups of each ratio is the result. The server
 * CPU of a cluster placement is both nodes' CPU time; nats-server's and PostgreSQL's CPU time
 * (their processes are found by name in /proc, not pinned, sharing the two CPUs with everything
 * else) are reported beside it, not in it.
 */
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SERVER_NODE_FLAGS } from "../../src/bin/node-flags.js";
import { jetStreamProblem, removeClusterBuckets } from "../../test/helpers/nats.js";
import type { ConnectionTarget } from "../loadgen/connection.js";
import type { AccountSet, HoldResult, SecondTarget, ThroughputResult } from "../loadgen/protocol.js";
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
  sleep,
  spawnPinned,
  stopProcess,
  trackChild,
  waitForPort,
} from "./processes.js";
import type { BenchSettings } from "./settings.js";
import { createBenchDatabase } from "./storage-logins.js";
import { switchboardConfig } from "./switchboard.js";

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CLI = path.join(ROOT, "dist", "src", "bin", "switchboard.js");
const LAUNCHER = path.join(ROOT, "bin", "switchboard");

export const BENCH_NATS_URL = process.env.SWITCHBOARD_BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
const ACCOUNTS: Omit<AccountSet, "count"> = { prefix: "cl", passwordPrefix: "bench-secret-" };
/** How long the nodes may take to see each other's sessions after the logins. */
const VIEW_TIMEOUT_MS = 30_000;

export type Placement = "single" | "one-node" | "two-nodes";
const ORDER: Placement[] = ["single", "one-node", "two-nodes", "two-nodes", "one-node", "single"];
export const PLACEMENT_NAMES: Record<Placement, string> = {
  single: "one node on SQLite, no cluster",
  "one-node": "cluster, all clients on node A",
  "two-nodes": "cluster, senders on A, recipients on B",
};

/** What this phase needs of the load generator (bench/lib/load-generator.ts). */
export interface ClusterRoutingDriver {
  readonly pid: number;
  configure(target: ConnectionTarget, accounts: AccountSet, second?: SecondTarget): Promise<void>;
  hold(count: number, concurrency: number): Promise<HoldResult>;
  release(): Promise<void>;
  throughput(messages: number, window: number, recipientsFrom?: number): Promise<ThroughputResult>;
  stop(): Promise<void>;
}

export interface ClusterRound {
  placement: Placement;
  group: number;
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  misrouted: number;
  /** Sessions the servers closed during the round. */
  dropped: number;
  wallMs: number;
  perSecond: number;
  /** CPU time of the server(s) of the placement: node A and node B, or the single node. */
  nodeCpuMs: number[];
  perServerCpuSecond: number;
  /** nats-server's CPU time during the round (null: no nats-server process on this machine). */
  natsCpuMs: number | null;
  /** CPU time of every PostgreSQL process during the round. */
  postgresCpuMs: number;
  /** Stanzas node A sent to other nodes during the round (its cluster metric), cluster placements only. */
  crossNodeStanzas?: number;
  /** Stanzas node A's peers did not confirm in time, or did not take (its cluster metrics). */
  deliveryTimeouts?: number;
  undeliverable?: number;
  /** CPU time other processes took on the server CPU, in % of the round (NATS and PostgreSQL included). */
  otherOnServerCpuPct: number;
  loadgenCpuPct: number;
}

export interface PlacementFigures {
  placement: Placement;
  perSecond: number | null;
  perServerCpuSecond: number | null;
  serverCpuUsPerMessage: number | null;
  natsCpuUsPerMessage: number | null;
  postgresCpuUsPerMessage: number | null;
  lost: number;
  duplicates: number;
  misrouted: number;
}

export interface ClusterRoutingResults {
  users: number;
  messagesPerRound: number;
  window: number;
  groups: number;
  features: string;
  rounds: ClusterRound[];
  placements: PlacementFigures[];
  /** Per group, in %: two nodes' messages per server-CPU-second relative to one node's (same cluster). */
  twoVsOneCpuPct: number[];
  medianTwoVsOneCpuPct: number | null;
  /** The same for the wall-clock rate. */
  twoVsOneRatePct: number[];
  medianTwoVsOneRatePct: number | null;
  /** Per group, in %: the cluster's one-node placement relative to the SQLite node, per server-CPU-second. */
  oneVsSingleCpuPct: number[];
  medianOneVsSingleCpuPct: number | null;
  /** Why the phase did not run, when it did not. */
  skipped?: string;
  errors: string[];
}

function log(text: string): void {
  console.error(`[cluster] ${text}`);
}

interface Node {
  name: string;
  child: ChildProcess;
  port: number;
  httpPort: number;
}

/** A gauge or counter of the node's /metrics (the first sample matching `pattern`). */
async function metric(node: Node, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => pattern.test(l));
  if (!line) throw new Error(`${node.name}: no ${pattern} in /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

const remoteSessions = (node: Node) => metric(node, /^switchboard_cluster_remote_sessions /);
/** Node A's cluster counters: stanzas sent to other nodes, not confirmed in time, not taken. */
async function crossings(node: Node): Promise<number[]> {
  return Promise.all([
    metric(node, /^switchboard_cluster_stanzas_total\{direction="out"\} /),
    metric(node, /^switchboard_cluster_delivery_timeouts_total /),
    metric(node, /^switchboard_cluster_undeliverable_total /),
  ]);
}

/** Waits until each node sees, bound on other nodes, the sessions held on the others. */
async function waitForViews(nodes: Node[], expected: number[]): Promise<void> {
  const deadline = Date.now() + VIEW_TIMEOUT_MS;
  for (;;) {
    const seen = await Promise.all(nodes.map(remoteSessions));
    if (seen.every((n, i) => n === expected[i])) return;
    if (Date.now() > deadline)
      throw new Error(
        `the nodes' views of remote sessions are ${seen.join(", ")} after ${VIEW_TIMEOUT_MS} ms, expected ${expected.join(", ")}`,
      );
    await sleep(100);
  }
}

async function importAccounts(dir: string, s: BenchSettings, users: number, common: string[]): Promise<void> {
  const lines: string[] = [];
  for (let i = 1; i <= users; i++) lines.push(`${ACCOUNTS.prefix}${i},${ACCOUNTS.passwordPrefix}${i}`);
  const file = path.join(dir, "accounts.csv");
  await writeFile(file, `${lines.join("\n")}\n`);
  try {
    const running = execFileAsync(
      process.execPath,
      [CLI, "user", "import", file, ...common, "--domain", s.domain],
      {
        cwd: dir,
      },
    );
    trackChild(running.child);
    await running;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`switchboard user import failed: ${e.stderr || e.message}`);
  }
}

/** Starts a node the way the main bench starts Switchboard (the launcher), on the server CPU. */
async function startNode(s: BenchSettings, dir: string, name: string, args: string[]): Promise<Node> {
  const [port, httpPort] = [await freePort(), await freePort()];
  // biome-ignore format: option and value side by side
  const argv = ["start", ...args, "--domain", s.domain, "--data-dir", path.join(dir, `data-${name}`),
    "--bind", s.host, "--c2s-port", String(port), "--c2s-tls-port", "0", "--http-port", String(httpPort),
    "--component-port", "0", "--s2s-port", "0", "--allow-plaintext", "--log-level", "warn"];
  const env = { ...process.env };
  for (const v of [
    "SWITCHBOARD_ALLOCATOR",
    "SWITCHBOARD_STORAGE_URL",
    "SWITCHBOARD_CLUSTER",
    "SWITCHBOARD_NODE",
  ])
    delete env[v];
  delete env.SWITCHBOARD_CLUSTER_PREFIX;
  const [command, commandArgs] = existsSync(LAUNCHER)
    ? [LAUNCHER, argv]
    : [process.execPath, [...SERVER_NODE_FLAGS, CLI, ...argv]];
  const child = spawnPinned(command, commandArgs, {
    cpu: s.serverCpu,
    cwd: dir,
    env,
    logFile: path.join(dir, `switchboard-${name}.log`),
  });
  await waitForPort(s.host, port, child, 30_000);
  await waitForPort(s.host, httpPort, child, 30_000);
  return { name, child, port, httpPort };
}

function keepLogs(dir: string, logDir: string): void {
  try {
    mkdirSync(logDir, { recursive: true });
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".log")))
      copyFileSync(path.join(dir, file), path.join(logDir, `cluster-${file}`));
  } catch {
    // nothing was started: nothing to keep
  }
}

function sum(rounds: ClusterRound[], pick: (r: ClusterRound) => number): number {
  return rounds.reduce((t, r) => t + pick(r), 0);
}

function figuresOf(placement: Placement, rounds: ClusterRound[]): PlacementFigures {
  const received = sum(rounds, (r) => r.received);
  const wall = sum(rounds, (r) => r.wallMs);
  const server = sum(rounds, (r) => r.nodeCpuMs.reduce((a, b) => a + b, 0));
  const nats = rounds.every((r) => r.natsCpuMs !== null) ? sum(rounds, (r) => r.natsCpuMs ?? 0) : null;
  const perMessage = (ms: number | null) => (ms === null || received === 0 ? null : (ms * 1000) / received);
  return {
    placement,
    perSecond: wall > 0 ? received / (wall / 1000) : null,
    perServerCpuSecond: server > 0 ? received / (server / 1000) : null,
    serverCpuUsPerMessage: perMessage(server),
    natsCpuUsPerMessage: perMessage(nats),
    postgresCpuUsPerMessage: perMessage(sum(rounds, (r) => r.postgresCpuMs)),
    lost: sum(rounds, (r) => r.lost),
    duplicates: sum(rounds, (r) => r.duplicates),
    misrouted: sum(rounds, (r) => r.misrouted),
  };
}

/** Runs the phase; the nodes' logs are copied into `logDir` at the end. */
export async function benchClusterRouting(
  s: BenchSettings,
  startLoadGenerator: (cpu: number) => ClusterRoutingDriver,
  logDir: string,
): Promise<ClusterRoutingResults> {
  const c = s.cluster;
  const results: ClusterRoutingResults = {
    users: c.users,
    messagesPerRound: c.messages,
    window: c.window,
    groups: c.groups,
    features: s.features,
    rounds: [],
    placements: [],
    twoVsOneCpuPct: [],
    medianTwoVsOneCpuPct: null,
    twoVsOneRatePct: [],
    medianTwoVsOneRatePct: null,
    oneVsSingleCpuPct: [],
    medianOneVsSingleCpuPct: null,
    errors: [],
  };
  const natsProblem = await jetStreamProblem(BENCH_NATS_URL);
  const nats = natsProblem && `NATS with JetStream at ${BENCH_NATS_URL}: ${natsProblem}`;
  if (nats) {
    results.skipped = nats;
    log(`skipped: ${nats}`);
    return results;
  }
  const database = await createBenchDatabase();
  if (typeof database === "string") {
    results.skipped = database;
    log(`skipped: ${database}`);
    return results;
  }
  const prefix = `sbbench_${randomBytes(4).toString("hex")}`;
  const dir = makeTempDir("cluster");
  const nodes: Node[] = [];
  let lg: ClusterRoutingDriver | undefined;
  const half = Math.floor(c.users / 2);
  try {
    const clusterConfig = path.join(dir, "cluster.yaml");
    const singleConfig = path.join(dir, "single.yaml");
    const base = switchboardConfig({ features: s.features });
    await writeFile(singleConfig, base);
    await writeFile(clusterConfig, `${base}\ncluster:\n  prefix: ${prefix}\n`);
    log(
      `${c.users} accounts on PostgreSQL and on SQLite; nodes A and B (NATS prefix ${prefix}), one SQLite node…`,
    );
    const storage = ["--storage", database.url];
    await importAccounts(dir, s, c.users, [
      "--config",
      clusterConfig,
      "--data-dir",
      path.join(dir, "data-a"),
      ...storage,
    ]);
    await importAccounts(dir, s, c.users, [
      "--config",
      singleConfig,
      "--data-dir",
      path.join(dir, "data-single"),
    ]);
    const cluster = ["--config", clusterConfig, ...storage, "--cluster", BENCH_NATS_URL];
    // The first node creates the schema, then the second joins.
    const a = await startNode(s, dir, "a", [...cluster, "--node", "bench-a"]);
    nodes.push(a);
    const b = await startNode(s, dir, "b", [...cluster, "--node", "bench-b"]);
    nodes.push(b);
    const single = await startNode(s, dir, "single", ["--config", singleConfig]);
    nodes.push(single);
    const deadline = Date.now() + VIEW_TIMEOUT_MS;
    while (
      (await metric(a, /^switchboard_cluster_nodes /)) < 2 ||
      (await metric(b, /^switchboard_cluster_nodes /)) < 2
    ) {
      if (Date.now() > deadline) throw new Error("nodes A and B do not see each other");
      await sleep(200);
    }

    pinSelf(String(s.loadCpu));
    lg = startLoadGenerator(s.loadCpu);
    const driver = lg;
    const target = (node: Node): ConnectionTarget => ({
      host: s.host,
      port: node.port,
      domain: s.domain,
      streamManagement: s.features === "mobile",
      carbons: s.features === "mobile",
    });
    const accounts: AccountSet = { ...ACCOUNTS, count: c.users };

    const run = async (placement: Placement, messages: number, group: number | undefined) => {
      const second = placement === "two-nodes" ? { from: half + 1, target: target(b) } : undefined;
      await driver.configure(target(placement === "single" ? single : a), accounts, second);
      try {
        const held = await driver.hold(c.users, s.holdConcurrency);
        if (held.failures > 0 || held.held !== c.users)
          throw new Error(`${placement}: ${held.failures} logins failed, e.g. ${held.errors.join("; ")}`);
        if (placement !== "single")
          await waitForViews([a, b], placement === "two-nodes" ? [c.users - half, half] : [0, c.users]);
        // What the logins set off (offline messages of earlier rounds among them) is not measured.
        await sleep(1_000);
        const measured = placement === "single" ? [single] : [a, b];
        const pids = measured.map((n) => n.child.pid as number);
        const crossed0 = placement === "single" ? [] : await crossings(a);
        const cpu0 = pids.map(cpuTimeMs);
        const [nats0, pg0, busy0] = [
          processCpu("nats-server"),
          processCpu("postgres"),
          cpuBusyMs(s.serverCpu),
        ];
        const t = await driver.throughput(messages, c.window, half);
        const nodeCpuMs = pids.map((pid, i) => cpuTimeMs(pid) - cpu0[i]!);
        const crossed = placement === "single" ? [] : (await crossings(a)).map((v, i) => v - crossed0[i]!);
        const round: ClusterRound = {
          placement,
          group: group ?? -1,
          sent: t.sent,
          received: t.received,
          lost: t.lost,
          duplicates: t.duplicates,
          misrouted: t.misrouted,
          dropped: t.dropped,
          wallMs: t.wallMs,
          perSecond: t.perSecond,
          nodeCpuMs,
          perServerCpuSecond: t.received / (nodeCpuMs.reduce((x, y) => x + y, 0) / 1000),
          natsCpuMs: nats0.size === 0 ? null : processCpuSince(nats0, "nats-server"),
          postgresCpuMs: processCpuSince(pg0, "postgres"),
          otherOnServerCpuPct: Math.max(
            0,
            ((cpuBusyMs(s.serverCpu) - busy0 - nodeCpuMs.reduce((x, y) => x + y, 0)) / t.wallMs) * 100,
          ),
          loadgenCpuPct: (t.cpuMs / t.wallMs) * 100,
          ...(placement === "single"
            ? {}
            : { crossNodeStanzas: crossed[0]!, deliveryTimeouts: crossed[1]!, undeliverable: crossed[2]! }),
        };
        return round;
      } finally {
        await driver.release();
      }
    };

    // Unmeasured: the JIT of every node settles, the generator derives every account's keys once.
    for (const placement of ["single", "one-node", "two-nodes"] as const) {
      const warm = await run(placement, c.warmupMessages, undefined);
      log(`warm-up, ${PLACEMENT_NAMES[placement]}: ${warm.perSecond.toFixed(0)} msg/s, ${warm.lost} lost`);
    }
    for (let group = 0; group < c.groups; group++) {
      for (const placement of ORDER) {
        let round: ClusterRound;
        try {
          round = await run(placement, c.messages, group);
        } catch (err) {
          // One round's failure (logins refused on a loaded machine, say) leaves the others standing.
          results.errors.push(`${placement} round ${group + 1}: ${(err as Error).message}`);
          log(`#${group + 1} ${PLACEMENT_NAMES[placement]}: FAILED ${(err as Error).message}`);
          continue;
        }
        results.rounds.push(round);
        const cpu = round.nodeCpuMs.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(" + ");
        log(
          `#${group + 1} ${PLACEMENT_NAMES[placement]}: ${round.perSecond.toFixed(0)} msg/s, ` +
            `${round.perServerCpuSecond.toFixed(0)} per server-CPU-second (${cpu}), ` +
            `nats-server ${round.natsCpuMs === null ? "n/a" : `${(round.natsCpuMs / 1000).toFixed(2)} s`}, ` +
            `${round.lost} lost, ${round.duplicates} duplicated, ${round.misrouted} misrouted` +
            (round.crossNodeStanzas !== undefined
              ? `, ${round.crossNodeStanzas} stanzas A→other nodes (${round.deliveryTimeouts} not confirmed in time, ${round.undeliverable} not taken)`
              : ""),
        );
        if (round.lost + round.duplicates + round.misrouted + round.dropped > 0)
          results.errors.push(
            `${placement} round ${group + 1}: ${round.lost} lost, ${round.duplicates} duplicated, ` +
              `${round.misrouted} misrouted, ${round.dropped} sessions dropped`,
          );
        if (placement === "two-nodes" && (round.crossNodeStanzas ?? 0) < round.received)
          results.errors.push(
            `two-nodes round ${group + 1}: node A sent ${round.crossNodeStanzas} stanzas to other nodes for ${round.received} messages`,
          );
      }
      const inGroup = results.rounds.filter((r) => r.group === group);
      const f = (p: Placement) =>
        figuresOf(
          p,
          inGroup.filter((r) => r.placement === p),
        );
      const [one, two, single] = [f("one-node"), f("two-nodes"), f("single")];
      const pct = (x: number | null, y: number | null) => (x !== null && y ? (100 * x) / y : null);
      const push = (list: number[], v: number | null) => v !== null && list.push(v);
      push(results.twoVsOneCpuPct, pct(two.perServerCpuSecond, one.perServerCpuSecond));
      push(results.twoVsOneRatePct, pct(two.perSecond, one.perSecond));
      push(results.oneVsSingleCpuPct, pct(one.perServerCpuSecond, single.perServerCpuSecond));
    }
  } catch (err) {
    results.errors.push((err as Error).message);
    log(`FAILED ${(err as Error).message}`);
  } finally {
    await lg?.stop();
    for (const node of nodes) await stopProcess(node.child);
    keepLogs(dir, logDir);
    pinSelf(`0-${os.cpus().length - 1}`);
    removeTempDir(dir);
    await removeClusterBuckets(prefix, BENCH_NATS_URL).catch((e: Error) =>
      results.errors.push(`removing the NATS buckets: ${e.message}`),
    );
    await database
      .drop()
      .catch((e: Error) => results.errors.push(`dropping the bench database: ${e.message}`));
  }
  for (const placement of ["single", "one-node", "two-nodes"] as const)
    results.placements.push(
      figuresOf(
        placement,
        results.rounds.filter((r) => r.placement === placement),
      ),
    );
  results.medianTwoVsOneCpuPct = median(results.twoVsOneCpuPct);
  results.medianTwoVsOneRatePct = median(results.twoVsOneRatePct);
  results.medianOneVsSingleCpuPct = median(results.oneVsSingleCpuPct);
  return results;
}

/** Lines for the bench report. */
export function clusterRoutingLines(r: ClusterRoutingResults): string[] {
  if (r.skipped) return [`Routing between two cluster nodes: not measured (${r.skipped})`];
  const n = (v: number | null, digits = 0) => (v === null ? "n/a" : v.toFixed(digits));
  const lines = [
    `Routing between two cluster nodes (Switchboard, plaintext, ${r.features} features; ${r.users} users online, ` +
      `half sending to random users of the other half, ${r.window} in flight each, ${r.groups} groups of rounds ` +
      `of ${r.messagesPerRound} messages; every node pinned to the server CPU):`,
  ];
  for (const p of r.placements) {
    lines.push(
      `  ${PLACEMENT_NAMES[p.placement].padEnd(40)}: ${n(p.perSecond)} msg/s, ${n(p.perServerCpuSecond)} per server-CPU-second ` +
        `(${n(p.serverCpuUsPerMessage, 1)} µs), nats-server ${n(p.natsCpuUsPerMessage, 1)} µs and PostgreSQL ` +
        `${n(p.postgresCpuUsPerMessage, 1)} µs per message; ${p.lost} lost, ${p.duplicates} duplicated, ${p.misrouted} misrouted`,
    );
  }
  const groups = (list: number[]) => list.map((g) => g.toFixed(1)).join(", ");
  lines.push(
    `  two nodes / one node, per server-CPU-second: ${n(r.medianTwoVsOneCpuPct, 1)} % (median of groups: ${groups(r.twoVsOneCpuPct)})`,
    `  two nodes / one node, messages per second:   ${n(r.medianTwoVsOneRatePct, 1)} % (median of groups: ${groups(r.twoVsOneRatePct)})`,
    `  cluster on one node / SQLite node, per server-CPU-second: ${n(r.medianOneVsSingleCpuPct, 1)} % ` +
      `(median of groups: ${groups(r.oneVsSingleCpuPct)})`,
  );
  const other = Math.max(0, ...r.rounds.map((x) => x.otherOnServerCpuPct));
  if (other > 10)
    lines.push(
      `  other processes (NATS and PostgreSQL included) took up to ${other.toFixed(0)} % of the server CPU in a round: figures disturbed`,
    );
  for (const e of r.errors) lines.push(`  error: ${e}`);
  return lines;
}
