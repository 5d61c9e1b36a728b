/**
 * A server started on a database an earlier version wrote: the schema migrations it applies
 * are logged (one of them rebuilds the archive tables, which takes a while on a large archive),
 * and what was stored is still there. A new database's migrations are not logged one by one.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { openDatabase } from "../../src/storage/sqlite/database.js";
import { MIGRATIONS } from "../../src/storage/sqlite/migrations.js";
import { CLI, REPO_ROOT, startServer, type TestServer } from "../helpers/server.js";

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

  test("an admin command on an earlier version's database says which migrations it applies, on stderr", async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), "switchboard-schema-upgrade-cli-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const db = openDatabase(path.join(dir, "switchboard.sqlite"), { migrations: MIGRATIONS.slice(0, 5) });
    db.prepare("INSERT INTO accounts (username, created_at) VALUES ('alice', 0)").run();
    db.close();
    const run = () =>
      new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
        execFile(
          process.execPath,
          [CLI, "user", "list", "--json", "--data-dir", dir],
          { cwd: REPO_ROOT, timeout: 60_000 },
          (err, stdout, stderr) =>
            err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
        ),
      );
    const first = await run();
    assert.deepEqual(
      [...first.stderr.matchAll(/^switchboard: upgrading the database schema to version (\d+): /gm)].map(
        (m) => Number(m[1]),
      ),
      MIGRATIONS.slice(5).map((m) => m.version),
    );
    // The JSON on stdout is untouched, and the account is there.
    assert.match(JSON.stringify(JSON.parse(first.stdout)), /alice/);
    // Upgraded once: the next command says nothing.
    assert.equal((await run()).stderr, "");
  });
});
