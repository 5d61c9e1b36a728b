/**
 * The PostgreSQL backend: the same conformance suite as SQLite, in a database created for this
 * run (a fresh schema per test) and dropped afterwards, then what only this backend has:
 * migrations under concurrent starts, prepared statements, the pool.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { ArchivedMessage, Storage } from "../../src/core/storage/types.js";
import { loadServerConfig } from "../../src/server/config.js";
import { SchemaTooNewError, UnknownAccountError } from "../../src/storage/errors.js";
import { openStorage, type StorageOptions, storageOptionsFrom } from "../../src/storage/index.js";
import type { MessageAppendLimits } from "../../src/storage/postgres/append-limits.js";
import { openPostgresStorage, type PostgresStorage } from "../../src/storage/postgres/index.js";
import type { PostgresMessageArchiveStore } from "../../src/storage/postgres/messages.js";
import { POSTGRES_MIGRATIONS, type PostgresMigration } from "../../src/storage/postgres/migrations.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { appendMetrics, flood, sleep } from "./append-backpressure.js";
import { credentials, runStorageConformance } from "./conformance.js";

const skip = await postgresSkip();
let database: TestDatabase | undefined;
let counter = 0;
const freshSchema = () => `t${++counter}`;

before(async () => {
  if (!skip) database = await createTestDatabase("storage");
});
after(async () => {
  await database?.drop();
});

const open = (
  schema: string,
  extra: { poolSize?: number; now?: () => number; messageAppends?: Partial<MessageAppendLimits> } = {},
) => openPostgresStorage({ url: database!.url, schema, ...extra });

let lastSchema = "";
runStorageConformance(
  "postgres",
  () => {
    lastSchema = freshSchema();
    return openStorage({ backend: "postgres", url: database!.url, schema: lastSchema });
  },
  { skip, openAnother: () => open(lastSchema) },
);

/** Runs SQL directly in one schema of the test database. */
async function raw<T extends object = Record<string, unknown>>(
  schema: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: database!.url, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    // Several statements in one text give one result each: the last one's rows.
    const result: pg.QueryResult<T> | pg.QueryResult<T>[] = await client.query<T>(text, values);
    return Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows;
  } finally {
    await client.end();
  }
}

const ACCOUNT_TABLES = [
  "accounts",
  "scram_credentials",
  "roster_items",
  "pending_subscriptions",
  "offline_messages",
  "key_values",
  "blocklist",
  "account_messages",
];

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

