/**
 * The server on PostgreSQL when the database drops its connections, as a PostgreSQL restart
 * does: every backend of the test database is ended with pg_terminate_backend (the shared
 * PostgreSQL server, used by other databases, keeps running). The server recovers by itself:
 * logins, offline storage and delivery work again at once, and nothing it had acknowledged
 * (a message stored offline before the fault) is lost.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { is, NS, xml } from "../helpers/stanza.js";

const PW = "postgres-faults-pw";
const skip = await postgresSkip();

describe("PostgreSQL connections ended under a running server", { skip }, () => {
  let database: TestDatabase;
  let server: TestServer;
  const closers: { close(): Promise<void> }[] = [];

  before(async () => {
    database = await createTestDatabase("pg_faults");
    server = await startServer({ name: "postgres-faults", storage: database.url });
    for (const user of ["alice", "bob", "carol"]) await server.addUser(user, PW);
  });
  after(async () => {
    for (const c of closers) await c.close().catch(() => undefined);
    await server?.stop();
    await database?.drop();
  });

  test("the server recovers by itself, and what it stored before is there", async () => {
    const alice = await connectJs(server, { user: "alice", password: PW, resource: "desk" });
    closers.push(alice);
    await alice.send(xml("message", { to: "bob@localhost", type: "chat" }, xml("body", {}, "stored before")));
    await alice.sync();

    const ended = await database.terminateConnections();
    assert.ok(ended > 0, "the server's pool had connections to end");

    // A login reads the account from the database: the pool opens new connections by itself.
    const started = Date.now();
    const bob = await connectJs(server, { user: "bob", password: PW, resource: "phone" });
    closers.push(bob);
    const recoveredMs = Date.now() - started;
    await bob.send(xml("presence"));
    const m = await bob.next(is.message({ body: "stored before" }), "the message stored before the fault");
    assert.ok(m.getChild("delay", NS.delay), "from offline storage");

    // Writes work again: a message for an offline account is stored and delivered later.
    await alice.send(
      xml("message", { to: "carol@localhost", type: "chat" }, xml("body", {}, "stored after")),
    );
    await alice.sync();
    await database.terminateConnections();
    const carol = await connectJs(server, { user: "carol", password: PW, resource: "web" });
    closers.push(carol);
    await carol.send(xml("presence"));
    await carol.next(is.message({ body: "stored after" }), "the message stored after the first fault");
    // Live chat never needed the database.
    await bob.send(xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, "live")));
    await alice.next(is.message({ body: "live" }), "a live message");
    assert.ok(recoveredMs < 10_000, `logins work again within seconds (${recoveredMs} ms)`);
  });
});
