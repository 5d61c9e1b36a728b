import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { Storage } from "../../src/core/storage/types.js";
import { openStorage } from "../../src/storage/index.js";
import { openDatabase } from "../../src/storage/sqlite/database.js";
import { SchemaTooNewError, UnknownAccountError } from "../../src/storage/sqlite/errors.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { REMOVAL_BATCH_ROWS } from "../../src/storage/sqlite/messages.js";
import { migrate } from "../../src/storage/sqlite/migrate.js";
import { MIGRATIONS, type Migration } from "../../src/storage/sqlite/migrations.js";
import { appendMetrics, type Flood, flood, sleep } from "./append-backpressure.js";
import { credentials, runStorageConformance } from "./conformance.js";

const dir = mkdtempSync(join(tmpdir(), "switchboard-sqlite-"));
let counter = 0;
const freshPath = () => join(dir, `db-${++counter}`, "switchboard.sqlite");

/** For code below the factory, which expects the directory to exist. */
function freshPathWithDir(): string {
  const path = freshPath();
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

after(() => rmSync(dir, { recursive: true, force: true }));

// Through the factory, so every conformance run also checks that the parent directory is created.
let lastPath = "";
runStorageConformance(
  "sqlite",
  () => {
    lastPath = freshPath();
    return openStorage({ backend: "sqlite", path: lastPath });
  },
  { openAnother: () => openStorage({ backend: "sqlite", path: lastPath }) },
);

// The server's way: archive appends written by a thread of their own, in a window.
let threadPath = "";
const THREAD_WRITES = { delayMs: 50, maxRows: 100, worker: true };
runStorageConformance(
  "sqlite, archive written by its thread",
  () => {
    threadPath = freshPath();
    return openStorage({ backend: "sqlite", path: threadPath, archiveWrites: THREAD_WRITES });
  },
  { openAnother: () => openStorage({ backend: "sqlite", path: threadPath, archiveWrites: THREAD_WRITES }) },
);

function archived(i: number) {
  return {
    id: `m${i}`,
    owner: "alice",
    peer: "bob@example.com",
    peerResource: "phone",
    at: 1_700_000_000_000 + i,
    direction: "in" as const,
    stanza: `<message><body>${i}</body></message>`,
    text: String(i),
  };
}

/**
 * Four senders flood their archives (one append per turn each, waiting whenever told to)
 * while another connection holds the file's write lock; `whileLocked` checks what happens
 * meanwhile. Then the lock goes, and every append must be written, in order, the queue empty.
 */
async function floodUnderLock(
  opts: { worker: boolean; busyTimeoutMs: number },
  whileLocked: (c: {
    f: Flood;
    names: string[];
    bound: number;
    metric: ReturnType<typeof appendMetrics>;
  }) => Promise<void>,
): Promise<void> {
  const path = freshPathWithDir();
  const maxRows = 10;
  const storage = await openSqliteStorage({
    path,
    archiveWrites: { delayMs: 0, maxRows, worker: opts.worker },
    busyTimeoutMs: opts.busyTimeoutMs,
  });
  const metric = appendMetrics(storage);
  const blocker = new Database(path);
  let blocking = false;
  try {
    const names = ["alice", "bob", "carol", "dave"];
    for (const name of names) await storage.accounts.create(name, credentials(1));
    const mam = storage.messages("mam", { ownedByAccounts: true });
    blocker.exec("BEGIN IMMEDIATE");
    blocking = true;
    const perSender = 150;
    const f = flood(mam, names, perSender);
    await whileLocked({ f, names, bound: 2 * maxRows, metric });

    blocker.exec("COMMIT");
    blocking = false;
    await f.done;
    assert.deepEqual(await Promise.all(f.writes), Array(names.length * perSender).fill(true));
    for (const owner of names) {
      const { messages } = await mam.query({ owner });
      assert.deepEqual(
        messages.map((m) => m.id),
        f.sent.get(owner),
        owner,
      );
    }
    assert.equal(metric("switchboard_archive_append_queued_rows", "mam"), 0);
    assert.equal(metric("switchboard_archive_append_callers_waiting", "mam"), 0);
    assert.ok(metric("switchboard_archive_append_batches_total", "mam")! > 0);
  } finally {
    if (blocking) blocker.exec("ROLLBACK");
    blocker.close();
    await storage.close();
  }
}

describe("sqlite storage: archive writes on a thread", () => {
  it("keeps appends nobody waited for when the storage is closed", async () => {
    const path = freshPathWithDir();
    const first = await openSqliteStorage({
      path,
      archiveWrites: { delayMs: 5000, maxRows: 10_000, worker: true },
    });
    await first.accounts.create("alice", credentials(1));
    const mam = first.messages("mam", { ownedByAccounts: true });
    const appends = Array.from({ length: 300 }, (_, i) => mam.append(archived(i)));
    await first.close();
    assert.deepEqual(await Promise.all(appends), Array(300).fill(true));
    const second = await openSqliteStorage({ path });
    try {
      const { messages } = await second.messages("mam", { ownedByAccounts: true }).query({ owner: "alice" });
      assert.deepEqual(
        messages.map((m) => m.id),
        Array.from({ length: 300 }, (_, i) => `m${i}`),
        "all of them, in the order they were appended",
      );
    } finally {
      await second.close();
    }
  });

  it("makes appends wait for room while the thread cannot write, then writes them all, in order", async () => {
    // The thread waits for the lock rather than giving its rows back: its commits wait, as on
    // a disk that stalls, while the main thread goes on taking messages.
    await floodUnderLock({ worker: true, busyTimeoutMs: 30_000 }, async ({ f, names, bound, metric }) => {
      await sleep(500);
      // Each sender makes at most one append past the bound before it is told to wait.
      assert.ok(f.count() <= bound + names.length, `${f.count()} appends made while the thread was held`);
      const queued = metric("switchboard_archive_append_queued_rows", "mam")!;
      assert.ok(queued > 0 && queued <= bound + names.length, `${queued} rows queued`);
      assert.equal(metric("switchboard_archive_append_callers_waiting", "mam"), names.length);
      assert.equal(metric("switchboard_archive_append_waiting", "mam"), undefined, "no such figure here");
    });
  });

  it("on the main thread, a lock another connection holds neither stops the thread nor loses appends", async () => {
    await floodUnderLock({ worker: false, busyTimeoutMs: 200 }, async ({ f, names, bound, metric }) => {
      // How late a timer of 10 ms fires while the lock is held: the thread's longest stop.
      let worstLagMs = 0;
      const until = performance.now() + 1500;
      while (performance.now() < until) {
        const t0 = performance.now();
        await sleep(10);
        worstLagMs = Math.max(worstLagMs, performance.now() - t0 - 10);
      }
      // One wait of the busy timeout when the lock is first met; the tries after it do not wait.
      assert.ok(worstLagMs < 600, `the main thread stopped for ${worstLagMs.toFixed(0)} ms`);
      assert.ok(f.count() <= bound + names.length, `${f.count()} appends made while the lock was held`);
      const queued = metric("switchboard_archive_append_queued_rows", "mam")!;
      assert.ok(queued > 0 && queued <= bound + names.length, `${queued} rows kept`);
      assert.equal(metric("switchboard_archive_append_callers_waiting", "mam"), names.length);
    });
  });

  it("a read sees every append made before it, however long the window", async () => {
    const storage = await openSqliteStorage({
      path: freshPathWithDir(),
      archiveWrites: { delayMs: 60_000, maxRows: 100_000, worker: true },
    });
    try {
      await storage.accounts.create("alice", credentials(1));
      const mam = storage.messages("mam", { ownedByAccounts: true });
      for (let i = 0; i < 50; i++) void mam.append(archived(i));
      assert.equal(await mam.count({ owner: "alice" }), 50);
      assert.equal((await mam.get("alice", "m49"))?.text, "49");
    } finally {
      await storage.close();
    }
  });

  it("refuses an append for an account that does not exist, and only that one", async () => {
    const storage = await openSqliteStorage({ path: freshPathWithDir(), archiveWrites: THREAD_WRITES });
    try {
      await storage.accounts.create("alice", credentials(1));
      const mam = storage.messages("mam", { ownedByAccounts: true });
      const good = mam.append(archived(1));
      const bad = mam.append({ ...archived(2), owner: "nobody" });
      assert.equal(await good, true);
      await assert.rejects(bad, UnknownAccountError);
    } finally {
      await storage.close();
    }
  });

  it("writes what the thread had not committed when the process exits", async () => {
    const path = freshPathWithDir();
    const setup = await openSqliteStorage({ path });
    await setup.accounts.create("alice", credentials(1));
    await setup.close();
    // A child process appends 200 messages in a long window and exits without closing.
    const storageModule = new URL("../../src/storage/sqlite/index.js", import.meta.url).href;
    const script = `
      const { openSqliteStorage } = await import(${JSON.stringify(storageModule)});
      const s = await openSqliteStorage({ path: ${JSON.stringify(path)}, archiveWrites: { delayMs: 60000, maxRows: 100000, worker: true } });
      const mam = s.messages("mam", { ownedByAccounts: true });
      for (let i = 0; i < 200; i++) void mam.append({ id: "x" + i, owner: "alice", peer: "bob@example.com", peerResource: "", at: i, direction: "out", stanza: "<message/>", text: "" });
      setTimeout(() => process.exit(0), 200);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: "inherit" });
    assert.equal(await new Promise((resolve) => child.once("exit", resolve)), 0);
    const after = await openSqliteStorage({ path });
    try {
      assert.equal(await after.messages("mam", { ownedByAccounts: true }).count({ owner: "alice" }), 200);
    } finally {
      await after.close();
    }
  });
});

const ACCOUNT_TABLES = [
  "accounts",
  "scram_credentials",
  "roster_items",
  "roster_groups",
  "pending_subscriptions",
  "offline_messages",
  "key_values",
  "blocklist",
  "account_messages",
];

describe("sqlite storage: connection", () => {
  it("opens in WAL mode with synchronous=NORMAL, foreign keys and a busy timeout", () => {
    const db = openDatabase(freshPathWithDir());
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("synchronous", { simple: true }), 1);
      assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
      assert.equal(db.pragma("busy_timeout", { simple: true }), 5000);
    } finally {
      db.close();
    }
  });

  it("reports writes for unknown accounts as UnknownAccountError", async () => {
    const storage = await openStorage({ backend: "sqlite", path: freshPath() });
    try {
      await assert.rejects(storage.keyValue("vcard").set("nobody", "k", "v"), UnknownAccountError);
      await assert.rejects(storage.offline.push("nobody", "<m/>", 5), UnknownAccountError);
      await assert.rejects(storage.blocklist.add("nobody", ["x@example.com"]), UnknownAccountError);
      await assert.rejects(
        storage.roster.setItem("nobody", {
          jid: "x@example.com",
          subscription: "none",
          ask: false,
          approved: false,
          groups: [],
        }),
        UnknownAccountError,
      );
      await assert.rejects(
        storage.roster.addPending("nobody", { from: "x@example.com", stanza: "<presence/>" }),
        UnknownAccountError,
      );
    } finally {
      await storage.close();
    }
  });

  it("deleting an account leaves no row behind in any table", async () => {
    const path = freshPath();
    const storage = await openStorage({ backend: "sqlite", path });
    await fillAccount(storage, "alice");
    await fillAccount(storage, "bob");
    await storage.accounts.delete("alice");
    await storage.close();

    const db = new Database(path, { readonly: true });
    try {
      for (const table of ACCOUNT_TABLES) {
        const column = table === "account_messages" ? "owner" : "username";
        const alice = db.prepare(`SELECT count(*) FROM ${table} WHERE ${column} = 'alice'`).pluck().get();
        const bob = db
          .prepare(`SELECT count(*) FROM ${table} WHERE ${column} = 'bob'`)
          .pluck()
          .get() as number;
        assert.equal(alice, 0, `${table} still holds alice's rows`);
        assert.ok(bob > 0, `${table} lost bob's rows`);
      }
    } finally {
      db.close();
    }
  });

  it("lets a second process write while the server holds the database open", async () => {
    const path = freshPath();
    const server = await openStorage({ backend: "sqlite", path });
    const cli = await openStorage({ backend: "sqlite", path });
    try {
      await cli.accounts.create("fromcli", credentials(1));
      assert.deepEqual((await server.accounts.get("fromcli"))?.credentials, credentials(1));

      // Another process holds the write lock for a while; our write must wait, not fail.
      const child = holdWriteLock(path, 400);
      await child.locked;
      const started = performance.now();
      assert.equal(await server.accounts.create("fromserver", []), true);
      const waited = performance.now() - started;
      assert.equal(await child.exitCode, 0);
      assert.ok(waited >= 200, `the write should have waited for the lock (waited ${waited.toFixed(0)} ms)`);
      assert.deepEqual(await server.accounts.list(), ["fromcli", "fromserver", "holder"]);
    } finally {
      await cli.close();
      await server.close();
    }
  });
});