describe("postgres storage: behaviour beyond the interface", { skip }, () => {
  it("reports writes for unknown accounts as UnknownAccountError", async () => {
    const storage = await open(freshSchema());
    try {
      await assert.rejects(storage.keyValue("vcard").set("nobody", "k", "v"), UnknownAccountError);
      await assert.rejects(storage.offline.push("nobody", "<m/>", 5), UnknownAccountError);
      await assert.rejects(storage.blocklist.add("nobody", ["x@example.com"]), UnknownAccountError);
      await assert.rejects(storage.blocklist.add("nobody", []), UnknownAccountError);
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
    const schema = freshSchema();
    const storage = await open(schema);
    try {
      await fillAccount(storage, "alice");
      await fillAccount(storage, "bob");
      await storage.accounts.delete("alice");
    } finally {
      await storage.close();
    }
    for (const table of ACCOUNT_TABLES) {
      const column = table === "account_messages" ? "owner" : "username";
      const [counts] = await raw<{ alice: number; bob: number }>(
        schema,
        `SELECT count(*) FILTER (WHERE ${column} = 'alice')::int AS alice,
                count(*) FILTER (WHERE ${column} = 'bob')::int AS bob FROM ${table}`,
      );
      assert.equal(counts!.alice, 0, `${table} still holds alice's rows`);
      assert.ok(counts!.bob > 0, `${table} lost bob's rows`);
    }
  });

  it("runs every operation as a named prepared statement", async () => {
    const schema = freshSchema();
    // One connection, so every statement was prepared on the connection we look at.
    const storage = (await open(schema, { poolSize: 1 })) as PostgresStorage;
    try {
      await fillAccount(storage, "alice");
      await storage.accounts.get("alice");
      await storage.roster.get("alice");
      await storage.offline.list("alice");
      await storage.documents("d").update("k", () => 1);
      await storage.archive("a").query({ kind: "x", afterId: 0 });
      await storage.messages("mam", { ownedByAccounts: true }).query({ owner: "alice", text: "x", limit: 5 });
      const prepared = await storage.database.withConnection(
        async (c) =>
          (await c.query<{ name: string }>("SELECT name FROM pg_prepared_statements ORDER BY name")).rows,
      );
      const names = prepared.map((p) => p.name);
      for (const name of [
        "accounts.create",
        "accounts.get",
        "roster.set-item",
        "roster.get",
        "roster.upsert-pending",
        "offline.lock-account",
        "offline.insert-under-quota",
        "offline.list",
        "kv.set",
        "blocklist.add",
        "documents.select-for-update",
        "documents.insert-new",
        "archive.query:10001:ASC",
        "account_messages.append",
        "account_messages.query:000001:00:ASC",
      ]) {
        assert.ok(names.includes(name), `${name} is not prepared (prepared: ${names.join(", ")})`);
      }
    } finally {
      await storage.close();
    }
  });

  it("keeps created_at and stored_at from the injected clock, as numbers", async () => {
    const storedAt = 1_700_000_000_123;
    const storage = await open(freshSchema(), { now: () => storedAt });
    try {
      await storage.accounts.create("alice", credentials(7));
      await storage.offline.push("alice", "<message/>", 10);
      assert.equal((await storage.accounts.get("alice"))?.createdAt, storedAt);
      assert.deepEqual(
        (await storage.offline.list("alice")).map((m) => m.storedAt),
        [storedAt],
      );
    } finally {
      await storage.close();
    }
  });

  it("an unreachable server fails at open with the URL, never the password", async () => {
    await assert.rejects(
      openPostgresStorage({ url: "postgres://someone:s3cret@127.0.0.1:1/nowhere", connectTimeoutMs: 2_000 }),
      (error: Error) => {
        assert.match(
          error.message,
          /cannot use the PostgreSQL database at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere/,
        );
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      },
    );
  });
});

describe("postgres storage: migrations", { skip }, () => {
  async function applied(schema: string): Promise<{ version: number; applied_at: string }[]> {
    return raw(schema, "SELECT version, applied_at::text FROM schema_migrations ORDER BY version");
  }

  it("creates every table on a fresh schema and records each migration", async () => {
    const schema = freshSchema();
    await (await open(schema)).close();
    assert.deepEqual(
      (await applied(schema)).map((r) => r.version),
      POSTGRES_MIGRATIONS.map((m) => m.version),
    );
    const tables = (
      await raw<{ table_name: string }>(
        schema,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
        [schema],
      )
    ).map((r) => r.table_name);
    for (const table of [...ACCOUNT_TABLES, "room_messages", "documents", "archive", "schema_migrations"]) {
      assert.ok(tables.includes(table), table);
    }
  });

  it("does nothing when reopening an up-to-date schema and keeps its data", async () => {
    const schema = freshSchema();
    const first = await open(schema);
    await first.accounts.create("alice", credentials(1));
    await first.close();
    const before = await applied(schema);
    const second = await open(schema);
    try {
      assert.deepEqual(await applied(schema), before);
      assert.deepEqual((await second.accounts.get("alice"))?.credentials, credentials(1));
    } finally {
      await second.close();
    }
  });

  it("tells its listener of each migration it applies, and whether the schema was being upgraded", async () => {
    const schema = freshSchema();
    const told: string[] = [];
    const listener = (m: { version: number; upgrade: boolean }) =>
      told.push(`${m.version}${m.upgrade ? "u" : ""}`);
    const older = await openPostgresStorage({
      url: database!.url,
      schema,
      migrations: POSTGRES_MIGRATIONS.slice(0, 3),
      onMigration: listener,
    });
    await older.close();
    const current = await openPostgresStorage({ url: database!.url, schema, onMigration: listener });
    await current.close();
    const again = await openPostgresStorage({ url: database!.url, schema, onMigration: listener });
    await again.close();
    assert.deepEqual(told, ["1", "2", "3", ...POSTGRES_MIGRATIONS.slice(3).map((m) => `${m.version}u`)]);
  });

  it("lets several processes start on a fresh schema at once: one migrates, the others wait", async () => {
    const schema = freshSchema();
    const opened = await Promise.all(Array.from({ length: 4 }, () => open(schema)));
    try {
      assert.equal((await applied(schema)).length, POSTGRES_MIGRATIONS.length);
      await opened[0]!.accounts.create("alice", []);
      for (const s of opened) assert.equal(await s.accounts.exists("alice"), true);
    } finally {
      for (const s of opened) await s.close();
    }
  });

  it("refuses a schema that is newer than the code, and leaves it as it was", async () => {
    const schema = freshSchema();
    await (await open(schema)).close();
    const newer = POSTGRES_MIGRATIONS.length + 1;
    await raw(schema, "INSERT INTO schema_migrations VALUES ($1, 'future', 0)", [newer]);
    await assert.rejects(open(schema), (error: unknown) => {
      assert.ok(error instanceof SchemaTooNewError);
      assert.equal(error.databaseVersion, newer);
      assert.equal(error.supportedVersion, POSTGRES_MIGRATIONS.length);
      return true;
    });
    assert.equal((await applied(schema)).length, newer);
  });

  it("applies only what is missing and rolls back a migration that fails halfway", async () => {
    const schema = freshSchema();
    const first: PostgresMigration = {
      version: 1,
      description: "one",
      up: async (run) => {
        await run("CREATE TABLE t1 (a int)");
      },
    };
    const broken: PostgresMigration = {
      version: 2,
      description: "broken",
      up: async (run) => {
        await run("CREATE TABLE t2 (b int)");
        await run("INSERT INTO no_such_table VALUES (1)");
      },
    };
    await (await openPostgresStorage({ url: database!.url, schema, migrations: [first] })).close();
    await assert.rejects(
      openPostgresStorage({ url: database!.url, schema, migrations: [first, broken] }),
      /no_such_table/,
    );
    assert.deepEqual(
      (await applied(schema)).map((r) => r.version),
      [1],
    );
    const tables = (
      await raw<{ table_name: string }>(
        schema,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
        [schema],
      )
    ).map((r) => r.table_name);
    assert.ok(tables.includes("t1"));
    assert.ok(!tables.includes("t2"), "the half-applied migration left a table behind");
    await assert.rejects(
      openPostgresStorage({ url: database!.url, schema, migrations: [{ ...first, version: 2 }] }),
      /expected 1/,
    );
  });
});

describe("postgres storage: bulk import", { skip }, () => {
  const COUNT = 10_000;

  it(`createMany inserts ${COUNT} accounts in one transaction`, async (t) => {
    const items = Array.from({ length: COUNT }, (_, i) => ({
      username: `user${String(i).padStart(5, "0")}`,
      credentials: credentials(i),
    }));
    const storage = await open(freshSchema());
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

describe("postgres storage: message archive text search", { skip }, () => {
  it("serves a contains-search of the folded text from the trigram index when pg_trgm is there", async () => {
    const schema = freshSchema();
    const storage = await open(schema);
    try {
      const mam = storage.messages("mam", { ownedByAccounts: true });
      await storage.accounts.create("alice", []);
      for (let i = 0; i < 300; i++) {
        await mam.append({
          id: `m${i}`,
          owner: "alice",
          peer: "bob@example.com",
          peerResource: "",
          at: i,
          direction: "in",
          stanza: "<message/>",
          text: i === 123 ? "Treffen in Köln um 5" : `message number ${i}`,
        });
      }
      const found = await mam.query({ owner: "alice", text: "KÖLN UM" });
      assert.deepEqual(
        found.messages.map((m) => m.id),
        ["m123"],
      );
      const [extension] = await raw(schema, "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'");
      if (!extension) return; // no pg_trgm on this server: the search scans (and is still right)
      const plan = (
        await raw<{ "QUERY PLAN": string }>(
          schema,
          `SET enable_seqscan = off; EXPLAIN SELECT id FROM account_messages WHERE folded LIKE '%köln um%'`,
        )
      )
        .map((r) => r["QUERY PLAN"])
        .join("\n");
      assert.match(plan, /account_messages_text/, plan);
    } finally {
      await storage.close();
    }
  });
});

describe("postgres storage: batched message archive appends", { skip }, () => {
  const message = (owner: string, id: string, at: number, extra: Partial<ArchivedMessage> = {}) => ({
    id,
    owner,
    peer: "peer@example.com",
    peerResource: "",
    at,
    direction: "in" as const,
    stanza: `<message id='${id}'><body>${id}</body></message>`,
    text: id,
    ...extra,
  });
  const mamOf = (storage: Storage) =>
    storage.messages("mam", { ownedByAccounts: true }) as PostgresMessageArchiveStore;
  const owners = (n: number) => Array.from({ length: n }, (_, i) => `u${i}`);
  const createAccounts = (storage: Storage, names: string[]) =>
    storage.accounts.createMany(names.map((username) => ({ username, credentials: [] })));
  /** Every id of an owner's archive, in archive order. */
  const archived = async (mam: PostgresMessageArchiveStore, owner: string) =>
    (await mam.query({ owner })).messages.map((m) => m.id);

  it("answers each of many concurrent appends and keeps every owner's append order", async () => {
    const storage = await open(freshSchema(), { messageAppends: { batchRows: 20, inFlight: 2 } });
    try {
      const names = owners(40);
      await createAccounts(storage, names);
      const mam = mamOf(storage);
      assert.equal(await mam.append(message("u3", "stored", 0)), true);
      const expectedResult: boolean[] = [];
      const expectedOrder = new Map<string, string[]>(names.map((n) => [n, []]));
      expectedOrder.get("u3")!.push("stored");
      const writes: Promise<boolean>[] = [];
      for (let i = 0; i < 2_000; i++) {
        const owner = names[(i * 7) % names.length]!;
        const seen = expectedOrder.get(owner)!;
        // Every ninth append repeats an id its owner already has: a duplicate, refused.
        const repeat = i % 9 === 8 && seen.length > 0;
        const id = repeat ? seen[i % seen.length]! : `m${i}`;
        if (!repeat) seen.push(id);
        expectedResult.push(!repeat);
        // Times going backwards: the order is the calls', not the times'.
        writes.push(mam.append(message(owner, id, 1_000_000 - i)));
      }
      writes.push(mam.append(message("u3", "stored", 1)));
      expectedResult.push(false);
      assert.deepEqual(await Promise.all(writes), expectedResult);
      for (const owner of names)
        assert.deepEqual(await archived(mam, owner), expectedOrder.get(owner), owner);
      const stats = mam.appendStats;
      assert.equal(stats.peakRunning, 2, "two writes ran at once, for different owners");
      assert.equal(stats.largestBatch, 20, "rows went in batches of up to batchRows");
      assert.ok(stats.batches < 2_000 / 10, `${stats.batches} writes for 2,001 rows`);
      assert.deepEqual([stats.queuedRows, stats.queuedBytes, stats.running], [0, 0, 0]);

      // One owner's rows are never in two writes at once: one write after the other.
      const solo = storage.messages("solo", { ownedByAccounts: true }) as PostgresMessageArchiveStore;
      const soloIds = Array.from({ length: 200 }, (_, i) => `s${i}`);
      assert.deepEqual(
        await Promise.all(soloIds.map((id, i) => solo.append(message("u0", id, -i)))),
        Array(200).fill(true),
      );
      assert.deepEqual(await archived(solo, "u0"), soloIds);
      assert.deepEqual([solo.appendStats.peakRunning, solo.appendStats.batches], [1, 10]);

      // An id repeated within one turn: the second is a duplicate even when both wait together.
      assert.deepEqual(
        await Promise.all([
          solo.append(message("u1", "twice", 1)),
          solo.append(message("u1", "twice", 2)),
          solo.append(message("u1", "after", 3)),
        ]),
        [true, false, true],
      );
      assert.deepEqual(await archived(solo, "u1"), ["twice", "after"]);
    } finally {
      await storage.close();
    }
  });

  it("refuses only the row of a missing account (or a refused value) in a batch; the others are stored", async () => {
    const storage = await open(freshSchema());
    try {
      await createAccounts(storage, ["alice", "bob"]);
      const mam = mamOf(storage);
      const results = await Promise.allSettled([
        mam.append(message("alice", "a1", 1)),
        mam.append(message("nobody", "n1", 2)),
        mam.append(message("bob", "b1", 3)),
        mam.append(message("alice", "a2", 4)),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "rejected", "fulfilled", "fulfilled"],
      );
      const refused = results[1] as PromiseRejectedResult;
      assert.ok(refused.reason instanceof UnknownAccountError, String(refused.reason));
      assert.equal(refused.reason.username, "nobody");
      assert.deepEqual(
        results.filter((r) => r.status === "fulfilled").map((r) => r.value),
        [true, true, true],
      );
      assert.deepEqual(await archived(mam, "alice"), ["a1", "a2"]);
      assert.deepEqual(await archived(mam, "bob"), ["b1"]);
      assert.deepEqual(
        [mam.appendStats.batches, mam.appendStats.rowByRow],
        [1, 1],
        "one batch, then row by row",
      );
      assert.equal(await mam.append(message("alice", "a3", 5)), true);
      assert.deepEqual(
        [mam.appendStats.batches, mam.appendStats.rowByRow],
        [2, 1],
        "the next batch is whole",
      );

      const rooms = storage.messages("muc", { ownedByAccounts: false }) as PostgresMessageArchiveStore;
      const room = "room@conference.example.com";
      const roomResults = await Promise.allSettled([
        rooms.append(message(room, "r1", 1)),
        rooms.append(message(room, "r2", 2, { direction: "sideways" as "in" })),
        rooms.append(message(room, "r3", 3)),
      ]);
      assert.deepEqual(
        roomResults.map((r) => r.status),
        ["fulfilled", "rejected", "fulfilled"],
      );
      assert.match(String((roomResults[1] as PromiseRejectedResult).reason), /check constraint/);
      assert.deepEqual(await archived(rooms, room), ["r1", "r3"]);
    } finally {
      await storage.close();
    }
  });

  it("takes a flood larger than its bound without losing a row, never holding more than the bound", async () => {
    const queueRows = 100;
    const queueBytes = 64 * 1024;
    const storage = await open(freshSchema(), { messageAppends: { batchRows: 25, queueRows, queueBytes } });
    try {
      const names = owners(10);
      await createAccounts(storage, names);
      const mam = mamOf(storage);
      const body = "x".repeat(1_000);
      const count = 3_000;
      const writes = Array.from({ length: count }, (_, i) =>
        mam.append(message(names[i % names.length]!, `f${i}`, i, { text: body })),
      );
      const atOnce = mam.appendStats;
      assert.ok(atOnce.queuedBytes <= queueBytes && atOnce.queuedRows <= queueRows, JSON.stringify(atOnce));
      assert.equal(atOnce.waitingForRoom, count - atOnce.queuedRows, "the rest wait for room");
      // Sampled while the flood drains: the bound holds throughout, not only at the end.
      let samples = 0;
      const sampler = setInterval(() => {
        const now = mam.appendStats;
        samples++;
        assert.ok(now.queuedRows <= queueRows && now.queuedBytes <= queueBytes, JSON.stringify(now));
      }, 1);
      const counted = mam.count({ owner: "u0" }); // made after the flood: it sees all of it
      try {
        assert.deepEqual(await Promise.all(writes), Array(count).fill(true));
      } finally {
        clearInterval(sampler);
      }
      assert.equal(await counted, count / names.length);
      const stats = mam.appendStats;
      assert.ok(stats.peakQueuedBytes <= queueBytes, `peak ${stats.peakQueuedBytes} bytes`);
      assert.ok(stats.peakQueuedRows <= queueRows, `peak ${stats.peakQueuedRows} rows`);
      assert.ok(stats.peakQueuedBytes > queueBytes - 2_500, "the bytes bound was reached");
      assert.equal(stats.waitingForRoom, 0);
      assert.ok(samples > 0);
      for (const owner of names) {
        const ids = await archived(mam, owner);
        const expected = Array.from({ length: count }, (_, i) => i)
          .filter((i) => names[i % names.length] === owner)
          .map((i) => `f${i}`);
        assert.deepEqual(ids, expected, owner);
      }
    } finally {
      await storage.close();
    }
  });

  it("writes a flood of appends with at most inFlight connections of a larger pool", async () => {
    const schema = freshSchema();
    const storage = await open(schema, { poolSize: 10, messageAppends: { batchRows: 10, inFlight: 2 } });
    try {
      const names = owners(50);
      await createAccounts(storage, names);
      const mam = mamOf(storage);
      const writes = Array.from({ length: 1_000 }, (_, i) =>
        mam.append(message(names[i % names.length]!, `p${i}`, i)),
      );
      assert.deepEqual(await Promise.all(writes), Array(1_000).fill(true));
      const [row] = await raw<{ n: number }>(
        schema,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'switchboard'",
      );
      assert.ok(row!.n <= 2, `the appends opened ${row!.n} connections`);
    } finally {
      await storage.close();
    }
  });

  it("makes appends wait for room while the database is slow, then writes them all, in order", async () => {
    const schema = freshSchema();
    const queueRows = 20;
    const storage = await open(schema, { messageAppends: { batchRows: 5, queueRows } });
    const metric = appendMetrics(storage);
    // Another connection holds a lock that every insert into the table waits for: a
    // database slower than any flood, until it lets go.
    const blocker = new pg.Client({ connectionString: database!.url, options: `-c search_path=${schema}` });
    await blocker.connect();
    let blocking = false;
    try {
      const names = owners(4);
      await createAccounts(storage, names);
      const mam = mamOf(storage);
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE account_messages IN SHARE MODE");
      blocking = true;
      const perSender = 150;
      const f = flood(mam, names, perSender);
      await sleep(500);
      const held = mam.appendStats;
      // Each sender makes at most one append past the bound before it is told to wait.
      assert.ok(
        f.count() <= queueRows + names.length,
        `${f.count()} appends made while the database was held`,
      );
      assert.ok(held.queuedRows <= queueRows, JSON.stringify(held));
      assert.ok(held.waitingForRoom <= names.length, JSON.stringify(held));
      assert.equal(held.callersWaiting, names.length, "every sender waits");
      assert.equal(metric("switchboard_archive_append_queued_rows", "mam"), held.queuedRows);
      assert.equal(metric("switchboard_archive_append_waiting", "mam"), held.waitingForRoom);
      assert.equal(metric("switchboard_archive_append_callers_waiting", "mam"), names.length);
      assert.equal(metric("switchboard_archive_append_batches_total", "mam"), 0);

      await blocker.query("COMMIT");
      blocking = false;
      await f.done;
      assert.deepEqual(await Promise.all(f.writes), Array(names.length * perSender).fill(true));
      for (const owner of names) assert.deepEqual(await archived(mam, owner), f.sent.get(owner), owner);
      const after = mam.appendStats;
      assert.ok(after.peakQueuedRows <= queueRows, `peak ${after.peakQueuedRows} rows`);
      assert.deepEqual([after.queuedRows, after.waitingForRoom, after.callersWaiting], [0, 0, 0]);
      assert.equal(metric("switchboard_archive_append_callers_waiting", "mam"), 0);
      assert.equal(metric("switchboard_archive_append_batches_total", "mam"), after.batches);
      assert.ok(after.batches >= (names.length * perSender) / 5, `${after.batches} batches`);
    } finally {
      if (blocking) await blocker.query("ROLLBACK");
      await blocker.end();
      await storage.close();
    }
  });

  it("closing writes the appends still waiting", async () => {
    const schema = freshSchema();
    const storage = await open(schema);
    await createAccounts(storage, ["alice"]);
    const writes = Array.from({ length: 50 }, (_, i) => mamOf(storage).append(message("alice", `c${i}`, i)));
    await storage.close();
    assert.deepEqual(await Promise.all(writes), Array(50).fill(true));
    const [row] = await raw<{ n: number }>(schema, "SELECT count(*)::int AS n FROM account_messages");
    assert.equal(row!.n, 50);
  });

  it("takes its queue bounds from storage.archiveQueueRows and storage.archiveQueueBytes", async () => {
    const schema = freshSchema();
    const body = "x".repeat(1_000);
    // Rows of about 2,100 bytes (the text, and its folded form for search): the first bound
    // holds 3 of them, the second 2.
    for (const [bound, queued] of [
      [{ archiveQueueRows: 3 }, 3] as const,
      [{ archiveQueueBytes: 5_000 }, 2] as const,
    ]) {
      const config = loadServerConfig({ overrides: { storage: { url: database!.url, ...bound } } });
      const opts = storageOptionsFrom(config);
      assert.equal(opts.backend, "postgres");
      const storage = await openStorage({ ...opts, schema } as StorageOptions);
      const blocker = new pg.Client({ connectionString: database!.url, options: `-c search_path=${schema}` });
      await blocker.connect();
      let blocking = false;
      try {
        const names = owners(3);
        await createAccounts(storage, names); // the second round finds them there
        const mam = mamOf(storage);
        // Every insert into the table waits for this lock: the rows taken stay in the queue.
        await blocker.query("BEGIN");
        await blocker.query("LOCK TABLE account_messages IN SHARE MODE");
        blocking = true;
        const round = JSON.stringify(bound);
        const writes = names.map((owner) => mam.append(message(owner, `q${round}`, 1, { text: body })));
        const extra = mam.append(message("u0", `extra${round}`, 2, { text: body }));
        const held = mam.appendStats;
        assert.equal(held.queuedRows, queued, round);
        assert.equal(held.waitingForRoom, names.length + 1 - queued, round);
        const room = mam.roomToAppend();
        assert.ok(room !== undefined, `${round}: the queue reports it is full`);
        let roomMade = false;
        void room.then(() => {
          roomMade = true;
        });
        await sleep(100);
        assert.equal(roomMade, false, `${round}: a caller waits while the database holds the rows`);

        await blocker.query("COMMIT");
        blocking = false;
        await room;
        assert.deepEqual(await Promise.all([...writes, extra]), [true, true, true, true]);
        assert.equal(mam.roomToAppend(), undefined);
      } finally {
        if (blocking) await blocker.query("ROLLBACK");
        await blocker.end();
        await storage.close();
      }
    }
  });
});

describe("postgres: schema", { skip }, () => {
  it("the message archives' only unique key besides seq is led by the id (time-ordered ids append at its end)", async () => {
    const schema = freshSchema();
    const storage = await open(schema);
    try {
      const keys = await raw<{ key: string }>(
        schema,
        `SELECT i.indrelid::regclass::text || ' ' || pg_get_indexdef(i.indexrelid) AS key
           FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
          WHERE i.indisunique AND NOT i.indisprimary AND t.relnamespace = $1::regnamespace
            AND t.relname IN ('account_messages', 'room_messages')
          ORDER BY 1`,
        [schema],
      );
      assert.deepEqual(
        keys.map((k) => k.key.replace(/ ON \S+ USING/, " USING").replace(/^\S+\./, "")),
        [
          "account_messages CREATE UNIQUE INDEX account_messages_by_id USING btree (id, store, owner)",
          "room_messages CREATE UNIQUE INDEX room_messages_by_id USING btree (id, store, owner)",
        ],
      );
    } finally {
      await storage.close();
    }
  });

  it("every foreign key has an index led by its column, so a cascading delete does not scan the table", async () => {
    const schema = freshSchema();
    const storage = await open(schema);
    try {
      const unindexed = await raw<{ key: string }>(
        schema,
        `SELECT c.conrelid::regclass::text || '.' || a.attname AS key
           FROM pg_constraint c
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])`,
        [schema],
      );
      assert.deepEqual(
        unindexed.map((r) => r.key),
        [],
      );
    } finally {
      await storage.close();
    }
  });
});
