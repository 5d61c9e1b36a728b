/**
 * Several resources of one account (RFC 6120 §7, RFC 6121 §4): each sees the
 * other's presence, priority decides who gets bare-JID messages, and binding
 * a resource that is already in use replaces the older session, which gets a
 * <conflict/> stream error (RFC 6120 §7.7.2.2, the server's chosen policy).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { is, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-resources-pw", bob: "bob-resources-pw" };

describe("resources", { skip: slixSkip }, () => {
  let server: TestServer;
  let r1: JsPeer;
  let r2: SlixPeer;
  let bob: JsPeer;

  before(async () => {
    server = await startServer({ name: "resources", users: PW });
    bob = await connectJs(server, { user: "bob", password: PW.bob, resource: "b" });
  });
  after(async () => {
    await r1?.close();
    await r2?.close();
    await bob?.close();
    await server.stop();
  });

  test("two resources bind distinct full JIDs and see each other's presence (RFC 6121 §4.2.2)", async () => {
    r1 = await connectJs(server, { user: "alice", password: PW.alice, resource: "r1" });
    await r1.send(xml("presence", {}, xml("priority", {}, "10")));
    await r1.sync();
    r2 = await connectSlix(server, { user: "alice", password: PW.alice, resource: "r2" });
    assert.equal(r1.jid, "alice@localhost/r1");
    assert.equal(r2.jid, "alice@localhost/r2");
    await r2.command("presence", { priority: 0 });
    await r1.next(is.presence({ from: r2.jid }), "the new resource's initial presence");
    const sibling = await r2.next(is.presence({ from: r1.jid }), "the other resource's current presence");
    assert.equal(sibling.getChildText("priority"), "10");
  });

  test("priority decides who gets bare-JID messages; changing it moves them", async () => {
    await bob.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, "first")));
    await r1.next(is.message({ body: "first" }), "the message on the priority-10 resource");
    await r2.none(is.message({ body: "first" }), "the message on the priority-0 resource");

    await r1.send(xml("presence", {}, xml("priority", {}, "-5")));
    await r1.sync();
    await bob.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, "second")));
    await r2.next(is.message({ body: "second" }), "the message, now that r1 has a negative priority");
    await r1.none(is.message({ body: "second" }), "the message on the negative-priority resource");
  });

  test("a second login with the same resource replaces the older session with a <conflict/> stream error", async () => {
    const newer = await connectJs(server, { user: "alice", password: PW.alice, resource: "r1" });
    try {
      assert.equal(newer.jid, "alice@localhost/r1", "the new session gets the resource it asked for");
      const condition = await r1.streamErrors.next(() => true, "the stream error on the replaced session");
      assert.equal(condition, "conflict");
      await r1.ended;
      await newer.send(xml("presence"));
      await bob.send(
        xml("message", { to: "alice@localhost/r1", type: "chat" }, xml("body", {}, "to the new r1")),
      );
      await newer.next(is.message({ body: "to the new r1" }), "the message on the new session");
    } finally {
      await newer.close();
    }
  });

  test("the same with slixmpp: the older r2 session gets <conflict/>", async () => {
    const newer = await connectSlix(server, { user: "alice", password: PW.alice, resource: "r2" });
    try {
      assert.equal(newer.jid, "alice@localhost/r2");
      const condition = await r2.streamErrors.next(
        () => true,
        "the stream error on the replaced slixmpp session",
      );
      assert.equal(condition, "conflict");
    } finally {
      await newer.close();
    }
  });
});
