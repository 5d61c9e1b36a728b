/**
 * Message-archive appends on PostgreSQL, against the lookups logins make on the same pool.
 *
 *   node dist/bench/archive-appends.js [--baseline CHECKOUT] [--seconds 4] [--rate 500] [--flood 10000]
 *
 * Two storage handles on one database stand for two cluster nodes (each its own pool of 10
 * connections). A chat message from a user on node A to one on node B is archived twice:
 * node A appends the sender's copy, node B the recipient's. Two phases per run:
 * - steady: `--rate` messages per second for `--seconds`, spread over 200 users;
 * - flood: `--flood` rows appended at once (half on each node).
 * Meanwhile each node looks up an account every 20 ms, as each login does, and the lookup's
 * time (waiting for a connection of the pool, then the query) is recorded; so is the pool
 * wait of every query (the time `Pool.connect` takes, wrapped in this process).
 *
 * With `--baseline`, another checkout's build (`CHECKOUT/dist/src/storage/postgres/index.js`)
 * runs the same load in the same process, in the order this, baseline, baseline, this, and the
 * report gives this build's figures as ratios of the baseline's (medians of its two runs).
 * Needs the PostgreSQL of SWITCHBOARD_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * where it creates a database for the run and drops it after.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ArchivedMessage, Storage } from "../src/core/storage/types.js";
import { benchOptions } from "./lib/options.js";
import { sleep } from "./lib/processes.js";
import { createBenchDatabase } from "./lib/storage-logins.js";

const USERS = 200;
const LOOKUP_EVERY_MS = 20;

interface Options {
  baseline: string | undefined;
  seconds: number;
  rate: number;
  flood: number;
}

const USAGE =
  "usage: node dist/bench/archive-appends.js [--baseline CHECKOUT] [--seconds 4] [--rate 500] [--flood 10000]";

function parseOptions(argv: string[]): Options {
  const o = benchOptions(argv, USAGE, {
    numbers: {
      seconds: { default: 4, kind: "positive" },
      rate: { default: 500, kind: "positive" },
      flood: { default: 10_000, kind: "positive count" },
    },
    strings: ["baseline"],
  });
  return { baseline: o.baseline, seconds: o.seconds, rate: o.rate, flood: o.flood };
}

type Open = (opts: { url: string; schema: string; poolSize: number }) => Promise<Storage>;

interface Implementation {
  name: string;
  open: Open;
}

/** Times each query waits for a connection of a pool, in milliseconds (all pools of this process). */
let poolWaits: number[] = [];

type ConnectCallback = (err: Error | undefined, ...rest: unknown[]) => void;

/**
 * Wraps `connect` of the pg Pool a checkout loads (its own node_modules: the baseline's is a
 * module of its own), through which every query of the pool gets its connection.
 */
function timePoolWaits(root: string): void {
  const pg = createRequire(path.join(root, "package.json"))("pg") as {
    Pool: { prototype: { connect(cb?: ConnectCallback): unknown } };
  };
  const proto = pg.Pool.prototype;
  const connect = proto.connect;
  proto.connect = function (this: unknown, cb?: ConnectCallback) {
    const t0 = performance.now();
    if (cb) {
      return connect.call(this, (err, ...rest) => {
        poolWaits.push(performance.now() - t0);
        cb(err, ...rest);
      });
    }
    return (connect.call(this) as Promise<unknown>).then((client) => {
      poolWaits.push(performance.now() - t0);
      return client;
    });
  };
}

async function implementationAt(name: string, root: string): Promise<Implementation> {
  timePoolWaits(root);
  const file = path.join(root, "dist", "src", "storage", "postgres", "index.js");
  const module = (await import(pathToFileURL(file).href)) as { openPostgresStorage: Open };
  return { name, open: module.openPostgresStorage };
}

interface PhaseFigures {
  rows: number;
  /** From the first append to the last one settled. */
  seconds: number;
  rowsPerSecond: number;
  failed: number;
  appendP50Ms: number;
  appendP99Ms: number;
  lookups: number;
  lookupP50Ms: number;
  lookupP99Ms: number;
  lookupMaxMs: number;
  lookupsFailed: number;
  /** Queries' waits for a connection (appends and lookups alike). */
  poolWaits: number;
  poolWaitMeanMs: number;
  poolWaitP99Ms: number;
}

