/**
 * More than the send buffer (limits.maxSendBufferBytes, here 1 MiB) for a client that
 * reads: an offline backlog (slixmpp as Debian installs it, without stream management, and
 * @xmpp/client with it), an archive page, and a resumption's unacknowledged queue (XEP-0198)
 * are written as fast as the client takes them, whole and in order; the client stays
 * connected, and nothing is left in storage or lost.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import type { Peer } from "../helpers/peer.js";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import { SmRaw } from "../helpers/sm-raw.js";
import { is, xml } from "../helpers/stanza.js";

const PW = {
  alice: "alice-backlog-pw",
  bob: "bob-backlog-pw",
  carol: "carol-backlog-pw",
  dave: "dave-backlog-pw",
  erin: "erin-backlog-pw",
};
const COUNT = 40;
/** 40 × 100 KB = 4 MB waiting: four times the send buffer. */
const body = (i: number) => `${i} ${"y".repeat(100_000)}`;

describe("more than the send buffer for a client that reads", () => {
  let server: TestServer;
  let alice: JsPeer;

  before(async () => {
    server = await startServer({
      name: "send-buffer-backlog",
      users: PW,
      // Alice writes as fast as she can; a reader may have 1 MiB waiting.
      config: { limits: { bytesPerSecond: 0, maxSendBufferBytes: 1024 * 1024 } },
      extraArgs: ["--log-level", "info"],
    });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "desk" });
  });
  after(async () => {
    await alice?.close();
    await server?.stop();
  });

  async function fill(user: string): Promise<void> {
    for (let i = 0; i < COUNT; i++)
      await alice.send(xml("message", { to: `${user}@localhost`, type: "chat" }, xml("body", {}, body(i))));
    await alice.sync();
  }

  async function receiveAll(peer: Peer): Promise<void> {
    for (let i = 0; i < COUNT; i++) {
      const m = await peer.next(is.message(), `offline message ${i} of ${COUNT}`, 30_000);
      assert.equal(m.getChildText("body"), body(i), `message ${i} whole and in order`);
    }
  }

  test("slixmpp (no stream management): all of it, once, and the client stays connected", {
    skip: slixSkip,
  }, async () => {
    await fill("bob");
    const bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "laptop" });
    await bob.command("presence");
    await receiveAll(bob);
    await bob.sync();
    await bob.close();
    assert.doesNotMatch(server.logTail(200), /does not read its stream/);
    const again = await connectSlix(server, { user: "bob", password: PW.bob, resource: "laptop" });
    await again.command("presence");
    await again.none(is.message(), "a second copy", 1_500);
    await again.close();
  });

  test("@xmpp/client (stream management): all of it, once, and the client stays connected", async () => {
    await fill("carol");
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "phone" });
    await carol.send(xml("presence"));
    await receiveAll(carol);
    await carol.sync();
    await carol.close();
    assert.doesNotMatch(server.logTail(200), /does not read its stream/);
    const again = await connectJs(server, { user: "carol", password: PW.carol, resource: "phone" });
    await again.send(xml("presence"));
    await again.none(is.message(), "a second copy", 1_500);
    await again.close();
  });

  test("an archive page larger than the send buffer: every result, and the client stays connected", async () => {
    // The tests above made Alice's archive hold at least COUNT messages of 100 KB she sent.
    const reader = await connectJs(server, { user: "alice", password: PW.alice, resource: "reader" });
    const queryid = "large-page";
    const reply = reader.iq(
      xml(
        "iq",
        { type: "set" },
        xml(
          "query",
          { xmlns: "urn:xmpp:mam:2", queryid },
          xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, xml("max", {}, String(COUNT))),
        ),
      ),
      30_000,
    );
    for (let i = 0; i < COUNT; i++) {
      const m = await reader.next(
        (el) => el.getChild("result", "urn:xmpp:mam:2")?.attrs.queryid === queryid,
        `archive result ${i} of ${COUNT}`,
        30_000,
      );
      assert.match(m.toString(), /y{100000}/, `result ${i} whole`);
    }
    assert.equal((await reply).attrs.type, "result");
    await reader.close();
    assert.doesNotMatch(server.logTail(200), /does not read its stream/);
  });

  test("answers to pipelined requests, more than the send buffer in one turn: all of them, and the client stays connected", async () => {
    const erin = await RawConnection.open(server, { label: "erin (pipelining)" });
    try {
      await erin.login(server, "erin", PW.erin, "batch");
      // vCards are limited to 64 KiB each.
      const description = "v".repeat(60_000);
      erin.write(
        `<iq type='set' id='vcard-set'><vCard xmlns='vcard-temp'><DESC>${description}</DESC></vCard></iq>`,
      );
      const stored = await erin.waitFor(/<iq [^>]*id=['"]vcard-set['"][^>]*>/, "the vCard stored");
      assert.match(stored[0], /type=['"]result['"]/);
      // Forty requests in one write, answered in one turn of the server's event loop: 2.4 MB of
      // answers against a 1 MiB send buffer, for a client that reads all the time.
      const REQUESTS = 40;
      let batch = "";
      for (let i = 0; i < REQUESTS; i++)
        batch += `<iq type='get' id='vcard-${i}'><vCard xmlns='vcard-temp'/></iq>`;
      const start = erin.received.length;
      erin.write(batch);
      await erin.waitFor(
        new RegExp(`id=['"]vcard-${REQUESTS - 1}['"][^]*?</iq>`),
        "the answer to the last request",
        30_000,
      );
      const answers = erin.received.slice(start).split(description).length - 1;
      assert.equal(answers, REQUESTS, "every request answered with the whole vCard");
      assert.equal(erin.closed, false, "still connected");
      assert.doesNotMatch(server.logTail(200), /does not read its stream/);
    } finally {
      erin.destroy();
    }
  });

  test("a resumption's unacknowledged queue: whole, in order, then what was sent meanwhile", async () => {
    const first = await SmRaw.login(server, "dave", PW.dave, "phone");
    const enabled = await first.enable({ resume: true });
    await first.sync();
    const handled = first.handled;
    first.cut();
    // The server notices the cut and keeps the session; what comes now waits for the client.
    await new Promise((r) => setTimeout(r, 500));
    const big = (i: number) => `big-${i} ${"z".repeat(100_000)}`;
    for (let i = 0; i < COUNT; i++)
      await alice.send(xml("message", { to: "dave@localhost/phone", type: "chat" }, xml("body", {}, big(i))));
    await alice.sync();

    const second = await SmRaw.authenticate(server, "dave", PW.dave);
    const { resumed } = await second.resume(enabled.id!, handled);
    assert.ok(resumed, "resumed");
    await alice.send(
      xml("message", { to: "dave@localhost/phone", type: "chat" }, xml("body", {}, "sent during the resend")),
    );
    await second.raw.waitFor(/sent during the resend/, "the message sent during the resend", 30_000);
    const text = second.raw.received;
    let at = -1;
    for (let i = 0; i < COUNT; i++) {
      const next = text.indexOf(`big-${i} `);
      assert.ok(next > at, `message ${i} again, after message ${i - 1}`);
      assert.equal(second.count(`big-${i} `), 1, `message ${i} once`);
      at = next;
    }
    assert.ok(text.indexOf("sent during the resend") > at, "the new message after the queue");
    assert.equal(second.raw.closed, false, "the resumed client is still connected");
    assert.doesNotMatch(server.logTail(200), /does not read its stream/);
    second.ack();
    await second.closeCleanly();
  });
});
