/**
 * Two cluster nodes (`switchboard start --cluster … --node …`, one PostgreSQL database and one
 * NATS of the run's own): what crosses between nodes beyond routing. A server IQ request to a
 * client on the other node gets its answer back (personal eventing learns a slixmpp contact's
 * interests across nodes); a stream management session resumes on the other node, with the
 * stanzas its client had not acknowledged; and `cluster drain` sends a node's clients to the
 * other node (`see-other-host`, which slixmpp follows and resumes its session there), then the
 * node leaves the cluster; the last node drains with `system-shutdown`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { client } from "@xmpp/client";
import { Ajv2020 } from "ajv/dist/2020.js";
import { startOnline } from "../../sdk/start-online.js";
import { outputSchema } from "../../src/http/api/openapi.js";
import { allCommands } from "../../src/server/parts.js";
import { connectJs } from "../helpers/js-client.js";
import {
  clusterPrefix,
  NATS_URL,
  natsSkip,
  readClusterBuckets,
  removeClusterBuckets,
  waitForNodes,
} from "../helpers/nats.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { RawConnection } from "../helpers/raw-client.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { SmRaw } from "../helpers/sm-raw.js";
import { type Element, is, xml } from "../helpers/stanza.js";

const PW = "cluster-handover-pw";
const USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"];
const PER_ADDRESS = 4;
const PER_ACCOUNT = 3;
const jid = (user: string) => `${user}@localhost`;
const NICK = "http://jabber.org/protocol/nick";
const EVENT = "http://jabber.org/protocol/pubsub#event";

/** Fails unless `cluster drain --json` printed what its published output schema describes. */
function assertDrainReport(report: unknown): void {
  const def = allCommands.find((c) => c.name.join(" ") === "cluster drain");
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(outputSchema(def!)!);
  assert.ok(validate(report), `cluster drain --json: ${JSON.stringify(validate.errors)}`);
}

const skip = (await postgresSkip()) || (await natsSkip()) || slixSkip;

const nickEvent = (el: Element) => {
  const items = el.is("message") ? el.getChild("event", EVENT)?.getChild("items") : undefined;
  return items?.attrs.node === NICK ? items.getChild("item")?.getChildText("nick", NICK) : undefined;
};