interface RunFigures {
  implementation: string;
  idleLookupP50Ms: number;
  steady: PhaseFigures;
  flood: PhaseFigures;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const user = (i: number) => `user${i % USERS}`;

function archived(owner: string, id: string, direction: "in" | "out", peer: string): ArchivedMessage {
  const body = `message ${id} from the bench, about as long as a chat line`;
  return {
    id,
    owner,
    peer: `${peer}@example.org`,
    peerResource: direction === "in" ? "phone" : "",
    at: Date.now(),
    direction,
    stanza: `<message xmlns='jabber:client' type='chat' id='${id}' to='${peer}@example.org'><body>${body}</body><stanza-id xmlns='urn:xmpp:sid:0' id='${id}' by='${owner}@example.org'/></message>`,
    text: body,
  };
}

/** Account lookups on each node every LOOKUP_EVERY_MS, each timed, until stopped. */
function lookups(nodes: Storage[]): { stop(): Promise<{ times: number[]; failed: number }> } {
  const times: number[] = [];
  const pending = new Set<Promise<void>>();
  let failed = 0;
  let i = 0;
  const timer = setInterval(() => {
    for (const node of nodes) {
      const t0 = performance.now();
      const p = node.accounts
        .get(user(i++ * 13))
        .then(
          () => {
            times.push(performance.now() - t0);
          },
          () => {
            failed++;
          },
        )
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  }, LOOKUP_EVERY_MS);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      return { times: times.sort((a, b) => a - b), failed };
    },
  };
}

class Appends {
  readonly times: number[] = [];
  failed = 0;
  readonly #pending: Promise<void>[] = [];

  add(node: Storage, m: ArchivedMessage): void {
    const t0 = performance.now();
    this.#pending.push(
      node
        .messages("mam", { ownedByAccounts: true })
        .append(m)
        .then(
          () => {
            this.times.push(performance.now() - t0);
          },
          () => {
            this.failed++;
          },
        ),
    );
  }

  get count(): number {
    return this.#pending.length;
  }

  settled(): Promise<unknown> {
    return Promise.all(this.#pending);
  }
}

function figures(
  appends: Appends,
  seconds: number,
  looked: { times: number[]; failed: number },
): PhaseFigures {
  const times = appends.times.sort((a, b) => a - b);
  const waits = poolWaits.sort((a, b) => a - b);
  poolWaits = [];
  return {
    poolWaits: waits.length,
    poolWaitMeanMs: waits.reduce((sum, w) => sum + w, 0) / waits.length,
    poolWaitP99Ms: quantile(waits, 0.99),
    rows: appends.count,
    seconds,
    rowsPerSecond: (appends.count - appends.failed) / seconds,
    failed: appends.failed,
    appendP50Ms: quantile(times, 0.5),
    appendP99Ms: quantile(times, 0.99),
    lookups: looked.times.length,
    lookupP50Ms: quantile(looked.times, 0.5),
    lookupP99Ms: quantile(looked.times, 0.99),
    lookupMaxMs: looked.times.at(-1) ?? Number.NaN,
    lookupsFailed: looked.failed,
  };
}

async function run(impl: Implementation, url: string, schema: string, o: Options): Promise<RunFigures> {
  const nodeA = await impl.open({ url, schema, poolSize: 10 });
  const nodeB = await impl.open({ url, schema, poolSize: 10 });
  const nodes = [nodeA, nodeB];
  try {
    await nodeA.accounts.createMany(
      Array.from({ length: USERS }, (_, i) => ({ username: user(i), credentials: [] })),
    );
    // Every connection of both pools open, whichever way the appends use them.
    await Promise.all(
      nodes.flatMap((node) => Array.from({ length: 20 }, (_, i) => node.accounts.get(user(i)))),
    );
    const idle = lookups(nodes);
    await sleep(500);
    const idleLookups = await idle.stop();

    /** `rate` messages per second for `seconds`, each archived on both nodes. */
    const steadily = async (seconds: number, prefix: string): Promise<[Appends, number]> => {
      const appends = new Appends();
      const started = performance.now();
      for (let sent = 0; ; ) {
        const elapsed = performance.now() - started;
        if (elapsed >= seconds * 1000) break;
        const due = Math.floor((elapsed / 1000) * o.rate);
        for (; sent < due; sent++) {
          const from = user(sent);
          const to = user(sent * 7 + 1);
          appends.add(nodeA, archived(from, `${prefix}${sent}`, "out", to));
          appends.add(nodeB, archived(to, `${prefix}${sent}`, "in", from));
        }
        await sleep(5);
      }
      await appends.settled();
      return [appends, (performance.now() - started) / 1000];
    };
    // Unmeasured: the statements get prepared on the connections the appends use.
    const warming = lookups(nodes);
    await steadily(1, "w");
    await warming.stop();

    poolWaits = [];
    let looking = lookups(nodes);
    const [steady, steadySeconds] = await steadily(o.seconds, "s");
    const steadyFigures = figures(steady, steadySeconds, await looking.stop());

    // Flood: everything at once.
    const flood = new Appends();
    poolWaits = [];
    looking = lookups(nodes);
    const t0 = performance.now();
    for (let i = 0; i < o.flood; i++) {
      const from = user(i);
      flood.add(nodes[i % 2]!, archived(from, `f${i}`, i % 2 === 0 ? "out" : "in", user(i * 7 + 1)));
    }
    await flood.settled();
    const floodSeconds = (performance.now() - t0) / 1000;
    const floodFigures = figures(flood, floodSeconds, await looking.stop());

    return {
      implementation: impl.name,
      idleLookupP50Ms: quantile(idleLookups.times, 0.5),
      steady: steadyFigures,
      flood: floodFigures,
    };
  } finally {
    for (const node of nodes) await node.close().catch(() => undefined);
  }
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "n/a");
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "n/a");

