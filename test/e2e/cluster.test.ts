/**
 * A cluster of three nodes as an operator runs one: three `switchboard start --cluster … --node …`
 * processes on loopback ports, sharing a PostgreSQL database made for the run and a NATS server
 * (with a prefix of the run's own), with @xmpp/client and slixmpp users spread across them:
 * chat both ways and in order, IQs and their results, presence and roster pushes to resources on
 * other nodes, offline delivery exactly once, a resource conflict across nodes, an account
 * disabled and a licence revoked with the CLI closing sessions on every node, `cluster status`,
 * and a node killed with SIGKILL: its sessions leave the directory within the node timeout,
 * messages to them go offline, and the other nodes keep serving.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { connectLicensed, type LicensedPeer } from "../helpers/licensed-peer.js";
import { type AppCredentials, registerApp } from "../helpers/licensed-setup.js";
import {
  clusterPrefix,
  NATS_URL,
  natsSkip,
  readClusterBuckets,
  removeClusterBuckets,
} from "../helpers/nats.js";
import type { Peer } from "../helpers/peer.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { RawConnection } from "../helpers/raw-client.js";
import { rosterGet } from "../helpers/roster.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import { is, NS, newId, rosterItem, xml } from "../helpers/stanza.js";

const PW = "cluster-e2e-pw";
const USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivy"];
const jid = (user: string) => `${user}@localhost`;
/** The default node timeout is 5 s; the issue allows 10 s for a dead node's sessions to go. */
const GONE_WITHIN_MS = 10_000;

const skip = (await postgresSkip()) || (await natsSkip()) || slixSkip;

interface ClusterStatusJson {
  nodes: { name: string; sessions: number }[];
  sessions: number;
  staleSessions: number;
  nats: { ok: boolean };
  storage: { ok: boolean; backend: string };
}

