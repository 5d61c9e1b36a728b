/**
 * A component (XEP-0114 gateway) in a two-node cluster (PostgreSQL, NATS): it attaches to one
 * node and users bound on either node reach it (and find it in the server's disco#items), and
 * it reaches them; a second connection for
 * its domain on the other node is refused with `conflict`; once it has left, a message for it
 * is answered `service-unavailable` (wait) on every node; attached again to the other node,
 * it is reached from both again.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
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
import { RawConnection } from "../helpers/raw-client.js";
import { clusterDataDirs, freePorts, runCli, startServer, type TestServer } from "../helpers/server.js";
import { is, xml } from "../helpers/stanza.js";

const GATEWAY = "gw.localhost";
const SECRET = "a-shared-secret-for-the-cluster-gateway";
const PW = "cluster-components-pw";

const skip = (await postgresSkip()) || (await natsSkip());

describe("a component in a two-node cluster", { skip }, () => {
  let database: TestDatabase;
  const prefix = clusterPrefix("comp");
  const nodes: TestServer[] = [];
  const componentPorts: number[] = [];
  const opened: RawConnection[] = [];
  const peers: JsPeer[] = [];
  let alice: JsPeer;
  let bob: JsPeer;

  /** Connects the component to node `i`; resolves once the handshake is answered, rejects on a stream error. */
  async function attach(i: number): Promise<RawConnection> {
    const c = await RawConnection.connect({
      host: "127.0.0.1",
      port: componentPorts[i]!,
      label: `component at m${i + 1}`,
    });
    opened.push(c);
    c.write(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' " +
        `xmlns:stream='http://etherx.jabber.org/streams' to='${GATEWAY}'>`,
    );
    const [, id] = await c.waitFor(
      /<stream:stream[^>]*\bid=['"]([^'"]+)['"][^>]*>/,
      "the server's stream header",
    );
    c.write(`<handshake>${createHash("sha1").update(`${id}${SECRET}`).digest("hex")}</handshake>`);
    await c.waitFor(/<handshake\s*\/>|<handshake><\/handshake>/, "the handshake's answer");
    return c;
  }

  /** `user` sends the gateway a message; the component gets it with the user's full JID. */
  async function reaches(user: JsPeer, gw: RawConnection, body: string): Promise<void> {
    await user.send(
      xml("message", { to: `bob%irc.example@${GATEWAY}`, type: "chat" }, xml("body", {}, body)),
    );
    const m = await gw.waitFor(
      new RegExp(`<message[^>]*>[\\s\\S]*?${body}[\\s\\S]*?</message>`),
      `"${body}" at the gateway`,
    );
    assert.match(m[0], new RegExp(`from=['"]${user.jid}['"]`));
  }

  /** The items of the server's disco#items, as `user` gets them. */
  async function discoItems(user: JsPeer): Promise<string[]> {
    const reply = await user.iq(
      xml(
        "iq",
        { type: "get", to: "localhost" },
        xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }),
      ),
    );
    return (reply.getChild("query")?.getChildren("item") ?? []).map((i) => String(i.attrs.jid));
  }

  before(async () => {
    database = await createTestDatabase("cluster_components");
    componentPorts.push(...(await freePorts(2)));
    const dirs = clusterDataDirs(["m1", "m2"]);
    for (const [i, name] of ["m1", "m2"].entries()) {
      nodes.push(
        await startServer({
          name: `cluster-components-${name}`,
          storage: database.url,
          dataDir: dirs[i]!,
          removeDataOnStop: true,
          config: { cluster: { prefix } },
          extraArgs: [
            "--cluster",
            NATS_URL,
            "--node",
            name,
            "--component-port",
            String(componentPorts[i]),
            "--log-level",
            "info",
          ],
        }),
      );
    }
    for (const user of ["alice", "bob"]) await nodes[0]!.addUser(user, PW);
    await runCli(
      ["component", "add", GATEWAY, "--secret", SECRET, ...nodes[0]!.storageArgs()],
      nodes[0]!.logFile,
    );
    await waitForNodes(prefix, 2);
    alice = await connectJs(nodes[0]!, { user: "alice", password: PW, resource: "a1" });
    bob = await connectJs(nodes[1]!, { user: "bob", password: PW, resource: "b1" });
    peers.push(alice, bob);
  });

  after(async () => {
    for (const c of opened) c.destroy();
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) if (n.running) await n.stop().catch(() => n.kill());
    await removeClusterBuckets(prefix).catch(() => undefined);
    await database?.drop();
  });

  test("attached to m1: users on both nodes reach it and it reaches them; m2 refuses a second connection", async () => {
    const gw = await attach(0);
    assert.deepEqual(await readOwners(prefix, "component"), { [GATEWAY]: "m1" });
    // The component was registered after m2 started: m2 learns of it from the shared registry.
    await reaches(alice, gw, "from alice on m1");
    await reaches(bob, gw, "from bob on m2");
    gw.write(
      `<message from='x%irc.example@${GATEWAY}/irc' to='${bob.jid}' type='chat'><body>to bob on m2</body></message>`,
    );
    const got = await bob.next(is.message({ body: "to bob on m2" }), "the gateway's message at bob");
    assert.equal(got.attrs.from, `x%irc.example@${GATEWAY}/irc`);

    // Listed by both nodes (m2 from the claims, at its next poll of the registry).
    const listedBy = Date.now() + 5_000;
    while (!(await discoItems(bob)).includes(GATEWAY)) {
      assert.ok(Date.now() < listedBy, "m2 does not list the component attached to m1");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok((await discoItems(alice)).includes(GATEWAY), "m1 lists its component");

    await assert.rejects(attach(1), "a second connection for the domain is refused");
    assert.equal(await opened.at(-1)!.streamError("a second connection on m2"), "conflict");

    // Gone: a message for it is answered with a temporary error on the other node too.
    gw.write("</stream:stream>");
    const deadline = Date.now() + 5_000;
    while ((await readOwners(prefix, "component"))[GATEWAY] !== undefined) {
      assert.ok(Date.now() < deadline, "the component's claim was not released");
      await new Promise((r) => setTimeout(r, 100));
    }
    const unlistedBy = Date.now() + 5_000;
    while ((await discoItems(bob)).includes(GATEWAY)) {
      assert.ok(Date.now() < unlistedBy, "m2 still lists the component that left");
      await new Promise((r) => setTimeout(r, 200));
    }
    await bob.send(
      xml("message", { to: `bob%irc.example@${GATEWAY}`, id: "nobody-there" }, xml("body", {}, "anyone?")),
    );
    const bounced = await bob.next(
      (el) => el.name === "message" && el.attrs.type === "error" && el.attrs.id === "nobody-there",
      "the error for a message to the absent component",
    );
    assert.equal(bounced.getChild("error")?.attrs.type, "wait", bounced.toString());
    assert.equal(bounced.getChild("error")?.getChildElements()[0]?.name, "service-unavailable");
  });

  test("attached again to m2: users on both nodes reach it there", async () => {
    const gw = await attach(1);
    assert.deepEqual(await readOwners(prefix, "component"), { [GATEWAY]: "m2" });
    await reaches(alice, gw, "again from alice on m1");
    await reaches(bob, gw, "again from bob on m2");
  });
});
