/**
 * A server started on a database an earlier version wrote: the schema migrations it applies
 * are logged (one of them rebuilds the archive tables, which takes a while on a large archive),
 * and what was stored is still there. A new database's migrations are not logged one by one.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { openDatabase } from "../../src/storage/sqlite/database.js";
import { MIGRATIONS } from "../../src/storage/sqlite/migrations.js";
import { startServer, type TestServer } from "../helpers/server.js";

const MIGRATION_LINE = /"msg":"storage: applying a schema migration"/;

/** This run's part of a server's log (the file is appended to, run after run). */
function thisRunsLog(server: TestServer): string {
  const text = readFileSync(server.logFile, "utf8");
  return text.slice(text.lastIndexOf("[e2e] "));
}

describe("a server started on an earlier version's database", () => {
  const servers: TestServer[] = [];
  const dataDir = mkdtempSync(path.join(tmpdir(), "switchboard-schema-upgrade-"));
  after(async () => {
    for (const s of servers) if (s.running) await s.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("logs each migration it applies, and keeps the archive", async () => {
    const db = openDatabase(path.join(dataDir, "switchboard.sqlite"), { migrations: MIGRATIONS.slice(0, 5) });
    db.prepare("INSERT INTO accounts (username, created_at) VALUES ('alice', 0)").run();
    db.prepare(
      `INSERT INTO account_messages (store, owner, id, peer, peer_resource, at, direction, stanza, text, folded)
       VALUES ('mam', 'alice', 'kept-1', 'bob@localhost', '', 1, 'in', '<message/>', 'hi', 'hi')`,
    ).run();
    db.close();

    const server = await startServer({ name: "schema-upgrade", dataDir, extraArgs: ["--log-level", "info"] });
    servers.push(server);
    const lines = thisRunsLog(server)
      .split("\n")
      .filter((l) => MIGRATION_LINE.test(l));
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { version: number }).version),
      MIGRATIONS.slice(5).map((m) => m.version),
      "one line per migration applied, none for those the database had",
    );
    await server.stop();

    const after = openDatabase(path.join(dataDir, "switchboard.sqlite"));
    try {
      assert.equal(
        after.prepare("SELECT id FROM account_messages WHERE owner = 'alice'").pluck().get(),
        "kept-1",
      );
    } finally {
      after.close();
    }
  });

  test("a new database: no line per migration", async () => {
    const server = await startServer({ name: "schema-new", extraArgs: ["--log-level", "info"] });
    servers.push(server);
    assert.doesNotMatch(thisRunsLog(server), MIGRATION_LINE);
  });
});