describe("a cluster of three nodes (PostgreSQL, NATS)", { skip }, () => {
  let database: TestDatabase;
  const prefix = clusterPrefix("e2e");
  const nodes: TestServer[] = [];
  const peers: { close(): Promise<void> }[] = [];
  const keep = <T extends { close(): Promise<void> }>(p: T): T => {
    peers.push(p);
    return p;
  };
  const login = (user: string, resource: string) => ({ user, password: PW, resource });
  const js = (node: number, user: string, resource: string) =>
    connectJs(nodes[node]!, login(user, resource)).then(keep);
  const slix = (node: number, user: string, resource: string) =>
    connectSlix(nodes[node]!, login(user, resource)).then(keep);

  function startNode(name: string): Promise<TestServer> {
    return startServer({
      name: `cluster-${name}`,
      storage: database.url,
      extraArgs: ["--cluster", NATS_URL, "--node", name],
      config: {
        cluster: { prefix },
        modules: { licensing: { pollIntervalMs: 250 }, "account-changes": { pollIntervalMs: 250 } },
      },
    });
  }

  async function cli(args: string[]): Promise<Record<string, unknown>> {
    const out = await runCli([...args, "--storage", database.url, "--json"], nodes[0]!.logFile);
    return JSON.parse(out) as Record<string, unknown>;
  }

  const status = () =>
    cli(["cluster", "status", "--cluster", NATS_URL]) as unknown as Promise<ClusterStatusJson>;

  /** Polls `cluster status` until `ok` holds; returns how long it took. */
  async function statusUntil(ok: (s: ClusterStatusJson) => boolean, what: string, withinMs: number) {
    const start = Date.now();
    let last: ClusterStatusJson | undefined;
    while (Date.now() - start < withinMs) {
      last = await status();
      if (ok(last)) return Date.now() - start;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${what}: not within ${withinMs} ms; last status ${JSON.stringify(last)}`);
  }

  before(async () => {
    database = await createTestDatabase("cluster");
    // The licensing helpers run the CLI on the data directory: the variable points them at the shared database.
    process.env.SWITCHBOARD_STORAGE_URL = database.url;
    // And `cluster status` at this run's subjects and buckets.
    process.env.SWITCHBOARD_CLUSTER_PREFIX = prefix;
    // The first node creates the schema; the others start together.
    nodes.push(await startNode("n1"));
    nodes.push(...(await Promise.all([startNode("n2"), startNode("n3")])));
    for (const user of USERS) await nodes[0]!.addUser(user, PW);
    await statusUntil((s) => s.nodes.length === 3, "three nodes in cluster status", 10_000);
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) if (n.running) await n.stop().catch(() => n.kill());
    await removeClusterBuckets(prefix).catch(() => undefined);
    await database?.drop();
  });

  test("starting a cluster node on SQLite is refused: nodes must share storage", async () => {
    await assert.rejects(
      runCli(
        [
          "start",
          "--data-dir",
          nodes[0]!.dataDir,
          "--storage",
          "sqlite:cluster-refused.sqlite",
          "--cluster",
          NATS_URL,
        ],
        nodes[0]!.logFile,
      ),
      /a cluster needs storage every node shares.*postgres/s,
    );
  });

  test("cluster status lists the three nodes, NATS and PostgreSQL healthy", async () => {
    const s = await status();
    assert.deepEqual(
      s.nodes.map((n) => n.name),
      ["n1", "n2", "n3"],
      JSON.stringify(s),
    );
    assert.ok(s.nats.ok && s.storage.ok, JSON.stringify(s));
    assert.equal(s.storage.backend, "postgres");
    const text = await runCli(
      ["cluster", "status", "--cluster", NATS_URL, "--storage", database.url],
      nodes[0]!.logFile,
    );
    assert.match(text, /3 nodes/, text);
    assert.match(text, /^ {2}n2 {2}\d+ sessions? {2}(\d+ messages?\/min {2})?heartbeat/m, text);
  });

  test("chat between @xmpp/client on n1 and slixmpp on n2: both ways, in order", async () => {
    const alice = await js(0, "alice", "laptop");
    const bob = await slix(1, "bob", "desk");
    await alice.send(xml("presence"));
    await bob.command("presence");
    await alice.sync();
    await bob.sync();
    const bodies = Array.from({ length: 30 }, (_, i) => `n1 to n2 #${i}`);
    for (const body of bodies) {
      await alice.send(
        xml("message", { to: jid("bob"), type: "chat", id: newId("m") }, xml("body", {}, body)),
      );
    }
    for (const body of bodies) {
      const m = await bob.next(is.message({ type: "chat" }), `"${body}"`);
      assert.equal(m.getChildText("body"), body, "messages from one sender arrive in the order sent");
      assert.equal(m.attrs.from, alice.jid);
    }
    await bob.command("message", { to: alice.jid, body: "reply from n2", type: "chat" });
    const reply = await alice.next(is.message({ body: "reply from n2" }), "bob's reply");
    assert.equal(reply.attrs.from, bob.jid);
  });

  test("an IQ to a resource on another node is answered by that client, and the result routes back", async () => {
    const carol = await js(2, "carol", "phone");
    const alice = await js(0, "alice", "ping");
    const pong = await alice.iq(xml("iq", { type: "get", to: carol.jid }, xml("ping", { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, "result", pong.toString());
    assert.equal(pong.attrs.from, carol.jid);
    // A resource that is bound nowhere: the server answers for it.
    const none = await alice.iq(
      xml("iq", { type: "get", to: `${jid("carol")}/nowhere` }, xml("ping", { xmlns: NS.ping })),
    );
    assert.equal(none.attrs.type, "error", none.toString());
  });

  test("presence and roster pushes reach the account's resources on other nodes", async () => {
    const dave1 = await js(0, "dave", "one");
    const dave3 = await slix(2, "dave", "three");
    const erin = await js(1, "erin", "web");
    await rosterGet(dave1);
    await dave3.request("roster_get");
    await rosterGet(erin);
    await dave1.send(xml("presence"));
    await dave3.command("presence");
    await erin.send(xml("presence"));
    // Each resource of dave sees the other's presence (an account is subscribed to itself).
    await dave1.next(is.presence({ from: dave3.jid }), "dave/three's presence on n1");

    // A roster change on n1 is pushed to the interested resource on n3.
    await dave1.send(xml("presence", { to: jid("erin"), type: "subscribe" }));
    await dave3.next(
      (el) => is.rosterPush(jid("erin"))(el) && rosterItem(el, jid("erin"))?.attrs.ask === "subscribe",
      "the roster push of dave's request, on n3",
    );
    await erin.next(is.presence({ from: jid("dave"), type: "subscribe" }), "dave's request on n2");
    await erin.send(xml("presence", { to: jid("dave"), type: "subscribed" }));
    // The approval reaches both of dave's resources as a push, and erin's presence follows.
    for (const [peer, where] of [
      [dave1, "n1"],
      [dave3, "n3"],
    ] as [Peer, string][]) {
      await peer.next(
        (el) => is.rosterPush(jid("erin"))(el) && rosterItem(el, jid("erin"))?.attrs.subscription === "to",
        `subscription 'to' pushed on ${where}`,
      );
      await peer.next(is.presence({ from: erin.jid }), `erin's presence on ${where}`);
    }
    // Presence changes and unavailable presence cross nodes too.
    await erin.send(xml("presence", {}, xml("show", {}, "away")));
    for (const peer of [dave1, dave3]) {
      const away = await peer.next(is.presence({ from: erin.jid }), "erin away");
      assert.equal(away.getChildText("show"), "away");
    }
    await erin.close();
    for (const peer of [dave1, dave3]) {
      await peer.next(is.presence({ from: erin.jid, type: "unavailable" }), "erin gone");
    }
    // A new resource of dave on n2 probes: erin is offline, and dave's own resources on n1 and n3 answer.
    const dave2 = await js(1, "dave", "two");
    await dave2.send(xml("presence"));
    await dave2.next(is.presence({ from: dave1.jid }), "dave/one's presence on n2");
    await dave2.next(is.presence({ from: dave3.jid }), "dave/three's presence on n2");
  });

  test("a message for an account online nowhere is stored once and delivered once", async () => {
    const alice = await js(1, "alice", "offline-sender");
    await alice.send(
      xml("message", { to: jid("frank"), type: "chat" }, xml("body", {}, "while you were out")),
    );
    await alice.sync();
    const frank = await js(2, "frank", "later");
    await frank.send(xml("presence"));
    const m = await frank.next(is.message({ body: "while you were out" }), "the offline message");
    assert.ok(m.getChild("delay", NS.delay), "delivered from offline storage");
    await frank.none(is.message({ body: "while you were out" }), "a second copy", 1_500);
    await frank.close();
  });

  test("an unknown account gets the same SCRAM salt from every node (the nodes share the decoy secret)", async () => {
    // The data directories are the nodes' own: the secret comes from the shared storage.
    const salts: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const c = await RawConnection.open(node, { label: `SCRAM on n${i + 1}` });
      try {
        await c.openStream(node.domain);
        assert.match(await c.startTls(node.domain), /<mechanism>SCRAM-SHA-1<\/mechanism>/);
        const first = Buffer.from("n,,n=nobody-here,r=cluster-salt-check").toString("base64");
        c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${first}</auth>`);
        const [, challenge = ""] = await c.waitFor(
          /<challenge[^>]*>([^<]*)<\/challenge>/,
          "the SCRAM challenge",
        );
        const salt = /(?:^|,)s=([^,]+)/.exec(Buffer.from(challenge, "base64").toString())?.[1];
        assert.ok(salt, `a salt in the challenge from n${i + 1}`);
        salts.push(salt);
      } finally {
        c.destroy();
      }
    }
    assert.equal(salts.length, 3);
    assert.equal(new Set(salts).size, 1, `one salt from the three nodes: ${salts.join(" ")}`);
  });

  test("a resource bound again on another node replaces the first (conflict), and gets its messages", async () => {
    const first = await js(0, "gina", "phone");
    await first.send(xml("presence"));
    await first.sync();
    const second = await slix(2, "gina", "phone");
    assert.equal(await first.streamErrors.next(() => true, "the conflict stream error on n1"), "conflict");
    await second.command("presence");
    await second.sync();
    const alice = await js(1, "alice", "conflict-check");
    await alice.send(
      xml("message", { to: `${jid("gina")}/phone`, type: "chat" }, xml("body", {}, "to the new one")),
    );
    await second.next(is.message({ body: "to the new one" }), "the message on n3");
  });

  test("an account disabled with the CLI loses its sessions on every node", async () => {
    const on1 = await js(0, "hank", "a");
    const on2 = await js(1, "hank", "b");
    const on3 = await slix(2, "hank", "c");
    await cli(["user", "disable", "hank"]);
    for (const peer of [on1, on2, on3] as Peer[]) {
      await Promise.race([
        peer.ended,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`${peer.label} still connected`)), 5_000),
        ),
      ]);
    }
    await cli(["user", "enable", "hank"]);
  });

  describe("licensing", () => {
    let app: AppCredentials;
    before(async () => {
      app = await registerApp(nodes[0]!, "com.example.cluster");
    });

    test("a licence revoked with the CLI closes the app's sessions on every node within a second", async (t) => {
      const build = {
        clientId: app.clientId,
        keyId: app.keyId,
        privateKeyPem: app.privateKeyPem,
        version: "1.0",
      };
      const sessions: LicensedPeer[] = [];
      for (const [i, node] of nodes.entries()) {
        sessions.push(keep(await connectLicensed(node, login("ivy", `n${i + 1}`), build)));
      }
      const bystander = await js(1, "alice", "bystander");
      await cli(["licence", "revoke", app.licenceId]);
      const revokedAt = Date.now();
      for (const peer of sessions) {
        const refusal = await peer.refused("revocation");
        assert.equal(refusal.condition, "licence-revoked");
        t.diagnostic(`${peer.label}: closed ${peer.endedAt - revokedAt} ms after the CLI returned`);
        assert.ok(
          peer.endedAt - revokedAt < 1_500,
          `${peer.label} closed ${peer.endedAt - revokedAt} ms after`,
        );
      }
      await bystander.sync();
    });
  });

  test("kill -9 of a node: its sessions leave the directory in time, messages to them go offline", async (t) => {
    const alice = await js(0, "alice", "survivor");
    const bob = await slix(1, "bob", "survivor");
    await alice.send(xml("presence"));
    await bob.command("presence");
    const victim = await js(2, "carol", "victim");
    await victim.send(xml("presence"));
    await victim.sync();
    await statusUntil(
      (s) => (s.nodes.find((n) => n.name === "n3")?.sessions ?? 0) > 0,
      "carol's session on n3 in the directory",
      5_000,
    );

    nodes[2]!.kill();
    await nodes[2]!.waitExit(5_000);
    const killedAt = Date.now();
    // At once: n3 no longer takes stanzas, so the message goes to offline storage.
    await alice.send(
      xml("message", { to: jid("carol"), type: "chat" }, xml("body", {}, "right after the crash")),
    );
    // The buckets are read directly (a CLI run takes a second of its own).
    let goneMs = 0;
    let last: Awaited<ReturnType<typeof readClusterBuckets>> | undefined;
    while (Date.now() - killedAt < GONE_WITHIN_MS + 5_000) {
      last = await readClusterBuckets(prefix);
      if (!last.nodes.includes("n3") && !last.sessions.n3) {
        goneMs = Date.now() - killedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    t.diagnostic(`n3 and its sessions left the directory ${goneMs} ms after the kill`);
    assert.ok(
      goneMs > 0 && goneMs <= GONE_WITHIN_MS,
      `not gone within ${GONE_WITHIN_MS} ms: ${JSON.stringify(last)}`,
    );
    const after = await status();
    assert.deepEqual(
      after.nodes.map((n) => n.name),
      ["n1", "n2"],
    );
    assert.equal(after.staleSessions, 0);
    await alice.send(xml("message", { to: jid("carol"), type: "chat" }, xml("body", {}, "after detection")));
    await alice.sync();

    // The other nodes keep serving.
    await bob.command("message", { to: alice.jid, body: "still here", type: "chat" });
    await alice.next(is.message({ body: "still here" }), "bob's message after the crash");

    const carol = await js(1, "carol", "back");
    await carol.send(xml("presence"));
    for (const body of ["right after the crash", "after detection"]) {
      const m = await carol.next(is.message({ body }), `"${body}" from offline storage`);
      assert.ok(m.getChild("delay", NS.delay));
    }
    await carol.none(is.anyChat(), "a duplicate", 1_500);
  });
});