describe("sqlite storage: migrations", () => {
  it("creates every table on a fresh database and records each migration", () => {
    const db = openDatabase(freshPathWithDir());
    try {
      const versions = db.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all();
      assert.deepEqual(
        versions,
        MIGRATIONS.map((m) => m.version),
      );
      const tables = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .pluck()
        .all() as string[];
      for (const table of [...ACCOUNT_TABLES, "schema_migrations"]) assert.ok(tables.includes(table), table);
    } finally {
      db.close();
    }
  });

  it("does nothing when reopening an up-to-date database and keeps its data", async () => {
    const path = freshPath();
    const first = await openStorage({ backend: "sqlite", path });
    await first.accounts.create("alice", credentials(1));
    await first.close();
    const appliedBefore = readMigrations(path);

    const second = await openStorage({ backend: "sqlite", path });
    try {
      assert.deepEqual(readMigrations(path), appliedBefore);
      assert.deepEqual((await second.accounts.get("alice"))?.credentials, credentials(1));
    } finally {
      await second.close();
    }
  });

  it("refuses a database whose schema is newer than the code", async () => {
    const path = freshPath();
    await (await openStorage({ backend: "sqlite", path })).close();
    const newer = MIGRATIONS.length + 1;
    const raw = new Database(path);
    raw
      .prepare("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, 'future', 0)")
      .run(newer);
    raw.close();

    await assert.rejects(openStorage({ backend: "sqlite", path }), (error: unknown) => {
      assert.ok(error instanceof SchemaTooNewError);
      assert.match(error.message, new RegExp(`schema version ${newer} is newer`));
      assert.equal(error.databaseVersion, newer);
      assert.equal(error.supportedVersion, MIGRATIONS.length);
      return true;
    });
    assert.equal(readMigrations(path).length, newer, "the database is left as it was");
  });

  it("applies only the migrations a database is missing", () => {
    const path = freshPathWithDir();
    const first: Migration = { version: 1, description: "one", up: (db) => db.exec("CREATE TABLE t1 (a)") };
    const second: Migration = { version: 2, description: "two", up: (db) => db.exec("CREATE TABLE t2 (b)") };
    const db = new Database(path);
    try {
      const told: string[] = [];
      const listener = (m: { version: number; description: string; upgrade: boolean }) =>
        told.push(`${m.version} ${m.description}${m.upgrade ? " (upgrade)" : ""}`);
      assert.equal(migrate(db, [first], listener), 1);
      assert.equal(migrate(db, [first, second], listener), 2);
      assert.equal(migrate(db, [first, second], listener), 2);
      assert.deepEqual(db.prepare("SELECT version FROM schema_migrations").pluck().all(), [1, 2]);
      assert.deepEqual(told, ["1 one", "2 two (upgrade)"], "each migration told once, as it is applied");
      assert.throws(() => migrate(db, [first]), SchemaTooNewError);
    } finally {
      db.close();
    }
  });

  it("rolls back a migration that fails halfway", () => {
    const path = freshPathWithDir();
    const first: Migration = { version: 1, description: "one", up: (db) => db.exec("CREATE TABLE t1 (a)") };
    const broken: Migration = {
      version: 2,
      description: "broken",
      up: (db) => {
        db.exec("CREATE TABLE t2 (b)");
        db.exec("INSERT INTO no_such_table VALUES (1)");
      },
    };
    const db = new Database(path);
    try {
      assert.throws(() => migrate(db, [first, broken]), /no such table/);
      assert.deepEqual(db.prepare("SELECT version FROM schema_migrations").pluck().all(), [1]);
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
      assert.ok(tables.includes("t1"));
      assert.ok(!tables.includes("t2"), "the half-applied migration left a table behind");
    } finally {
      db.close();
    }
  });

  it("rejects a migration list that is not numbered 1, 2, 3, …", () => {
    const db = new Database(":memory:");
    try {
      const m = (version: number): Migration => ({ version, description: `m${version}`, up: () => {} });
      assert.throws(() => migrate(db, [m(1), m(3)]), /expected 2/);
      assert.throws(() => migrate(db, [m(2)]), /expected 1/);
    } finally {
      db.close();
    }
  });
});

