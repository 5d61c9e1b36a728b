/**
 * Federation from a two-node cluster (PostgreSQL, NATS) serving a.test to a Switchboard
 * server serving b.test: the outbound link to b.test is held by one node at a time (a claim
 * in the cluster's owners bucket), whichever node the sender is bound on, and the other
 * node sends nothing to b.test itself; b.test's replies reach users on both nodes; when the link's node is killed
 * (SIGKILL) the other node takes the domain over and opens its own link. The nodes' data
 * directories are their own (the dialback secret is in the shared storage), and b.test
 * verifies a dialback key on the node its route names (m1) although another node (m2) made it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LINK_WAIT_MS, metricValues, sumWhere } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import {
  clusterPrefix,
  NATS_URL,
  natsSkip,
  readOwners,
  removeClusterBuckets,
  waitForNodes,
} from "../helpers/nats.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { clusterDataDirs, freePorts, runCli, startServer, type TestServer } from "../helpers/server.js";
import { is, xml } from "../helpers/stanza.js";

const NET = 100 + Math.floor(Math.random() * 150);
const HOST_M1 = `127.78.${NET}.1`;
const HOST_M2 = `127.78.${NET}.2`;
const HOST_B = `127.78.${NET}.3`;
const PW = "cluster-federation-pw";
/** A short node timeout keeps the test short; the takeover is measured against it. */
const NODE_TIMEOUT_S = 2;
const TAKEOVER_WITHIN_MS = NODE_TIMEOUT_S * 1000 + 8_000;

const skip = (await postgresSkip()) || (await natsSkip());

