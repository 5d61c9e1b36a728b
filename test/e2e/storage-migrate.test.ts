/**
 * Moving a server from SQLite to PostgreSQL as an operator does: accounts made with the CLI
 * and data made by a real client on the SQLite server, `switchboard storage migrate`, then the
 * server started with `--storage postgres://…` on a new, empty data directory, where the same
 * client finds its roster (same version), its contact's vCard, and the contact receives the
 * offline messages and the subscription request that waited for it.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { rosterGet, rosterSet } from "../helpers/roster.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { is, NS, newId, rosterItem, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-migrate-pw", bob: "bob-migrate-pw", carol: "carol-migrate-pw" };
const BOB = "bob@localhost";
const ALICE = "alice@localhost";
const BODIES = ["first, while you were away", "second, in order"];

const skip = await postgresSkip();

describe("storage migrate: from SQLite to PostgreSQL, then serving from PostgreSQL", { skip }, () => {
  let database: TestDatabase;
  let onSqlite: TestServer;
  let onPostgres: TestServer | undefined;
  let sqliteFile: string;
  /** alice's roster version on SQLite. */
  let version: string;
  const peers: JsPeer[] = [];

  before(async () => {
    database = await createTestDatabase("e2e_migrate");
    onSqlite = await startServer({ name: "storage-migrate-sqlite", users: PW });
    sqliteFile = path.join(onSqlite.dataDir, "switchboard.sqlite");
    const alice = await connectJs(onSqlite, { user: "alice", password: PW.alice, resource: "laptop" });
    peers.push(alice);
    await alice.send(xml("presence"));
    const set = await rosterSet(alice, BOB, { name: "Bob", groups: ["Friends", "Work"] });
    assert.equal(set.attrs.type, "result", set.toString());
    await alice.send(xml("presence", { to: BOB, type: "subscribe" }));
    const vcard = await alice.iq(
      xml("iq", { type: "set" }, xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Alice Liddell"))),
    );
    assert.equal(vcard.attrs.type, "result", vcard.toString());
    for (const body of BODIES) {
      await alice.send(xml("message", { to: BOB, type: "chat", id: newId("m") }, xml("body", {}, body)));
    }
    await alice.sync();
    const roster = await rosterGet(alice, "");
    version = roster.getChild("query", NS.roster)!.attrs.ver!;
    assert.ok(
      rosterItem(roster, BOB)?.attrs.ask === "subscribe",
      `no pending subscription to bob: ${roster}`,
    );
    await alice.close();
    await onSqlite.stop({ keepData: true });
  });

  after(async () => {
    for (const p of peers) await p.close();
    if (onPostgres?.running) await onPostgres.stop();
    onSqlite?.kill();
    await database?.drop();
  });

  test("the CLI copies every store and verifies the counts; a second copy is refused", async () => {
    const args = ["storage", "migrate", "--from", `sqlite:${sqliteFile}`, "--to", database.url];
    const out = await runCli(args, onSqlite.logFile);
    assert.match(out, /^copied sqlite:.*switchboard\.sqlite to postgres:\/\//m);
    const verified = out.split("\n").find((line) => line.startsWith("verified: ")) ?? "";
    for (const part of [
      "3 accounts",
      "6 SCRAM credentials",
      "1 roster items",
      "1 pending subscriptions",
      "2 offline messages",
      "vcard 1",
    ]) {
      assert.ok(verified.includes(part), `"${part}" missing from the report: ${out}`);
    }
    await assert.rejects(runCli(args, onSqlite.logFile), /the target storage is not empty.*--replace/s);
  });

  test("a server on PostgreSQL, in an empty data directory, serves the migrated data", async () => {
    onPostgres = await startServer({ name: "storage-migrate-postgres", storage: database.url });
    const bob = await connectJs(onPostgres, { user: "bob", password: PW.bob, resource: "phone" });
    peers.push(bob);
    await bob.send(xml("presence"));
    const request = await bob.next(
      is.presence({ fromBare: ALICE, type: "subscribe" }),
      "alice's subscription request",
    );
    assert.equal(request.attrs.to, BOB);
    for (const body of BODIES) {
      const message = await bob.next(is.message({ body }), `offline message "${body}"`);
      assert.ok(message.getChild("delay", NS.delay), `no delay stamp: ${message}`);
    }
    const card = await bob.iq(xml("iq", { type: "get", to: ALICE }, xml("vCard", { xmlns: NS.vcard })));
    assert.equal(card.getChild("vCard", NS.vcard)?.getChildText("FN"), "Alice Liddell");

    const alice = await connectJs(onPostgres, { user: "alice", password: PW.alice, resource: "laptop" });
    peers.push(alice);
    const unchanged = await rosterGet(alice, version);
    assert.equal(unchanged.attrs.type, "result", unchanged.toString());
    assert.equal(unchanged.getChild("query"), undefined, `the version changed in the copy: ${unchanged}`);
    const roster = await rosterGet(alice, "");
    const item = rosterItem(roster, BOB);
    assert.equal(item?.attrs.name, "Bob");
    assert.deepEqual(
      item?.getChildren("group").map((g) => g.text()),
      ["Friends", "Work"],
    );
    assert.equal(roster.getChild("query", NS.roster)?.attrs.ver, version);
  });

  test("admin commands with --storage act on the same database as the running server", async () => {
    assert.ok(onPostgres, "the server on PostgreSQL did not start");
    await onPostgres.addUser("dave", "dave-migrate-pw");
    const list = JSON.parse(
      await runCli(["user", "list", "--json", ...onPostgres.storageArgs()], onPostgres.logFile),
    );
    assert.deepEqual(list.accounts, ["alice", "bob", "carol", "dave"]);
    const dave = await connectJs(onPostgres, { user: "dave", password: "dave-migrate-pw", resource: "cli" });
    peers.push(dave);
    assert.equal(dave.jid, "dave@localhost/cli");
  });
});
