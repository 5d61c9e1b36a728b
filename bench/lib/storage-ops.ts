/**
 * Storage operations per second on each backend, in this process (no XMPP): what a login reads,
 * a roster read, an offline push, a document update. One at a time (each waits for the
 * previous: latency) and 16 in flight (PostgreSQL spreads them over its pool; SQLite runs them
 * one after the other anyway).
 */
import os from "node:os";
import path from "node:path";
import type { Storage } from "../../src/core/storage/types.js";
import { openStorage } from "../../src/storage/index.js";
import { makeTempDir, pinSelf, removeTempDir } from "./processes.js";

const USERS = 200;
const IN_FLIGHT = 16;

export interface StorageOpFigure {
  backend: "sqlite" | "postgres";
  operation: string;
  /** Operations per second one at a time, and with IN_FLIGHT at once. */
  sequentialPerSecond: number;
  concurrentPerSecond: number;
  meanLatencyUs: number;
}

type Operation = { name: string; run: (storage: Storage, i: number) => Promise<unknown> };

const OPERATIONS: Operation[] = [
  { name: "account lookup (each login)", run: (s, i) => s.accounts.get(`user${i % USERS}`) },
  { name: "roster read", run: (s, i) => s.roster.get(`user${i % USERS}`) },
  {
    name: "offline push (quota checked)",
    run: (s, i) =>
      s.offline.push(`user${i % USERS}`, `<message id='m${i}'><body>hello</body></message>`, 1_000_000),
  },
  {
    name: "document update",
    run: (s, i) => s.documents<number>("bench").update(`k${i % 20}`, (n) => (n ?? 0) + 1),
  },
];

async function fill(storage: Storage): Promise<void> {
  const hash = Buffer.alloc(32, 7);
  await storage.accounts.createMany(
    Array.from({ length: USERS }, (_, i) => ({
      username: `user${i}`,
      credentials: [
        { hash: "SHA-256" as const, salt: hash, iterations: 4096, storedKey: hash, serverKey: hash },
      ],
    })),
  );
  for (let i = 0; i < USERS; i++) {
    for (let c = 0; c < 10; c++) {
      await storage.roster.setItem(`user${i}`, {
        jid: `contact${c}@example.org`,
        subscription: "both",
        ask: false,
        approved: false,
        groups: ["Friends"],
      });
    }
  }
}

async function measure(storage: Storage, op: Operation, count: number): Promise<[number, number]> {
  let i = 0;
  const t0 = performance.now();
  for (; i < count; i++) await op.run(storage, i);
  const sequentialMs = performance.now() - t0;
  const t1 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (i < 2 * count) await op.run(storage, i++);
    }),
  );
  const concurrentMs = performance.now() - t1;
  return [sequentialMs, concurrentMs];
}

/** Runs every operation on both backends; `postgresUrl` undefined: SQLite only. */
export async function benchStorageOps(
  cpu: number,
  count: number,
  postgresUrl: string | undefined,
): Promise<StorageOpFigure[]> {
  const dir = makeTempDir("storage-ops");
  const figures: StorageOpFigure[] = [];
  pinSelf(String(cpu));
  try {
    const backends: ["sqlite" | "postgres", () => Promise<Storage>][] = [
      ["sqlite", () => openStorage({ backend: "sqlite", path: path.join(dir, "ops.sqlite") })],
    ];
    if (postgresUrl)
      backends.push(["postgres", () => openStorage({ backend: "postgres", url: postgresUrl })]);
    for (const [backend, open] of backends) {
      const storage = await open();
      try {
        await fill(storage);
        for (const op of OPERATIONS) {
          await measure(storage, op, 1_000); // warm-up: the pool opens, the JIT settles
          const [sequentialMs, concurrentMs] = await measure(storage, op, count);
          figures.push({
            backend,
            operation: op.name,
            sequentialPerSecond: (count / sequentialMs) * 1000,
            concurrentPerSecond: (count / concurrentMs) * 1000,
            meanLatencyUs: (sequentialMs / count) * 1000,
          });
        }
      } finally {
        await storage.close();
      }
    }
  } finally {
    pinSelf(`0-${os.cpus().length - 1}`);
    removeTempDir(dir);
  }
  return figures;
}

export function storageOpLines(figures: StorageOpFigure[]): string[] {
  const lines = [
    `Storage operations (in one process pinned to the server's CPU; one at a time / ${IN_FLIGHT} in flight):`,
  ];
  for (const f of figures) {
    lines.push(
      `  ${f.backend === "sqlite" ? "SQLite    " : "PostgreSQL"} ${f.operation.padEnd(30)} ` +
        `${f.sequentialPerSecond.toFixed(0).padStart(6)} /s (${f.meanLatencyUs.toFixed(0)} µs each), ` +
        `${f.concurrentPerSecond.toFixed(0).padStart(6)} /s with ${IN_FLIGHT} in flight`,
    );
  }
  return lines;
}
