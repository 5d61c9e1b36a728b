/**
 * One-to-one messages (RFC 6121 §5, delivery rules §8.5) between @xmpp/client
 * and slixmpp: both directions, full and bare JIDs, priorities (highest gets
 * bare-JID messages, negative priority gets none), offline storage with
 * XEP-0203 delay stamps delivered in order at the next login (XEP-0160).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, newId, stanzaError, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-chat-pw", bob: "bob-chat-pw", carol: "carol-chat-pw", dave: "dave-chat-pw" };

function chat(to: string, body: string, type = "chat"): Element {
  return xml("message", { to, type, id: newId("msg") }, xml("body", {}, body));
}

/** Checks a XEP-0203 <delay/> added by the server when it stored the message. */
function assertServerDelay(msg: Element, sentAfter: number, sentBefore: number): void {
  const delay = msg.getChild("delay", NS.delay);
  assert.ok(delay, `no <delay xmlns='${NS.delay}'/> on an offline message: ${msg}`);
  assert.equal(delay.attrs.from, "localhost", "the delaying entity is the server (XEP-0203 §3)");
  const stamp = delay.attrs.stamp ?? "";
  assert.match(stamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, "XEP-0082 DateTime in UTC");
  const t = Date.parse(stamp);
  assert.ok(
    t >= sentAfter - 2000 && t <= sentBefore + 2000,
    `stamp ${stamp} is not the time the message was stored`,
  );
}

describe("chat messages", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: JsPeer;
  let bob: SlixPeer;

  before(async () => {
    server = await startServer({ name: "chat", users: PW });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "home" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work" });
    await alice.send(xml("presence"));
    await bob.command("presence");
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await server.stop();
  });

  test("@xmpp/client → slixmpp, to the full JID", async () => {
    await alice.send(chat(bob.jid, "hello bob"));
    const got = await bob.next(is.message({ body: "hello bob" }), "alice's message");
    assert.equal(got.attrs.from, alice.jid, "the server stamps the sender's full JID");
    assert.equal(got.attrs.type, "chat");
  });

  test("slixmpp → @xmpp/client, to the bare JID", async () => {
    await bob.command("message", { to: "alice@localhost", body: "hi alice, from python" });
    const got = await alice.next(is.message({ body: "hi alice, from python" }), "bob's message");
    assert.equal(got.attrs.from, bob.jid);
  });

  test("bare JID with two resources: only the highest priority one gets it (RFC 6121 §8.5.2.1.1)", async () => {
    const high = await connectJs(server, { user: "bob", password: PW.bob, resource: "high" });
    try {
      await high.send(xml("presence", {}, xml("priority", {}, "5")));
      await high.sync();
      await bob.command("presence", { priority: 1 });
      await bob.sync();
      await alice.send(chat("bob@localhost", "to the best resource"));
      await high.next(
        is.message({ body: "to the best resource" }),
        "the bare-JID message on the priority-5 resource",
      );
      await bob.none(is.message({ body: "to the best resource" }), "the message on the priority-1 resource");
      // A full JID reaches exactly that resource, whatever its priority.
      await alice.send(chat(bob.jid, "to the low one"));
      await bob.next(is.message({ body: "to the low one" }), "the full-JID message");
      await high.none(is.message({ body: "to the low one" }), "a copy on the other resource");
    } finally {
      await high.close();
      await bob.command("presence", { priority: 0 });
      await bob.sync();
    }
  });

  test("negative priority: no bare-JID messages (kept offline), full-JID messages still arrive", async () => {
    const neg = await connectJs(server, { user: "carol", password: PW.carol, resource: "hidden" });
    await neg.send(xml("presence", {}, xml("priority", {}, "-1")));
    await neg.sync();
    const t0 = Date.now();
    await alice.send(chat("carol@localhost", "for carol's bare JID"));
    const t1 = Date.now();
    await neg.none(
      is.message({ body: "for carol's bare JID" }),
      "a bare-JID message on a negative-priority resource",
    );
    await alice.send(chat("carol@localhost/hidden", "for carol's full JID"));
    await neg.next(is.message({ body: "for carol's full JID" }), "the full-JID message");
    await neg.close();
    // RFC 6121 §8.5.2.1.1: "as if there were no available resources" → offline storage.
    const back = await connectJs(server, { user: "carol", password: PW.carol, resource: "back" });
    try {
      await back.send(xml("presence"));
      const stored = await back.next(
        is.message({ body: "for carol's bare JID" }),
        "the message kept offline",
      );
      assertServerDelay(stored, t0, t1);
    } finally {
      await back.close();
    }
  });

  test("offline: stored, then delivered at the next login with <delay/> from the server, in order", async () => {
    const bodies = ["offline one", "offline two", "offline three (to a full JID)"];
    const t0 = Date.now();
    await alice.send(chat("dave@localhost", bodies[0]!));
    await alice.send(chat("dave@localhost", bodies[1]!));
    // RFC 6121 §8.5.3.2.1: a chat message to an unavailable full JID is handled as for the bare JID.
    await alice.send(chat("dave@localhost/laptop", bodies[2]!));
    // A headline is never stored (RFC 6121 §8.5.2.2.1: silently ignored without available resources).
    await alice.send(chat("dave@localhost", "headline news", "headline"));
    const t1 = Date.now();
    await alice.none(
      (el) => el.name === "message" && el.attrs.type === "error",
      "an error for messages to an offline contact",
    );

    const dave = await connectSlix(server, { user: "dave", password: PW.dave, resource: "phone" });
    try {
      await dave.command("presence");
      const got: Element[] = [];
      for (const body of bodies) got.push(await dave.next(is.message({ body }), `offline message "${body}"`));
      const order = got.map((m) => dave.stanzas.all().indexOf(m));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        "offline messages arrive in the order sent",
      );
      for (const m of got) {
        assert.equal(m.attrs.from, alice.jid);
        assertServerDelay(m, t0, t1);
      }
      await dave.none(is.message({ body: "headline news" }), "a stored headline");
    } finally {
      await dave.close();
    }
    // Delivered once: the store is empty now.
    const again = await connectSlix(server, { user: "dave", password: PW.dave, resource: "phone2" });
    try {
      await again.command("presence");
      await again.none(is.anyChat(), "offline messages delivered a second time", 1500);
    } finally {
      await again.close();
    }
  });

  test("messages to an offline contact produce no error and are kept for a client that logs in without presence", async () => {
    // XEP-0160: offline messages wait for initial presence, not for resource binding.
    await alice.send(chat("dave@localhost", "wait for presence"));
    const dave = await connectJs(server, { user: "dave", password: PW.dave, resource: "quiet" });
    try {
      await dave.none(is.message({ body: "wait for presence" }), "offline messages before initial presence");
      await dave.send(xml("presence"));
      const m = await dave.next(
        is.message({ body: "wait for presence" }),
        "the offline message after initial presence",
      );
      assert.equal(stanzaError(m), undefined);
    } finally {
      await dave.close();
    }
  });
});