function phaseLine(label: string, p: PhaseFigures): string {
  return (
    `  ${label.padEnd(7)} ${String(p.rows).padStart(6)} rows in ${p.seconds.toFixed(1).padStart(5)} s: ` +
    `${f0(p.rowsPerSecond).padStart(6)} rows/s, ${p.failed} failed; append p50 ${f1(p.appendP50Ms)} ms, p99 ${f1(p.appendP99Ms)} ms; ` +
    `lookup p50 ${f1(p.lookupP50Ms)} ms, p99 ${f1(p.lookupP99Ms)} ms, max ${f1(p.lookupMaxMs)} ms (${p.lookups} lookups, ${p.lookupsFailed} failed); ` +
    `pool wait mean ${f1(p.poolWaitMeanMs)} ms, p99 ${f1(p.poolWaitP99Ms)} ms (${p.poolWaits} queries)`
  );
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
  const current = await implementationAt("this build", here);
  const order = o.baseline
    ? [current, await implementationAt("baseline", path.resolve(o.baseline))]
    : [current];
  const runs = order.length === 2 ? [order[0]!, order[1]!, order[1]!, order[0]!] : order;
  const database = await createBenchDatabase();
  if (typeof database === "string") {
    console.error(`bench: ${database}`);
    process.exit(1);
  }
  const results: RunFigures[] = [];
  try {
    for (const [i, impl] of runs.entries()) {
      console.error(`bench: ${impl.name}, run ${i + 1} of ${runs.length}…`);
      results.push(await run(impl, database.url, `run${i + 1}`, o));
    }
  } finally {
    await database.drop();
  }
  console.log(
    `Message-archive appends on PostgreSQL, two handles (pools of 10) on one database, ${USERS} users; ` +
      `steady ${o.rate} messages/s (${2 * o.rate} rows/s) for ${o.seconds} s, then a flood of ${o.flood} rows; ` +
      `an account lookup every ${LOOKUP_EVERY_MS} ms on each handle`,
  );
  for (const r of results) {
    console.log(`${r.implementation} (idle lookup p50 ${f1(r.idleLookupP50Ms)} ms)`);
    console.log(phaseLine("steady", r.steady));
    console.log(phaseLine("flood", r.flood));
  }
  if (order.length === 2) {
    const of = (name: string, pick: (r: RunFigures) => number) =>
      median(results.filter((r) => r.implementation === name).map(pick));
    const ratio = (label: string, pick: (r: RunFigures) => number) => {
      const a = of("this build", pick);
      const b = of("baseline", pick);
      console.log(
        `  ${label.padEnd(34)} ${f1(a).padStart(8)} / ${f1(b).padStart(8)} = ${(a / b).toFixed(2)}`,
      );
    };
    console.log("This build / baseline (medians of two runs each):");
    ratio("steady rows/s", (r) => r.steady.rowsPerSecond);
    ratio("steady append p99 (ms)", (r) => r.steady.appendP99Ms);
    ratio("steady pool wait mean (ms)", (r) => r.steady.poolWaitMeanMs);
    ratio("steady pool wait p99 (ms)", (r) => r.steady.poolWaitP99Ms);
    ratio("steady lookup p50 (ms)", (r) => r.steady.lookupP50Ms);
    ratio("steady lookup p99 (ms)", (r) => r.steady.lookupP99Ms);
    ratio("flood rows/s", (r) => r.flood.rowsPerSecond);
    ratio("flood pool wait mean (ms)", (r) => r.flood.poolWaitMeanMs);
    ratio("flood pool wait p99 (ms)", (r) => r.flood.poolWaitP99Ms);
    ratio("flood lookup p50 (ms)", (r) => r.flood.lookupP50Ms);
    ratio("flood lookup p99 (ms)", (r) => r.flood.lookupP99Ms);
    ratio("flood lookup max (ms)", (r) => r.flood.lookupMaxMs);
  }
}

await main();
