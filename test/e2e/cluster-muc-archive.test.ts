/**
 * The archives of group chat rooms whose node is gone (two nodes on PostgreSQL and NATS): a
 * temporary room ends with its node, as with its last occupant, so when the node is killed
 * (SIGKILL) the surviving node takes its claim over and removes its archive from the shared
 * database, while a persistent room's archive is kept; a temporary room of a node that stops
 * gracefully loses its archive too.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { clusterPrefix, NATS_URL, natsSkip, readOwners, removeClusterBuckets } from "../helpers/nats.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { is, xml } from "../helpers/stanza.js";

const PW = "cluster-muc-archive-pw";
const SERVICE = "conference.localhost";
const TEMPORARY = `passing@${SERVICE}`;
const PERSISTENT = `kept@${SERVICE}`;
const NS_MUC = "http://jabber.org/protocol/muc";
const NODE_TIMEOUT_S = 2;
/** Noticed within the node timeout and a check; then the claims are settled. */
const SETTLED_WITHIN_MS = NODE_TIMEOUT_S * 1000 + 5_000;

const skip = (await postgresSkip()) || (await natsSkip());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("room archives when a room's node is gone", { skip }, () => {
  let database: TestDatabase;
  let db: pg.Client;
  const prefix = clusterPrefix("mucarch");
  const nodes: TestServer[] = [];
  const peers: JsPeer[] = [];

  function startNode(name: string): Promise<TestServer> {
    return startServer({
      name: `cluster-muc-archive-${name}`,
      storage: database.url,
      extraArgs: ["--cluster", NATS_URL, "--node", name],
      config: { cluster: { prefix, nodeTimeoutSeconds: NODE_TIMEOUT_S }, muc: { lockNewRooms: false } },
    });
  }

  /** Archived messages per room, as the shared database holds them. */
  async function archived(): Promise<Record<string, number>> {
    const { rows } = await db.query<{ owner: string; n: string }>(
      "SELECT owner, count(*) AS n FROM room_messages GROUP BY owner",
    );
    return Object.fromEntries(rows.map((r) => [r.owner, Number(r.n)]));
  }

  async function archivedUntil(ok: (a: Record<string, number>) => boolean, what: string, withinMs: number) {
    const start = Date.now();
    let last: Record<string, number> = {};
    while (Date.now() - start < withinMs) {
      last = await archived();
      if (ok(last)) return Date.now() - start;
      await sleep(100);
    }
    throw new Error(`${what}: not within ${withinMs} ms; archived ${JSON.stringify(last)}`);
  }

  async function say(peer: JsPeer, room: string, nick: string, body: string): Promise<void> {
    await peer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, body)));
    await peer.next(
      is.message({ from: `${room}/${nick}`, body, type: "groupchat" }),
      `the echo of "${body}"`,
    );
  }

  async function enter(peer: JsPeer, room: string, nick: string): Promise<void> {
    await peer.send(
      xml(
        "presence",
        { to: `${room}/${nick}` },
        xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: "0" })),
      ),
    );
    await peer.next(is.presence({ from: `${room}/${nick}` }), `${nick} in ${room}`);
  }

  before(async () => {
    database = await createTestDatabase("cluster_muc_archive");
    process.env.SWITCHBOARD_STORAGE_URL = database.url;
    nodes.push(await startNode("r1"));
    nodes.push(await startNode("r2"));
    for (const user of ["alice", "bob"]) await nodes[0]!.addUser(user, PW);
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) if (n.running) await n.stop().catch(() => n.kill());
    await db?.end().catch(() => undefined);
    await removeClusterBuckets(prefix).catch(() => undefined);
    await database?.drop();
  });

  test("kill -9 of the rooms' node: the temporary room's archive is removed, the persistent room's kept", async (t) => {
    const alice = await connectJs(nodes[0]!, { user: "alice", password: PW, resource: "a" });
    peers.push(alice);
    await enter(alice, TEMPORARY, "Alice");
    await enter(alice, PERSISTENT, "Alice");
    const configured = await alice.iq(
      xml(
        "iq",
        { type: "set", to: PERSISTENT },
        xml(
          "query",
          { xmlns: `${NS_MUC}#owner` },
          xml(
            "x",
            { xmlns: "jabber:x:data", type: "submit" },
            xml("field", { var: "FORM_TYPE" }, xml("value", {}, `${NS_MUC}#roomconfig`)),
            xml("field", { var: "muc#roomconfig_persistentroom" }, xml("value", {}, "1")),
          ),
        ),
      ),
    );
    assert.equal(configured.attrs.type, "result", configured.toString());
    for (const body of ["one", "two"]) {
      await say(alice, TEMPORARY, "Alice", body);
      await say(alice, PERSISTENT, "Alice", body);
    }
    await archivedUntil((a) => a[TEMPORARY] === 2 && a[PERSISTENT] === 2, "both rooms archived", 5_000);
    assert.deepEqual(await readOwners(prefix, "muc"), { [TEMPORARY]: "r1", [PERSISTENT]: "r1" });

    nodes[0]!.kill();
    await nodes[0]!.waitExit(5_000);
    const ms = await archivedUntil(
      (a) => a[TEMPORARY] === undefined,
      "the temporary room's archive removed",
      SETTLED_WITHIN_MS,
    );
    t.diagnostic(`the temporary room's archive was removed ${ms} ms after the kill`);
    assert.equal((await archived())[PERSISTENT], 2, "the persistent room's archive is kept");
    // r2 took the temporary room over to remove its archive; the persistent room's claim is free.
    assert.deepEqual(await readOwners(prefix, "muc"), { [TEMPORARY]: "r2" });

    // The room's name serves a new room, with no history of the old one.
    const bob = await connectJs(nodes[1]!, { user: "bob", password: PW, resource: "b" });
    peers.push(bob);
    await enter(bob, TEMPORARY, "Bob");
    await say(bob, TEMPORARY, "Bob", "a new room");
    await archivedUntil((a) => a[TEMPORARY] === 1, "the new room's message archived", 5_000);
    await bob.send(xml("presence", { to: `${TEMPORARY}/Bob`, type: "unavailable" }));
    await bob.next(is.presence({ from: `${TEMPORARY}/Bob`, type: "unavailable" }), "bob left");
    await archivedUntil((a) => a[TEMPORARY] === undefined, "the emptied room's archive removed", 5_000);
  });

  test("a graceful stop ends the node's temporary rooms, their archives with them", async () => {
    const bob = peers.at(-1)!;
    const room = `brief@${SERVICE}`;
    await enter(bob, room, "Bob");
    await say(bob, room, "Bob", "before the stop");
    await archivedUntil((a) => a[room] === 1, "the message archived", 5_000);
    await nodes[1]!.stop();
    const left = await archived();
    assert.equal(left[room], undefined, JSON.stringify(left));
    assert.equal(left[PERSISTENT], 2);
  });
});
