/**
 * `user import` creates accounts in transactions of a bounded size, so a running server's
 * writes never wait for one transaction holding every account of a large file; the names
 * that exist already are skipped and counted.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { userImport } from "../../src/commands/users.js";
import type { CommandContext } from "../../src/core/commands.js";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import { loadServerConfig } from "../../src/server/config.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";

test("a large import is written in transactions of at most 1,000 accounts", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-import-"));
  const storage = await openSqliteStorage({ path: path.join(dir, "switchboard.sqlite") });
  try {
    const config = loadServerConfig({
      overrides: { domain: "example.test", dataDir: dir, scramIterations: 4096 },
    });
    await storage.accounts.create("u7", deriveCredentials("old", { iterations: 4096, hashes: ["SHA-1"] }));
    const batches: number[] = [];
    const createMany = storage.accounts.createMany.bind(storage.accounts);
    storage.accounts.createMany = (items) => {
      batches.push(items.length);
      return createMany(items);
    };
    const file = path.join(dir, "users.csv");
    writeFileSync(file, Array.from({ length: 2500 }, (_, i) => `u${i},pw-${i}`).join("\n"));
    const ctx = {
      storage,
      config,
      clock: { now: () => Date.now() },
      actor: "cli",
    } as unknown as CommandContext;
    const result = (await userImport.run(ctx, { file })) as { data: { created: number; skipped: number } };
    assert.deepEqual(batches, [1000, 1000, 500]);
    assert.deepEqual([result.data.created, result.data.skipped], [2499, 1]);
    assert.equal((await storage.accounts.get("u2499"))?.username, "u2499");
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
