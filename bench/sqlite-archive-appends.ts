/**
 * Message-archive appends on SQLite as the server makes them (the storage's default inline
 * writer, a stanza-id from the message archive's id generator per row), into an archive that
 * already holds many rows, the way a server's archive does after a while.
 *
 *   node dist/bench/sqlite-archive-appends.js [--baseline CHECKOUT] [--prefill 300000] [--rows 100000]
 *
 * 500 accounts; each message is archived twice (the sender's copy and the recipient's), in
 * batches of 500 rows (one event-loop turn's). The figure is CPU microseconds per row (this
 * process, all threads) and wall microseconds per row, for the appends after the prefill. With
 * `--baseline`, another checkout's build (`CHECKOUT/dist/src/storage/sqlite/index.js` and its
 * stanza-id generator) runs the same load in the order this, baseline, baseline, this, and the
 * report gives this build's medians as ratios of the baseline's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ArchivedMessage, Storage } from "../src/core/storage/types.js";
import { benchOptions } from "./lib/options.js";

const OWNERS = 500;
const BATCH = 500;

interface Options {
  baseline: string | undefined;
  prefill: number;
  rows: number;
}

const USAGE =
  "usage: node dist/bench/sqlite-archive-appends.js [--baseline CHECKOUT] [--prefill 300000] [--rows 100000]";

function parseOptions(argv: string[]): Options {
  const o = benchOptions(argv, USAGE, {
    numbers: {
      prefill: { default: 300_000, kind: "count" },
      rows: { default: 100_000, kind: "positive count" },
    },
    strings: ["baseline"],
  });
  return { baseline: o.baseline, prefill: o.prefill, rows: o.rows };
}

interface Build {
  name: string;
  open(opts: { path: string }): Promise<Storage>;
  newId(): string;
}

async function loadBuild(name: string, distRoot: string): Promise<Build> {
  const url = (p: string) => pathToFileURL(path.join(distRoot, p)).href;
  const sqlite = (await import(url("src/storage/sqlite/index.js"))) as {
    openSqliteStorage(opts: { path: string }): Promise<Storage>;
  };
  const ids = (await import(url("src/modules/stanza-id/api.js"))) as { newStanzaId(): string };
  return { name, open: sqlite.openSqliteStorage, newId: ids.newStanzaId };
}

const BODY = "a message of an ordinary length, as people write them to each other ".repeat(2);

function message(build: Build, i: number): ArchivedMessage {
  const owner = `user${i % OWNERS}`;
  const peer = `user${(i * 7 + 3) % OWNERS}@localhost`;
  const id = build.newId();
  return {
    id,
    owner,
    peer,
    peerResource: "phone",
    at: Date.now(),
    direction: i % 2 ? "in" : "out",
    stanza: `<message xmlns='jabber:client' from='${peer}/phone' to='${owner}@localhost' type='chat' id='m${i}'><body>${BODY}</body><stanza-id xmlns='urn:xmpp:sid:0' by='${owner}@localhost' id='${id}'/></message>`,
    text: BODY,
  };
}

async function appendRows(build: Build, storage: Storage, from: number, count: number): Promise<void> {
  const archive = storage.messages("mam", { ownedByAccounts: true });
  for (let i = from; i < from + count; i += BATCH) {
    const batch: Promise<boolean>[] = [];
    for (let j = i; j < Math.min(i + BATCH, from + count); j++) batch.push(archive.append(message(build, j)));
    await Promise.all(batch);
  }
}

/** Microseconds of CPU and of wall time per appended row, after the prefill. */
async function run(build: Build, o: Options): Promise<{ cpu: number; wall: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), "switchboard-archive-bench-"));
  try {
    const storage = await build.open({ path: path.join(dir, "switchboard.sqlite") });
    try {
      for (let i = 0; i < OWNERS; i++) await storage.accounts.create(`user${i}`, []);
      await appendRows(build, storage, 0, o.prefill);
      const cpu0 = process.cpuUsage();
      const wall0 = performance.now();
      await appendRows(build, storage, o.prefill, o.rows);
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - wall0;
      return { cpu: (cpu.user + cpu.system) / o.rows, wall: (wall * 1000) / o.rows };
    } finally {
      await storage.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const self = await loadBuild("this build", here);
  const base = o.baseline ? await loadBuild("baseline", path.resolve(o.baseline, "dist")) : undefined;
  const order = base ? [self, base, base, self] : [self];
  const results = new Map<Build, { cpu: number; wall: number }[]>();
  for (const build of order) {
    const r = await run(build, o);
    console.log(`${build.name}: ${r.cpu.toFixed(1)} µs CPU, ${r.wall.toFixed(1)} µs wall per row`);
    results.set(build, [...(results.get(build) ?? []), r]);
  }
  console.log(
    `\nSQLite archive appends, ${o.rows} rows after ${o.prefill} (${OWNERS} owners, batches of ${BATCH})`,
  );
  const figure = (b: Build, k: "cpu" | "wall") => median((results.get(b) ?? []).map((r) => r[k]));
  for (const k of ["cpu", "wall"] as const) {
    const line = `${k === "cpu" ? "CPU " : "wall"} µs per row: ${figure(self, k).toFixed(1)}`;
    console.log(
      base
        ? `${line} (baseline ${figure(base, k).toFixed(1)}: ${(figure(self, k) / figure(base, k)).toFixed(2)} ×)`
        : line,
    );
  }
}

await main();
