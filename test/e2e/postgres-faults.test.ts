/**
 * The server on PostgreSQL when the database drops its connections, as a PostgreSQL restart
 * does: every backend of the test database is ended with pg_terminate_backend (the shared
 * PostgreSQL server, used by other databases, keeps running). The server recovers by itself:
 * logins, offline storage and delivery work again at once, and nothing it had acknowledged
 * (a message stored offline before the fault) is lost.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { metricValues } from "../helpers/federation.js";
import { connectJs } from "../helpers/js-client.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
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

/** A TCP relay to PostgreSQL that the test can cut (the database host gone from the network) and restore. */
class CuttableRelay {
  #server: net.Server | undefined;
  readonly #sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server.listen({ port: this.port, host: "127.0.0.1" }, r));
    this.#server = server;
  }

  /** Refuses new connections and breaks the open ones. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}

describe("PostgreSQL unreachable under a running server", { skip }, () => {
  let database: TestDatabase;
  let server: TestServer;
  let relay: CuttableRelay;
  let httpPort: number;
  const closers: { close(): Promise<void> }[] = [];

  before(async () => {
    database = await createTestDatabase("pg_unreachable");
    const direct = new URL(database.url);
    const [relayPort, http] = (await freePorts(2)) as [number, number];
    httpPort = http;
    relay = new CuttableRelay(relayPort, { host: direct.hostname, port: Number(direct.port || 5432) });
    await relay.open();
    const relayed = new URL(database.url);
    relayed.host = `127.0.0.1:${relayPort}`;
    server = await startServer({
      name: "postgres-unreachable",
      storage: relayed.toString(),
      extraArgs: ["--http-port", String(httpPort)],
    });
    for (const user of ["alice", "bob", "carol"]) await server.addUser(user, PW);
  });
  after(async () => {
    for (const c of closers) await c.close().catch(() => undefined);
    await relay?.cut();
    await server?.stop();
    await database?.drop();
  });

  test("a message that needs the storage is refused as a temporary failure, and stored once it is back", async () => {
    const alice = await connectJs(server, { user: "alice", password: PW, resource: "desk" });
    closers.push(alice);
    const carol = await connectJs(server, { user: "carol", password: PW, resource: "web" });
    closers.push(carol);
    await carol.send(xml("presence"));
    await carol.sync(); // answered once her presence was handled
    await relay.cut();

    // Between two sessions online here, chat goes on.
    await alice.send(xml("message", { to: carol.jid, type: "chat" }, xml("body", {}, "live while down")));
    await carol.next(
      is.message({ body: "live while down" }),
      "a live message while the database is unreachable",
    );

    // bob has no session: the message needs the database (is there such an account? store it offline).
    await alice.send(
      xml("message", { to: "bob@localhost", type: "chat", id: "while-down" }, xml("body", {}, "while down")),
    );
    const refused = await alice.next(
      (el) => el.name === "message" && el.attrs.id === "while-down" && el.attrs.type === "error",
      "the refusal of a message while the database is unreachable",
    );
    const error = refused.getChild("error")!;
    assert.equal(error.attrs.type, "wait", `try again later: ${refused.toString()}`);
    assert.ok(error.getChild("internal-server-error", NS.stanzas), refused.toString());
    assert.match(error.getChildText("text", NS.stanzas) ?? "", /cannot reach its storage/);
    const refusals = await metricValues(
      `http://${server.host}:${httpPort}/metrics`,
      "switchboard_storage_unavailable_refusals_total",
    );
    assert.ok((refusals.get("") ?? 0) >= 1, [...refusals].join(" "));
    assert.match(server.logTail(50), /the storage cannot be reached/);

    // Back: the same message is stored and reaches bob when he logs in.
    await relay.open();
    await alice.send(
      xml("message", { to: "bob@localhost", type: "chat", id: "after" }, xml("body", {}, "after")),
    );
    await alice.sync();
    const bob = await connectJs(server, { user: "bob", password: PW, resource: "phone" });
    closers.push(bob);
    await bob.send(xml("presence"));
    await bob.next(is.message({ body: "after" }), "the message sent once the database was back");
    assert.ok(server.running);
  });
});