describe("sqlite storage: migration 6 (archive keys led by the id)", () => {
  it("keeps every archived row, its seq and the seq counter, and the key still refuses a duplicate", async () => {
    const path = freshPathWithDir();
    // A database as version 5 left it: two accounts' messages and a room's, the newest row deleted.
    const old = new Database(path);
    migrate(old, MIGRATIONS.slice(0, 5));
    const insert = (table: string, owner: string, id: string, seq: number) =>
      old
        .prepare(
          `INSERT INTO ${table} (seq, store, owner, id, peer, peer_resource, at, direction, stanza, text, folded)
           VALUES (?, 'mam', ?, ?, 'bob@localhost', 'phone', ?, 'in', ?, 'hi', 'hi')`,
        )
        .run(seq, owner, id, 1_700_000_000_000 + seq, `<message id='${id}'/>`);
    old.prepare("INSERT INTO accounts (username, created_at) VALUES ('alice', 0), ('carol', 0)").run();
    insert("account_messages", "alice", "a-1", 1);
    insert("account_messages", "carol", "c-1", 5);
    insert("account_messages", "alice", "a-2", 7);
    insert("account_messages", "alice", "a-3", 9);
    old.prepare("DELETE FROM account_messages WHERE seq = 9").run();
    insert("room_messages", "room@muc.localhost", "r-1", 3);
    const rowsBefore = old.prepare("SELECT * FROM account_messages ORDER BY seq").all();
    const roomBefore = old.prepare("SELECT * FROM room_messages ORDER BY seq").all();
    old.close();

    const storage = await openSqliteStorage({ path });
    try {
      const db = new Database(path, { readonly: true });
      try {
        assert.deepEqual(db.prepare("SELECT * FROM account_messages ORDER BY seq").all(), rowsBefore);
        assert.deepEqual(db.prepare("SELECT * FROM room_messages ORDER BY seq").all(), roomBefore);
        for (const table of ["account_messages", "room_messages"]) {
          const unique = (
            db.prepare(`PRAGMA index_list(${table})`).all() as { name: string; unique: number }[]
          )
            .filter((i) => i.unique === 1)
            .map((i) =>
              (db.prepare(`PRAGMA index_info(${i.name})`).all() as { name: string }[]).map((c) => c.name),
            );
          assert.deepEqual(unique, [["id", "store", "owner"]], table);
          const indexes = db
            .prepare(
              "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            )
            .pluck()
            .all(table);
          assert.equal(indexes.length, 3, `${table}: ${indexes.join(", ")}`);
        }
      } finally {
        db.close();
      }
      const archive = storage.messages("mam", { ownedByAccounts: true });
      // The deleted seq 9 is never handed out again, and the same (store, owner, id) is refused.
      const message = {
        owner: "alice",
        peer: "bob@localhost",
        peerResource: "",
        at: 1,
        direction: "out" as const,
      };
      assert.equal(await archive.append({ ...message, id: "a-4", stanza: "<message/>", text: "" }), true);
      assert.equal(
        await archive.append({ ...message, id: "a-2", stanza: "<message/>", text: "again" }),
        false,
      );
      const page = await archive.query({ owner: "alice" });
      assert.deepEqual(
        page.messages.map((m) => m.id),
        ["a-1", "a-2", "a-4"],
      );
      const raw = new Database(path, { readonly: true });
      try {
        assert.ok(
          (raw.prepare("SELECT seq FROM account_messages WHERE id = 'a-4'").pluck().get() as number) > 9,
          "a seq deleted before the migration was handed out again",
        );
      } finally {
        raw.close();
      }
      // Deleting an account still takes its messages with it (the foreign key survived the rebuild).
      await storage.accounts.delete("carol");
      assert.equal((await archive.query({ owner: "carol" })).messages.length, 0);
    } finally {
      await storage.close();
    }
  });
});

describe("sqlite storage: durability", () => {
  it("keeps everything written before close", async () => {
    const path = freshPathWithDir();
    const storedAt = 1_700_000_000_000;
    const first = await openSqliteStorage({ path, now: () => storedAt });
    await first.accounts.create("alice", credentials(7));
    await first.accounts.setDisabled("alice", true);
    const version = await first.roster.setItem("alice", {
      jid: "bob@example.com",
      name: "Bob",
      subscription: "both",
      ask: false,
      approved: true,
      groups: ["Friends", "Work"],
    });
    await first.roster.addPending("alice", {
      from: "carol@example.com",
      stanza: "<presence type='subscribe'/>",
    });
    await first.offline.push("alice", "<message><body>hi</body></message>", 10);
    await first.keyValue("vcard").set("alice", "", "<vCard xmlns='vcard-temp'/>");
    await first.blocklist.add("alice", ["spam@example.com"]);
    await first.close();
    assert.equal(existsSync(`${path}-wal`), false, "closing the only connection checkpoints the WAL");

    const second = await openStorage({ backend: "sqlite", path });
    try {
      assert.deepEqual(await second.accounts.get("alice"), {
        username: "alice",
        createdAt: storedAt,
        disabled: true,
        credentials: credentials(7),
      });
      assert.deepEqual(await second.roster.get("alice"), {
        version,
        items: [
          {
            jid: "bob@example.com",
            name: "Bob",
            subscription: "both",
            ask: false,
            approved: true,
            groups: ["Friends", "Work"],
          },
        ],
      });
      assert.deepEqual(await second.roster.getPending("alice"), [
        { from: "carol@example.com", stanza: "<presence type='subscribe'/>" },
      ]);
      const messages = await second.offline.list("alice");
      assert.deepEqual(
        messages.map((m) => [m.stanza, m.storedAt]),
        [["<message><body>hi</body></message>", storedAt]],
      );
      assert.equal(await second.keyValue("vcard").get("alice", ""), "<vCard xmlns='vcard-temp'/>");
      assert.deepEqual(await second.blocklist.list("alice"), ["spam@example.com"]);
    } finally {
      await second.close();
    }
  });
});

describe("sqlite storage: bulk import", () => {
  const COUNT = 10_000;
  let items: { username: string; credentials: ReturnType<typeof credentials> }[];

  before(() => {
    items = Array.from({ length: COUNT }, (_, i) => ({
      username: `user${String(i).padStart(5, "0")}`,
      credentials: credentials(i),
    }));
  });

  it(`createMany inserts ${COUNT} accounts in one transaction`, async (t) => {
    const storage = await openStorage({ backend: "sqlite", path: freshPath() });
    try {
      const started = performance.now();
      const created = await storage.accounts.createMany(items);
      const elapsed = performance.now() - started;
      t.diagnostic(`createMany: ${COUNT} accounts (2 credentials each) in ${elapsed.toFixed(0)} ms`);

      assert.equal(created, COUNT);
      assert.equal(await storage.accounts.count(), COUNT);
      assert.deepEqual((await storage.accounts.get("user04321"))?.credentials, credentials(4321));
      assert.equal(await storage.accounts.createMany(items), 0, "a repeated import creates nothing");
    } finally {
      await storage.close();
    }
  });
});

async function fillAccount(storage: Storage, username: string): Promise<void> {
  await storage.accounts.create(username, credentials(1));
  await storage.roster.setItem(username, {
    jid: "contact@example.com",
    subscription: "both",
    ask: false,
    approved: false,
    groups: ["G"],
  });
  await storage.roster.addPending(username, { from: "asker@example.com", stanza: "<presence/>" });
  await storage.offline.push(username, "<message/>", 10);
  await storage.keyValue("vcard").set(username, "", "<vCard/>");
  await storage.blocklist.add(username, ["spam@example.com"]);
  await storage.messages("mam", { ownedByAccounts: true }).append({
    id: "m1",
    owner: username,
    peer: "contact@example.com",
    peerResource: "",
    at: 1000,
    direction: "in",
    stanza: "<message/>",
    text: "",
  });
}

function readMigrations(path: string): unknown[] {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare("SELECT version, description, applied_at FROM schema_migrations ORDER BY version")
      .all();
  } finally {
    db.close();
  }
}