describe("federation from a two-node cluster: one node holds the link to each remote domain", {
  skip,
}, () => {
  let database: TestDatabase;
  const prefix = clusterPrefix("fed");
  const nodes: TestServer[] = [];
  let remote: TestServer;
  const peers: JsPeer[] = [];
  let metricsM1 = "";
  let alice: JsPeer;
  let carol: JsPeer;
  let bob: JsPeer;

  const login = async (server: TestServer, user: string, resource: string) => {
    const peer = await connectJs(server, { user, password: PW, resource });
    peers.push(peer);
    return peer;
  };

  before(async () => {
    database = await createTestDatabase("cluster_federation");
    // `cluster status` reads the test's buckets.
    process.env.SWITCHBOARD_CLUSTER_PREFIX = prefix;
    const [s2sM1, s2sM2, s2sB, httpM1] = (await freePorts(4)) as [number, number, number, number];
    const [dirM1, dirM2] = clusterDataDirs(["m1", "m2"]) as [string, string];
    const startNode = (name: string, dataDir: string, host: string, s2sPort: number, extra: string[]) =>
      startServer({
        name: `cluster-federation-${name}`,
        domain: "a.test",
        host,
        storage: database.url,
        dataDir,
        removeDataOnStop: true,
        config: { cluster: { prefix, nodeTimeoutSeconds: NODE_TIMEOUT_S }, http: { tls: "off" } },
        extraArgs: [
          "--cluster",
          NATS_URL,
          "--node",
          name,
          "--s2s-port",
          String(s2sPort),
          "--s2s-route",
          `b.test=${HOST_B}:${s2sB}`,
          "--log-level",
          "info",
          ...extra,
        ],
      });
    nodes.push(await startNode("m1", dirM1, HOST_M1, s2sM1, ["--http-port", String(httpM1)]));
    nodes.push(await startNode("m2", dirM2, HOST_M2, s2sM2, []));
    for (const user of ["alice", "carol"]) await nodes[0]!.addUser(user, PW);
    remote = await startServer({
      name: "cluster-federation-b",
      domain: "b.test",
      host: HOST_B,
      users: { bob: PW },
      // b.test reaches a.test at m1, as one SRV target or a load balancer would give it.
      extraArgs: ["--s2s-port", String(s2sB), "--s2s-route", `a.test=${HOST_M1}:${s2sM1}`],
    });
    metricsM1 = `http://${HOST_M1}:${httpM1}/metrics`;
    await waitForNodes(prefix, 2);
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    for (const s of [...nodes, remote]) if (s?.running) await s.stop().catch(() => s.kill());
    await removeClusterBuckets(prefix).catch(() => undefined);
    delete process.env.SWITCHBOARD_CLUSTER_PREFIX;
    await database?.drop();
  });

  test("the first sender's node claims the link; the other node hands its stanzas to it", async () => {
    alice = await login(nodes[0]!, "alice", "a1");
    carol = await login(nodes[1]!, "carol", "c1");
    bob = await login(remote, "bob", "b1");

    await carol.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, "from carol on m2")));
    const first = await bob.next(is.message({ body: "from carol on m2" }), "carol's message", LINK_WAIT_MS);
    assert.equal(first.attrs.from, carol.jid);
    assert.deepEqual(await readOwners(prefix, "s2s"), { "b.test": "m2" }, "m2 holds the link to b.test");

    for (let i = 1; i <= 3; i++)
      await alice.send(
        xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, `from alice on m1 #${i}`)),
      );
    for (let i = 1; i <= 3; i++) {
      const got = await bob.next(
        is.message({ body: `from alice on m1 #${i}` }),
        `alice's message #${i}, in order`,
      );
      assert.equal(got.attrs.from, alice.jid);
    }

    // m1 may hold a link to b.test too, made to verify b.test's dialback key (XEP-0220): it carries no stanza.
    const sentByM1 = await metricValues(metricsM1, "switchboard_s2s_stanzas_total");
    assert.equal(
      sumWhere(sentByM1, { domain: "b.test", direction: "out" }),
      0,
      "m1 sent nothing to b.test itself",
    );

    const status = JSON.parse(
      await runCli(
        ["cluster", "status", "--cluster", NATS_URL, "--storage", database.url, "--json"],
        nodes[0]!.logFile,
      ),
    ) as { nodes: { name: string; owns: Record<string, number> }[] };
    const owns = Object.fromEntries(status.nodes.map((n) => [n.name, n.owns]));
    assert.deepEqual(owns, { m1: {}, m2: { s2s: 1 } }, "cluster status: m2 owns one federation link");
  });

  test("replies from b.test reach users on both nodes", async () => {
    await bob.send(xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, "hello alice")));
    await bob.send(xml("message", { to: carol.jid, type: "chat" }, xml("body", {}, "hello carol")));
    const a = await alice.next(
      is.message({ body: "hello alice" }),
      "bob's message at alice (m1)",
      LINK_WAIT_MS,
    );
    const c = await carol.next(
      is.message({ body: "hello carol" }),
      "bob's message at carol (m2)",
      LINK_WAIT_MS,
    );
    assert.equal(a.attrs.from, bob.jid);
    assert.equal(c.attrs.from, bob.jid);
  });

  test("kill -9 of the link's node: the other node takes b.test over and opens its own link", async () => {
    nodes[1]!.kill();
    await nodes[1]!.waitExit(5_000);
    const killedAt = Date.now();
    // Until the cluster counts m2 dead, alice's messages cannot be handed over; then m1 takes b.test over.
    let delivered: string | undefined;
    for (let i = 1; delivered === undefined; i++) {
      assert.ok(Date.now() - killedAt < TAKEOVER_WITHIN_MS, "m1 did not take the link over in time");
      const body = `after the kill #${i}`;
      await alice.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, body)));
      // Bounced (a temporary error to alice) while m2 is not yet counted dead.
      const arrived = await bob.next(is.message({ body }), body, 1_500).then(
        () => true,
        () => false,
      );
      if (arrived) delivered = body;
      else await new Promise((r) => setTimeout(r, 500));
    }
    assert.deepEqual(await readOwners(prefix, "s2s"), { "b.test": "m1" }, "m1 holds the link now");
    const sentByM1 = await metricValues(metricsM1, "switchboard_s2s_stanzas_total");
    assert.ok(sumWhere(sentByM1, { domain: "b.test", direction: "out" }) >= 1, "m1 sends on its own link");
  });
});