describe("two cluster nodes: IQ results, stream management across nodes, drain", { skip }, () => {
  let database: TestDatabase;
  const prefix = clusterPrefix("handover");
  const nodes: TestServer[] = [];
  const peers: { close(): Promise<void> }[] = [];
  const raws: SmRaw[] = [];
  const keep = <T extends { close(): Promise<void> }>(p: T): T => {
    peers.push(p);
    return p;
  };
  const slix = (node: number, user: string, resource: string, plugins: string[] = []) =>
    connectSlix(nodes[node]!, { user, password: PW, resource, mechanism: "auto", plugins }).then(keep);

  function startNode(name: string): Promise<TestServer> {
    return startServer({
      name: `cluster-handover-${name}`,
      storage: database.url,
      extraArgs: ["--cluster", NATS_URL, "--node", name],
      config: {
        cluster: { prefix },
        streamManagement: { resumeTimeoutSeconds: 60 },
        limits: {
          authFailuresPerAddress: PER_ADDRESS,
          authFailuresPerAccount: PER_ACCOUNT,
          authSlowdownMaxSeconds: 2,
        },
      },
    });
  }

  async function cli(args: string[]): Promise<Record<string, unknown>> {
    const out = await runCli([...args, "--storage", database.url, "--json"], nodes[0]!.logFile);
    return JSON.parse(out) as Record<string, unknown>;
  }

  before(async () => {
    database = await createTestDatabase("cluster_handover");
    process.env.SWITCHBOARD_STORAGE_URL = database.url;
    process.env.SWITCHBOARD_CLUSTER_PREFIX = prefix;
    nodes.push(await startNode("h1"));
    nodes.push(await startNode("h2"));
    for (const user of USERS) await nodes[0]!.addUser(user, PW);
    await waitForNodes(prefix, 2);
  });

  after(async () => {
    for (const r of raws) r.cut();
    for (const p of peers) await p.close().catch(() => undefined);
    for (const n of nodes) if (n.running) await n.stop().catch(() => n.kill());
    await removeClusterBuckets(prefix).catch(() => undefined);
    await database?.drop();
  });

  test("a server request to a client on the other node gets its answer: PEP learns a contact's interests across nodes", async (t) => {
    let alice = await slix(0, "alice", "home");
    const bob = await slix(1, "bob", "work");
    // Closed whatever happens, so the next test starts with no session of this one.
    t.after(async () => {
      await alice.close().catch(() => undefined);
      await bob.close().catch(() => undefined);
    });
    await alice.request("roster_get");
    await bob.request("roster_get");
    await alice.command("presence");
    await bob.command("presence");
    await alice.command("subscription", { to: jid("bob"), type: "subscribe" });
    await bob.next(is.presence({ from: jid("alice"), type: "subscribe" }), "alice's request");
    await bob.command("subscription", { to: jid("alice"), type: "subscribed" });
    await bob.command("subscription", { to: jid("alice"), type: "subscribe" });
    await alice.next(is.presence({ from: jid("bob"), type: "subscribe" }), "bob's request");
    await alice.command("subscription", { to: jid("bob"), type: "subscribed" });
    // Bob's client shows its interest in nicknames in its capabilities (on h2).
    await bob.command("pep", { action: "interest" });
    await bob.command("presence");
    // Alice comes online again on h1: h1 answers her probe with bob's presence and asks bob's
    // client (on h2) what its capabilities mean; the answer must come back to h1.
    await alice.close();
    alice = await slix(0, "alice", "home");
    await alice.request("roster_get");
    await alice.command("presence");
    await alice.next(is.presence({ from: bob.jid }), "bob's presence with his capabilities");
    const started = Date.now();
    let event: Element | undefined;
    // h1 learns bob's interests once his client answered; a publish before that notifies nobody.
    for (let attempt = 0; attempt < 8 && !event; attempt++) {
      const reply = await alice.request("pep", { action: "publish_nick", nick: `Ally ${attempt}` });
      assert.match(String(reply), /type="result"/, String(reply));
      event = await bob
        .next((el) => nickEvent(el) === `Ally ${attempt}`, "alice's nickname event", 1_000)
        .catch(() => undefined);
    }
    assert.ok(event, "bob never got alice's nickname: h1 did not learn his interests");
    assert.equal(event.attrs.from, jid("alice"));
    assert.ok(Date.now() - started < 8_000, "learnt well before the request's 10 s timeout");
    await alice.close();
    await bob.close();
  });

  test("a stream management session resumes on the other node with what its client had not acknowledged", async (t) => {
    const first = await SmRaw.login(nodes[0]!, "carol", PW, "phone");
    raws.push(first);
    const enabled = await first.enable({ resume: true });
    assert.ok(enabled.id, "resumable");
    const dave = keep(await connectJs(nodes[1]!, { user: "dave", password: PW, resource: "desk" }));
    const say = (body: string) =>
      dave.send(xml("message", { to: `${jid("carol")}/phone`, type: "chat" }, xml("body", {}, body)));
    await say("before the cut");
    await first.raw.waitFor(/before the cut/, "the first message on h1");
    first.ack();
    await first.sync();
    const h = first.handled;
    first.cut();
    // The session is kept on h1 (hibernated): what is sent meanwhile waits there.
    await new Promise((r) => setTimeout(r, 300));
    await say("while away");
    await dave.sync();

    const second = await SmRaw.authenticate(nodes[1]!, "carol", PW, "carol resuming on h2");
    raws.push(second);
    const movedAt = performance.now();
    const outcome = await second.resume(enabled.id!, h);
    const movedMs = performance.now() - movedAt;
    assert.ok(outcome.resumed, `resumed on h2: ${outcome.failed}`);
    assert.equal(outcome.resumed.previd, enabled.id);
    await second.raw.waitFor(/while away/, "the unacknowledged message, again, on h2");
    assert.equal(second.count("before the cut"), 0, "what the client acknowledged is not sent again");
    // The full JID now lives on h2: new messages go there, and the directory says so.
    await say("after the move");
    await second.raw.waitFor(/after the move/, "a new message on h2");
    const buckets = await readClusterBuckets(prefix);
    assert.equal(buckets.sessions.h1 ?? 0, 0, `carol's session left h1: ${JSON.stringify(buckets)}`);
    // The server's count of what the client sent continues: one ping on the first stream.
    assert.equal(outcome.resumed.h, "1");
    assert.equal(await second.askAck(), 1, "the count moved with the session");
    // A second resumption of the same id (it moved) is not possible on h1 any more.
    const late = await SmRaw.authenticate(nodes[0]!, "carol", PW, "carol, late, on h1");
    raws.push(late);
    // The same client may move it back (XEP-0198 allows a resumption while the old stream lives:
    // that stream gets `conflict`), with what the stream on h2 was sent and not acknowledged.
    const back = await late.resume(enabled.id!, h);
    assert.ok(back.resumed, `moved back to h1: ${back.failed}`);
    await late.raw.waitFor(/after the move/, "the unacknowledged message, on h1 again");
    await second.raw.waitFor(/<conflict xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/, "conflict on h2");
    // Resumption on the node holding the session, for comparison, in the same run.
    late.cut();
    await new Promise((r) => setTimeout(r, 300));
    const local = await SmRaw.authenticate(nodes[0]!, "carol", PW, "carol resuming on h1 again");
    raws.push(local);
    const localAt = performance.now();
    const here = await local.resume(enabled.id!, late.handled);
    const localMs = performance.now() - localAt;
    assert.ok(here.resumed, `resumed on the node holding it: ${here.failed}`);
    t.diagnostic(
      `<resume/> answered in ${movedMs.toFixed(1)} ms on another node (the session moves) vs ${localMs.toFixed(1)} ms on the node holding it (${(movedMs / localMs).toFixed(1)}x)`,
    );
  });

  /** One PLAIN login attempt on node `node` from the loopback address `from`. */
  async function attempt(node: number, from: string, user: string, password: string) {
    const c = await RawConnection.open(nodes[node]!, {
      label: `${user} from ${from} on h${node + 1}`,
      localAddress: from,
    });
    try {
      const start = Date.now();
      const r = await c.tryPlain("localhost", user, password);
      return { ...r, ms: Date.now() - start };
    } finally {
      c.destroy();
    }
  }

  test("failed logins count across the cluster: a guesser spreading its attempts over both nodes is refused on both", async () => {
    const guesser = "127.0.0.77";
    for (let i = 0; i < PER_ADDRESS; i++) {
      const r = await attempt(i % 2, guesser, "hank", `wrong-${i}`);
      assert.equal(r.outcome, "not-authorized", `guess ${i} on h${(i % 2) + 1}`);
    }
    // Two failures on each node: each node alone would still take more.
    await new Promise((r) => setTimeout(r, 200));
    for (const node of [0, 1]) {
      const refused = await attempt(node, guesser, "hank", PW);
      assert.equal(refused.outcome, "temporary-auth-failure", `refused on h${node + 1}`);
      assert.match(refused.text, /too many failed attempts from this address/);
    }
    // An account guessed at through both nodes from many addresses is slowed on both for new addresses.
    for (let i = 0; i < PER_ACCOUNT + 1; i++) {
      assert.equal(
        (await attempt(i % 2, `127.0.0.${110 + i}`, "alice", `guess-${i}`)).outcome,
        "not-authorized",
      );
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const node of [0, 1]) {
      const fresh = await attempt(node, `127.0.0.${130 + node}`, "alice", PW);
      assert.equal(fresh.outcome, "success");
      assert.ok(fresh.ms >= 900, `a new address is slowed on h${node + 1} too (${fresh.ms} ms)`);
    }
  });

  test("cluster drain sends a node's clients to the other node; slixmpp follows and resumes there; the node leaves", async () => {
    const erin = (await slix(1, "erin", "laptop", ["xep_0198"])) as SlixPeer;
    await erin.command("presence");
    const deadline = Date.now() + 5_000;
    while (!erin.timeline.includes("sm_enabled")) {
      if (Date.now() > deadline) throw new Error("slixmpp did not enable stream management");
      await new Promise((r) => setTimeout(r, 50));
    }
    // @xmpp/client at its defaults: stream management on, see-other-host followed by the library.
    const gina = client({
      service: `xmpp://127.0.0.1:${nodes[1]!.c2sPort}`,
      domain: "localhost",
      resource: "tablet",
      timeout: 10_000,
      credentials: (authenticate) => authenticate({ username: "gina", password: PW }, "SCRAM-SHA-1"),
    });
    const ginaLog: string[] = [];
    gina.on("error", (err: Error) => void ginaLog.push(`error ${err.message}`));
    gina.on("status", (st: string) => void ginaLog.push(st));
    gina.on("nonza", (el: Element) => void ginaLog.push(el.toString().slice(0, 200)));
    const ginaGot: Element[] = [];
    gina.on("stanza", (el: Element) => void ginaGot.push(el));
    await startOnline(gina);
    await gina.send(xml("presence"));
    const smBy = Date.now() + 5_000;
    while (!(gina.streamManagement.enabled && gina.streamManagement.id)) {
      if (Date.now() > smBy)
        throw new Error(
          `@xmpp/client did not enable resumption: ${JSON.stringify({ enabled: gina.streamManagement.enabled, id: gina.streamManagement.id })}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    let ginaResumed = false;
    gina.streamManagement.on("resumed", () => {
      ginaResumed = true;
    });
    peers.push({
      close: async () => {
        gina.reconnect.stop();
        await gina.stop().catch(() => undefined);
      },
    });
    const plain = await SmRaw.login(nodes[1]!, "frank", PW, "plain");
    raws.push(plain);
    const alice = keep(await connectJs(nodes[0]!, { user: "alice", password: PW, resource: "sender" }));

    const report = (await cli([
      "cluster",
      "drain",
      "h2",
      "--cluster",
      NATS_URL,
      "--grace",
      "20",
      "--wait",
    ])) as {
      condition: string;
      redirectedTo: string;
      address: string;
      left: boolean;
      streams: number;
    };
    assertDrainReport(report);
    // Recorded in the audit log like every state-changing command.
    const audit = (await cli(["audit", "list", "--kind", "cluster.drain"])) as {
      entries?: { data: { subject: string } }[];
    };
    assert.ok(
      JSON.stringify(audit).includes("node:h2"),
      `cluster drain left no audit record: ${JSON.stringify(audit)}`,
    );
    const h1Address = `127.0.0.1:${nodes[0]!.c2sPort}`;
    assert.equal(report.condition, "see-other-host");
    assert.equal(report.redirectedTo, "h1");
    assert.equal(report.address, h1Address);
    assert.equal(report.left, true);
    assert.ok(report.streams >= 2, JSON.stringify(report));

    // A client without stream management gets the other node's address and its session ends.
    await plain.raw.waitFor(
      new RegExp(
        `<see-other-host xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]>${h1Address.replace(/\./g, "\\.")}</see-other-host>`,
      ),
      "see-other-host naming h1",
    );
    // slixmpp follows the redirect and resumes its session on h1.
    assert.equal(erin.redirectedTo, h1Address);
    const resumedBy = Date.now() + 15_000;
    while (!erin.timeline.includes("session_resumed")) {
      if (Date.now() > resumedBy)
        throw new Error(`slixmpp did not resume on h1: ${erin.timeline.join(", ")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await alice.send(xml("message", { to: erin.jid, type: "chat" }, xml("body", {}, "after the drain")));
    await erin.next(is.message({ body: "after the drain" }), "a message on h1 after the drain");
    // @xmpp/client follows the redirect by itself and resumes too.
    const jsBy = Date.now() + 15_000;
    while (!ginaResumed) {
      if (Date.now() > jsBy) throw new Error(`@xmpp/client did not resume on h1: ${ginaLog.join(" | ")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await alice.send(
      xml("message", { to: `${jid("gina")}/tablet`, type: "chat" }, xml("body", {}, "to gina")),
    );
    const ginaBy = Date.now() + 10_000;
    while (!ginaGot.some((el) => el.is("message") && el.getChildText("body") === "to gina")) {
      if (Date.now() > ginaBy) throw new Error("@xmpp/client got no message on h1");
      await new Promise((r) => setTimeout(r, 50));
    }

    // h2 left the cluster: no heartbeat, no sessions; its process still runs, taking nobody.
    const buckets = await readClusterBuckets(prefix);
    assert.deepEqual(buckets.nodes, ["h1"]);
    assert.equal(buckets.sessions.h2 ?? 0, 0);
    assert.ok(nodes[1]!.running, "a drained node keeps running until it is stopped");
    await assert.rejects(
      connectJs(nodes[1]!, { user: "dave", password: PW, resource: "late" }),
      "a drained node takes no new connections",
    );
  });

  test("the last node drains with system-shutdown", async () => {
    const last = await SmRaw.login(nodes[0]!, "bob", PW, "last");
    raws.push(last);
    const report = (await cli([
      "cluster",
      "drain",
      "h1",
      "--cluster",
      NATS_URL,
      "--grace",
      "0",
      "--wait",
    ])) as {
      condition: string;
      redirectedTo?: string;
    };
    assertDrainReport(report);
    assert.equal(report.condition, "system-shutdown");
    assert.equal(report.redirectedTo, undefined);
    await last.raw.waitFor(
      /<system-shutdown xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/,
      "system-shutdown",
    );
    assert.deepEqual((await readClusterBuckets(prefix)).nodes, []);
  });
});