/**
 * Starts another process that takes the write lock, inserts an account named "holder", holds the
 * lock for holdMs and commits: what `switchboard user add` does while the server runs.
 */
function holdWriteLock(
  path: string,
  holdMs: number,
): { locked: Promise<void>; exitCode: Promise<number | null> } {
  const script = `
    const Database = require(process.argv[1]);
    const db = new Database(process.argv[2]);
    db.exec("BEGIN IMMEDIATE");
    db.prepare("INSERT INTO accounts (username, created_at) VALUES ('holder', 0)").run();
    process.stdout.write("locked\\n", () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.argv[3]));
      db.exec("COMMIT");
      db.close();
    });
  `;
  const modulePath = createRequire(import.meta.url).resolve("better-sqlite3");
  const child = spawn(process.execPath, ["-e", script, modulePath, path, String(holdMs)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("locked")) resolve();
    });
    child.once("exit", () => reject(new Error("lock holder exited before taking the lock")));
  });
  const exitCode = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { locked, exitCode };
}

/** Runs `work`, counting the turns of the event loop while it runs (a long synchronous write allows none). */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ n: T; turns: number }> {
  let turns = 0;
  let running = true;
  const turn = () => {
    turns++;
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  const n = await work();
  running = false;
  return { n, turns };
}

describe("sqlite: large archive removals", () => {
  it("prune and owner removal run in batches, letting other work run between them", async () => {
    const storage = await openSqliteStorage({ path: freshPathWithDir() });
    try {
      const rooms = storage.messages("muc", { ownedByAccounts: false });
      const rows = REMOVAL_BATCH_ROWS * 2 + 500;
      for (let i = 0; i < rows; i++)
        void rooms.append({
          id: `m${i}`,
          owner: i % 2 === 0 ? "a@conference.example" : "b@conference.example",
          peer: "x@conference.example",
          peerResource: "nick",
          at: 1000 + i,
          direction: "in",
          stanza: "<message/>",
          text: "",
        });
      // Keeps the newest 100 rows.
      const pruned = await turnsDuring(() => rooms.prune(1000 + rows - 100));
      assert.equal(pruned.n, rows - 100);
      assert.ok(pruned.turns >= 2, `the event loop turned ${pruned.turns} times during the prune`);
      const left = await rooms.query({ owner: "a@conference.example", limit: 1000 });
      assert.equal(left.messages.length, 50);
      assert.ok(left.messages.every((m) => m.at >= 1000 + rows - 100));

      for (let i = 0; i < REMOVAL_BATCH_ROWS + 10; i++)
        void rooms.append({
          id: `n${i}`,
          owner: "c@conference.example",
          peer: "x@conference.example",
          peerResource: "nick",
          at: 5_000_000 + i,
          direction: "in",
          stanza: "<message/>",
          text: "",
        });
      const removed = await turnsDuring(() => rooms.remove("c@conference.example"));
      assert.equal(removed.n, REMOVAL_BATCH_ROWS + 10);
      assert.ok(removed.turns >= 1);
      assert.equal((await rooms.query({ owner: "b@conference.example", limit: 1000 })).messages.length, 50);
    } finally {
      await storage.close();
    }
  });
});

describe("sqlite: schema", () => {
  it("every foreign key has an index led by its column, so a cascading delete does not scan the table", () => {
    const db = openDatabase(freshPathWithDir());
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .pluck()
        .all() as string[];
      const unindexed: string[] = [];
      for (const table of tables) {
        // A key's columns (several for a composite key) must lead some index, in any order.
        const keys = new Map<number, string[]>();
        for (const k of db.prepare(`PRAGMA foreign_key_list(${table})`).all() as {
          id: number;
          from: string;
        }[])
          keys.set(k.id, [...(keys.get(k.id) ?? []), k.from]);
        const indexes = (db.prepare(`PRAGMA index_list(${table})`).all() as { name: string }[]).map((i) =>
          (db.prepare(`PRAGMA index_info(${i.name})`).all() as { seqno: number; name: string }[])
            .sort((a, b) => a.seqno - b.seqno)
            .map((c) => c.name),
        );
        // A rowid table's INTEGER PRIMARY KEY is the table's own order.
        const pk = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; pk: number }[]).find(
          (c) => c.pk === 1,
        )?.name;
        if (pk !== undefined) indexes.push([pk]);
        for (const columns of keys.values()) {
          const led = indexes.some(
            (index) =>
              columns.length <= index.length &&
              columns.every((c) => index.slice(0, columns.length).includes(c)),
          );
          if (!led) unindexed.push(`${table}(${columns.join(", ")})`);
        }
      }
      assert.deepEqual(unindexed, []);
    } finally {
      db.close();
    }
  });
});

