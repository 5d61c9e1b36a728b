/**
 * The cluster's figures on one node's admin faces (two nodes on PostgreSQL and NATS): with
 * sessions on both nodes and messages sent on the second, the HTTP API's `cluster status`
 * and the console's dashboard on the first node show each node's sessions and messages per
 * minute and their sums; a node that stops beating (SIGSTOP) is shown as not answering
 * without holding the page up.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { clusterPrefix, NATS_URL, natsSkip, removeClusterBuckets } from "../helpers/nats.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { freePorts, runCli, startServer, type TestServer } from "../helpers/server.js";
import { xml } from "../helpers/stanza.js";

const PW = "cluster-figures-pw";
/** Heartbeats every 2 s: a node is not answering after 6 s of silence, dead after 8 s. */
const NODE_TIMEOUT_S = 8;

const skip = (await postgresSkip()) || (await natsSkip());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface StatusJson {
  nodes: { name: string; sessions: number; messagesPerMinute?: number; answering: boolean }[];
  sessions: number;
  messagesPerMinute: number;
  staleSessions?: number;
}

describe("the cluster's figures on one node's API and console", { skip }, () => {
  let database: TestDatabase;
  const prefix = clusterPrefix("fig");
  const nodes: TestServer[] = [];
  const bases: string[] = [];
  const peers: { close(): Promise<void> }[] = [];
  let token: string;

  async function startNode(name: string): Promise<void> {
    const [httpPort] = (await freePorts(1)) as [number];
    nodes.push(
      await startServer({
        name: `cluster-figures-${name}`,
        storage: database.url,
        extraArgs: ["--cluster", NATS_URL, "--node", name, "--http-port", String(httpPort)],
        config: { cluster: { prefix, nodeTimeoutSeconds: NODE_TIMEOUT_S } },
      }),
    );
    bases.push(`http://127.0.0.1:${httpPort}`);
  }

  async function get(node: number, path: string): Promise<Response> {
    return fetch(`${bases[node]}${path}`, { headers: { authorization: `Bearer ${token}` } });
  }

  async function status(node: number): Promise<StatusJson> {
    const res = await get(node, "/api/v1/cluster/status?quick=true");
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { data: StatusJson }).data;
  }

  /** Polls node 0's API until `ok` holds. */
  async function statusUntil(ok: (s: StatusJson) => boolean, what: string): Promise<StatusJson> {
    const deadline = Date.now() + 15_000;
    let last: StatusJson | undefined;
    while (Date.now() < deadline) {
      last = await status(0);
      if (ok(last)) return last;
      await sleep(250);
    }
    throw new Error(`${what}: last status ${JSON.stringify(last)}`);
  }

  before(async () => {
    database = await createTestDatabase("cluster_figures");
    process.env.SWITCHBOARD_STORAGE_URL = database.url;
    process.env.SWITCHBOARD_CLUSTER_PREFIX = prefix;
    await startNode("fa");
    await startNode("fb");
    for (const user of ["alice", "bob", "carol"]) await nodes[0]!.addUser(user, PW);
    const created = await runCli(
      ["token", "create", "--name", "figures", "--storage", database.url, "--json"],
      nodes[0]!.logFile,
    );
    token = (JSON.parse(created) as { token: string }).token;
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) {
      n.proc.kill("SIGCONT");
      if (n.running) await n.stop().catch(() => n.kill());
    }
    await removeClusterBuckets(prefix).catch(() => undefined);
    await database?.drop();
  });

  test("node fa's API and dashboard show both nodes' sessions and messages per minute, and the totals", async () => {
    const login = (user: string, resource: string) => ({ user, password: PW, resource });
    const alice = await connectJs(nodes[0]!, login("alice", "a1"));
    const alice2 = await connectJs(nodes[0]!, login("alice", "a2"));
    const bob = await connectJs(nodes[1]!, login("bob", "b1"));
    peers.push(alice, alice2, bob);
    for (let i = 0; i < 10; i++)
      await bob.send(xml("message", { to: "carol@localhost", type: "chat" }, xml("body", {}, `m${i}`)));
    await bob.sync();

    const s = await statusUntil(
      (st) =>
        st.nodes.length === 2 &&
        st.nodes[0]!.sessions === 2 &&
        st.nodes[1]!.sessions === 1 &&
        (st.nodes[1]!.messagesPerMinute ?? 0) > 0,
      "both nodes' figures in fa's cluster status",
    );
    assert.deepEqual(
      s.nodes.map((n) => [n.name, n.sessions, n.answering]),
      [
        ["fa", 2, true],
        ["fb", 1, true],
      ],
    );
    assert.equal(s.sessions, 3);
    const fb = s.nodes[1]!.messagesPerMinute!;
    assert.ok(
      Math.abs(s.messagesPerMinute - (s.nodes[0]!.messagesPerMinute ?? 0) - fb) < 0.2,
      JSON.stringify(s),
    );
    assert.equal(s.staleSessions, undefined, "quick: the directory's entries are not read");

    const res = await get(0, "/console/live");
    assert.equal(res.status, 200);
    const page = await res.text();
    const rows = [
      ...page.matchAll(/<tr><td data-label="Node">(.*?)<\/td><td[^>]*>(\d+)<\/td><td[^>]*>([\d—]+)<\/td>/g),
    ].map((m) => [m[1], Number(m[2]), m[3]]);
    assert.deepEqual(
      rows.map((r) => r.slice(0, 2)),
      [
        ["fa", 2],
        ["fb", 1],
        ["<strong>All nodes</strong>", 3],
      ],
      page,
    );
    assert.ok(Number(rows[1]![2]) > 0, `fb's messages per minute: ${rows[1]![2]}`);
    assert.match(page, /data-testid="sessions-now">3</, "the sessions card counts both nodes");
    assert.match(page, /all nodes<\/p>/);
  });

  test("a node that stops beating is shown as not answering, and the page does not wait for it", async (t) => {
    nodes[1]!.proc.kill("SIGSTOP");
    const stoppedAt = Date.now();
    try {
      const s = await statusUntil(
        (st) => st.nodes.find((n) => n.name === "fb")?.answering === false,
        "fb not answering",
      );
      t.diagnostic(`fb shown as not answering ${Date.now() - stoppedAt} ms after SIGSTOP`);
      assert.equal(s.nodes.find((n) => n.name === "fa")?.answering, true);
      const asked = Date.now();
      const page = await (await get(0, "/console/live")).text();
      assert.ok(Date.now() - asked < 2_000, `the page took ${Date.now() - asked} ms`);
      assert.match(page, /<td data-label="Node">fb<\/td>.*?not answering \(last heard/s, page);
    } finally {
      nodes[1]!.proc.kill("SIGCONT");
    }
  });
});
