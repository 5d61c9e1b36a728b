/** A server's SQLite storage checkpoints its WAL from a thread, not from commits on the main thread. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";

const dir = mkdtempSync(path.join(tmpdir(), "sb-wal-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const size = (file: string) => statSync(file).size;

/**
 * Writes about 600 KiB (some 150 pages, under SQLite's automatic checkpoint at 1,000) and
 * returns how much the database file grew within `waitMs`: only a checkpoint copies pages
 * from the WAL into it.
 */
async function growthAfterWrites(checkpointThread: boolean, waitMs: number): Promise<number> {
  const file = path.join(dir, `${checkpointThread ? "thread" : "auto"}.db`);
  const storage = await openSqliteStorage({ path: file, checkpointThread });
  try {
    const log = storage.archive<{ text: string }>("bulk");
    await log.append({ at: 0, kind: "seed", data: { text: "" } });
    const before = size(file);
    const text = "x".repeat(4000);
    for (let i = 0; i < 150; i++) await log.append({ at: i, kind: "bulk", data: { text } });
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && size(file) - before < 400_000)
      await new Promise((r) => setTimeout(r, 50));
    return size(file) - before;
  } finally {
    await storage.close();
  }
}

test("the checkpoint thread copies the WAL into the database file within a second or so", async () => {
  const grown = await growthAfterWrites(true, 5000);
  assert.ok(grown >= 400_000, `the database file grew by ${grown} bytes`);
});

test("without it (a command's storage) nothing is copied before SQLite's own threshold", async () => {
  const grown = await growthAfterWrites(false, 1500);
  assert.ok(grown < 100_000, `the database file grew by ${grown} bytes`);
});

test("closing the storage stops the thread (the process is free to exit) and the data is all there", async () => {
  const file = path.join(dir, "reopen.db");
  const storage = await openSqliteStorage({ path: file, checkpointThread: true });
  await storage.archive<string>("kept").append({ at: 1, kind: "note", data: "blue" });
  await storage.close();
  const again = await openSqliteStorage({ path: file });
  assert.deepEqual(
    (await again.archive<string>("kept").query()).map((e) => e.data),
    ["blue"],
  );
  await again.close();
});