describe("sqlite: deleting an account with a long history", () => {
  it("removes its archive in batches, letting other work run between them, then the account", async () => {
    const storage = await openSqliteStorage({ path: freshPathWithDir() });
    try {
      await storage.accounts.create("alice", credentials(1));
      await storage.accounts.create("bob", credentials(2));
      const mam = storage.messages("mam", { ownedByAccounts: true });
      const append = (owner: string, i: number) =>
        void mam.append({
          id: `m${i}`,
          owner,
          peer: "x@example.org",
          peerResource: "",
          at: 1000 + i,
          direction: "in",
          stanza: "<message/>",
          text: "",
        });
      for (let i = 0; i < REMOVAL_BATCH_ROWS * 2 + 10; i++) append("alice", i);
      for (let i = 0; i < 10; i++) append("bob", i);
      await mam.query({ owner: "alice", limit: 1 });
      const { n: deleted, turns } = await turnsDuring(() => storage.accounts.delete("alice"));
      assert.equal(deleted, true);
      assert.ok(turns >= 2, `the event loop turned ${turns} times during the deletion`);
      assert.equal(await storage.accounts.exists("alice"), false);
      assert.equal((await mam.query({ owner: "alice", limit: 10 })).messages.length, 0);
      assert.equal((await mam.query({ owner: "bob", limit: 100 })).messages.length, 10);
    } finally {
      await storage.close();
    }
  });
});
