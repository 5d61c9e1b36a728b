/**
 * Licensing across a two-node cluster (two `switchboard start --cluster … --node …` processes
 * sharing a PostgreSQL database made for the run and a NATS server): a licence's session limit
 * counts the sessions of both nodes (a login on one node over the limit set by a session on the
 * other is refused with the standard refusal; two logins racing on the two nodes leave one
 * session), and the client statistics the console dashboard and `stats clients` show count the
 * sessions of both nodes, an account with sessions on both once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { type Build, connectLicensed, type LicensedPeer, licensedRefusal } from "../helpers/licensed-peer.js";
import { type AppCredentials, registerApp } from "../helpers/licensed-setup.js";
import { clusterPrefix, NATS_URL, natsSkip, removeClusterBuckets } from "../helpers/nats.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";

const PW = "cluster-licensing-pw";
/** A bind is announced to the other node in milliseconds; a busy machine gets some slack. */
const ANNOUNCED_MS = 500;

const skip = (await postgresSkip()) || (await natsSkip());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LiveJson {
  nodes: { nodeId: string }[];
  sessions: number;
  accounts: number;
  rows: {
    clientId: string | null;
    version: string | null;
    status: string;
    sessions: number;
    accounts: number;
  }[];
}

describe("licensing across a two-node cluster (PostgreSQL, NATS)", { skip }, () => {
  let database: TestDatabase;
  const prefix = clusterPrefix("lic");
  const nodes: TestServer[] = [];
  const peers: { close(): Promise<void> }[] = [];
  const keep = <T extends { close(): Promise<void> }>(p: T): T => {
    peers.push(p);
    return p;
  };
  const login = (user: string, resource: string) => ({ user, password: PW, resource });
  let app: AppCredentials;
  let build: Build;

  function startNode(name: string): Promise<TestServer> {
    return startServer({
      name: `cluster-licensing-${name}`,
      storage: database.url,
      extraArgs: ["--cluster", NATS_URL, "--node", name],
      config: {
        cluster: { prefix },
        modules: { licensing: { pollIntervalMs: 250, statsIntervalMs: 250 } },
      },
    });
  }

  /** `stats clients --json` run as an operator would, from another process. */
  async function liveFigures(): Promise<LiveJson | null> {
    const out = await runCli(["stats", "clients", "--storage", database.url, "--json"], nodes[0]!.logFile);
    return (JSON.parse(out) as { live: LiveJson | null }).live;
  }

  before(async () => {
    database = await createTestDatabase("cluster_licensing");
    // The licensing helpers run the CLI on the data directory: the variable points them at the shared database.
    process.env.SWITCHBOARD_STORAGE_URL = database.url;
    nodes.push(await startNode("a"));
    nodes.push(await startNode("b"));
    for (const user of ["alice", "bob", "carol", "dave"]) await nodes[0]!.addUser(user, PW);
    app = await registerApp(nodes[0]!, "com.example.clusterlimit", { licence: ["--max-sessions", "1"] });
    build = { clientId: app.clientId, keyId: app.keyId, privateKeyPem: app.privateKeyPem, version: "2.1" };
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) if (n.running) await n.stop().catch(() => n.kill());
    await removeClusterBuckets(prefix).catch(() => undefined);
    await database?.drop();
  });

  test("a licence with one session: a session on node a, a login on node b is refused", async () => {
    const first = keep(await connectLicensed(nodes[0]!, login("alice", "a"), build));
    await sleep(ANNOUNCED_MS);
    const refusal = await licensedRefusal(nodes[1]!, login("bob", "b"), build);
    assert.equal(refusal.condition, "too-many-sessions");
    assert.equal(refusal.limit, 1);
    assert.equal(refusal.streamCondition, "policy-violation");
    // The session on node a is untouched, and once it ends the licence's one session is free on node b.
    await first.sync();
    await first.close();
    await sleep(ANNOUNCED_MS);
    const second = keep(await connectLicensed(nodes[1]!, login("bob", "b"), build));
    await second.sync();
    await second.close();
  });

  test("two logins racing on the two nodes: one session is left, the other refused", async (t) => {
    await sleep(ANNOUNCED_MS);
    const attempts = await Promise.allSettled([
      connectLicensed(nodes[0]!, login("carol", "race"), build),
      connectLicensed(nodes[1]!, login("dave", "race"), build),
    ]);
    const admitted = attempts
      .filter((a): a is PromiseFulfilledResult<LicensedPeer> => a.status === "fulfilled")
      .map((a) => keep(a.value));
    t.diagnostic(`admitted at login: ${admitted.length} of 2`);
    const refused = attempts.flatMap((a) => (a.status === "rejected" ? [String(a.reason)] : []));
    assert.ok(admitted.length >= 1, `both logins refused: ${refused.join("; ")}`);
    for (const reason of refused) assert.match(reason, /too-many-sessions/);
    // When both were admitted (neither node had heard of the other's bind yet), the later bind is closed.
    await sleep(ANNOUNCED_MS * 2);
    const open = admitted.filter((p) => p.endedAt === 0);
    assert.equal(open.length, 1, "exactly one session under the licence is left");
    for (const p of admitted.filter((x) => x.endedAt !== 0)) {
      const refusal = await p.refused("the limit counted across the nodes");
      assert.equal(refusal.condition, "too-many-sessions");
    }
    await open[0]!.close();
  });

  test("the client statistics count the sessions of both nodes, an account on both once", async () => {
    await sleep(ANNOUNCED_MS);
    keep(await connectLicensed(nodes[0]!, login("alice", "licensed"), build));
    const plainA = keep(await connectJs(nodes[0]!, login("bob", "plain-a")));
    const plainB = keep(await connectJs(nodes[1]!, login("bob", "plain-b")));
    const otherB = keep(await connectJs(nodes[1]!, login("carol", "plain")));
    await Promise.all([plainA.sync(), plainB.sync(), otherB.sync()]);
    const deadline = Date.now() + 10_000;
    let live: LiveJson | null = null;
    for (;;) {
      live = await liveFigures();
      if (live?.sessions === 4 && live.nodes.length === 2) break;
      if (Date.now() > deadline)
        assert.fail(`live figures never counted both nodes: ${JSON.stringify(live)}`);
      await sleep(250);
    }
    assert.deepEqual(live.nodes.map((n) => n.nodeId).sort(), ["a", "b"]);
    // alice (a), bob (a and b), carol (b).
    assert.equal(live.accounts, 3, JSON.stringify(live));
    const licensed = live.rows.find((r) => r.clientId === app.clientId);
    assert.deepEqual(
      licensed && { version: licensed.version, status: licensed.status, sessions: licensed.sessions },
      { version: "2.1", status: "verified", sessions: 1 },
    );
    const unlicensed = live.rows.filter((r) => r.status !== "verified");
    assert.equal(
      unlicensed.reduce((n, r) => n + r.sessions, 0),
      3,
    );
    assert.equal(
      unlicensed.reduce((n, r) => n + r.accounts, 0),
      2,
      "bob's sessions on both nodes are one account",
    );
  });
});
