/**
 * A NATS outage under a two-node cluster: the test runs its own nats-server (JetStream, a
 * store directory of its own) on a free loopback port, stops it while clients chat across the
 * nodes, and starts it again on the same port and store. The nodes recover by themselves: the
 * sessions bound before the outage are in the directory again, chat crosses the nodes again,
 * and new logins bind.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { readClusterBuckets } from "../helpers/nats.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { requirePeer } from "../helpers/services.js";
import { is, xml } from "../helpers/stanza.js";

const NATS_SERVER = "/usr/sbin/nats-server";
const PW = "nats-restart-pw";

const skip =
  (await postgresSkip()) ||
  (await requirePeer("nats-server", () =>
    existsSync(NATS_SERVER) ? true : "install the Debian package nats-server",
  ));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function until(what: string, withinMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < withinMs) {
    if (await check().catch(() => false)) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${withinMs} ms`);
}

describe("a NATS restart under a two-node cluster", { skip }, () => {
  let database: TestDatabase;
  let store: string;
  let port: number;
  let nats: ChildProcess | undefined;
  const nodes: TestServer[] = [];
  const peers: { close(): Promise<void> }[] = [];
  const prefix = "restart";
  const url = () => `nats://127.0.0.1:${port}`;

  async function startNats(): Promise<void> {
    nats = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], {
      stdio: "ignore",
    });
    await until("nats-server accepting connections", 10_000, () => portOpen(port));
  }

  async function stopNats(): Promise<void> {
    const proc = nats;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
  }

  before(async () => {
    database = await createTestDatabase("cluster_nats_restart");
    store = mkdtempSync(path.join(os.tmpdir(), "switchboard-nats-"));
    [port] = (await freePorts(1)) as [number];
    await startNats();
    for (const name of ["r1", "r2"]) {
      nodes.push(
        await startServer({
          name: `cluster-nats-restart-${name}`,
          storage: database.url,
          extraArgs: ["--cluster", url(), "--node", name],
          config: { cluster: { prefix } },
        }),
      );
    }
    for (const user of ["alice", "bob", "carol"]) await nodes[0]!.addUser(user, PW);
  });

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) if (n.running) await n.stop().catch(() => n.kill());
    await stopNats();
    rmSync(store, { recursive: true, force: true });
    await database?.drop();
  });

  test("the nodes recover by themselves: directory, chat across nodes and new logins", async (t) => {
    const alice = await connectJs(nodes[0]!, { user: "alice", password: PW, resource: "a" });
    const bob = await connectJs(nodes[1]!, { user: "bob", password: PW, resource: "b" });
    peers.push(alice, bob);
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
    await bob.sync();
    await alice.send(xml("message", { to: "bob@localhost", type: "chat" }, xml("body", {}, "before")));
    await bob.next(is.message({ body: "before" }), "a message before the outage");

    // Longer than the node timeout (5 s): the heartbeats in the bucket expire meanwhile.
    await stopNats();
    await new Promise((r) => setTimeout(r, 7_000));
    await startNats();
    const nodesBack = await until("both nodes' heartbeats back", 20_000, async () => {
      const b = await readClusterBuckets(prefix, url());
      return b.nodes.length === 2 && b.sessions.r1 === 1 && b.sessions.r2 === 1;
    });
    t.diagnostic(`nodes and sessions back in the buckets ${nodesBack} ms after NATS restarted`);

    // Each node has the other's session in its view again: chat crosses both ways.
    let n = 0;
    await until("a message from n1 to n2 after the restart", 20_000, async () => {
      const body = `after ${++n}`;
      await alice.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, body)));
      await bob.next(is.message({ body }), body, 1_000);
      return true;
    });
    await bob.send(xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, "and back")));
    await alice.next(is.message({ body: "and back" }), "a message from n2 to n1");

    // Binding needs the directory: a new login works.
    const carol = await connectJs(nodes[1]!, { user: "carol", password: PW, resource: "c" });
    peers.push(carol);
    await carol.send(xml("presence"));
    await carol.sync();
    await alice.send(xml("message", { to: carol.jid, type: "chat" }, xml("body", {}, "welcome")));
    await carol.next(is.message({ body: "welcome" }), "a message to a session bound after the restart");
    assert.ok(nodes.every((node) => node.running));
  });
});
