/**
 * The PostgreSQL backend: the same conformance suite as SQLite, in a database created for this
 * run (a fresh schema per test) and dropped afterwards, then what only this backend has:
 * migrations under concurrent starts, prepared statements, the pool.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Storage } from "../../src/core/storage/types.js";
import { SchemaTooNewError, UnknownAccountError } from "../../src/storage/errors.js";
import { openStorage } from "../../src/storage/index.js";
import { openPostgresStorage, type PostgresStorage } from "../../src/storage/postgres/index.js";
import { POSTGRES_MIGRATIONS, type PostgresMigration } from "../../src/storage/postgres/migrations.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
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

const open = (schema: string, extra: { poolSize?: number; now?: () => number } = {}) =>
  openPostgresStorage({ url: database!.url, schema, ...extra });

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
