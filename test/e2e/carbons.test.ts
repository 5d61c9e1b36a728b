/**
 * Message carbons (XEP-0280) with real clients: one account on two devices — slixmpp
 * (enabling carbons with its xep_0280 plugin) and @xmpp/client — talking with a third
 * client. Each device sees both sides of the conversation: received copies of what the
 * other device got, sent copies of what the other device sent, never a copy of its own
 * message, and no copy of a private message (<private/> + <no-copy/>).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, newId, parseXml, xml } from "../helpers/stanza.js";

const CARBONS = "urn:xmpp:carbons:2";
const FORWARD = "urn:xmpp:forward:0";
const PW = { alice: "alice-carbons-pw", bob: "bob-carbons-pw" };

/** A carbon of the given direction whose forwarded message has this body. */
const carbon =
  (direction: "sent" | "received", body: string) =>
  (el: Element): boolean =>
    el.name === "message" &&
    el
      .getChild(direction, CARBONS)
      ?.getChild("forwarded", FORWARD)
      ?.getChild("message")
      ?.getChildText("body") === body;

function forwarded(el: Element, direction: "sent" | "received"): Element {
  const inner = el.getChild(direction, CARBONS)?.getChild("forwarded", FORWARD)?.getChild("message");
  assert.ok(inner, `a forwarded message in ${el}`);
  return inner;
}

describe("message carbons across two resources", { skip: slixSkip }, () => {
  let server: TestServer;
  let phone: SlixPeer; // alice, slixmpp, priority 5
  let desk: JsPeer; // alice, @xmpp/client, priority 1
  let bob: JsPeer;

  before(async () => {
    server = await startServer({ name: "carbons", users: PW });
    phone = await connectSlix(server, { user: "alice", password: PW.alice, resource: "phone" });
    desk = await connectJs(server, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectJs(server, { user: "bob", password: PW.bob, resource: "work" });
    await phone.command("presence", { priority: 5 });
    await desk.send(xml("presence", {}, xml("priority", {}, "1")));
    await bob.send(xml("presence"));
    const enabled = parseXml((await phone.command("carbons", { enable: true }))!);
    assert.equal(enabled.attrs.type, "result", `slixmpp enabling carbons: ${enabled}`);
    const r = await desk.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: CARBONS })));
    assert.equal(r.attrs.type, "result", `@xmpp/client enabling carbons: ${r}`);
    await phone.sync();
    await desk.sync();
  });
  after(async () => {
    await phone?.close();
    await desk?.close();
    await bob?.close();
    await server?.stop();
  });

  test("the server advertises carbons", async () => {
    const info = parseXml((await phone.command("disco_info", { to: "localhost" }))!);
    const features = info
      .getChild("query", NS.discoInfo)
      ?.getChildren("feature")
      .map((f) => f.attrs.var);
    assert.ok(features?.includes(CARBONS), `features: ${features}`);
  });

  test("a message to the bare JID: the top resource gets it, the other device a received copy", async () => {
    await bob.send(
      xml("message", { to: "alice@localhost", type: "chat", id: newId() }, xml("body", {}, "hi alice")),
    );
    const original = await phone.next(
      is.message({ body: "hi alice" }),
      "the original on the priority-5 device",
    );
    assert.equal(original.attrs.from, bob.jid);
    const copy = await desk.next(carbon("received", "hi alice"), "a received carbon on the other device");
    assert.equal(copy.attrs.from, "alice@localhost", "carbons come from the account's bare JID");
    assert.equal(copy.attrs.to, desk.jid);
    assert.equal(forwarded(copy, "received").attrs.from, bob.jid);
    await desk.none(is.message({ body: "hi alice" }), "the original on the lower-priority device");
    await phone.none(carbon("received", "hi alice"), "a copy on the device that got the original");
  });

  test("what one device sends, the other sees as a sent copy; the sender gets none", async () => {
    await desk.send(
      xml("message", { to: bob.jid, type: "chat", id: newId() }, xml("body", {}, "from the desk")),
    );
    await bob.next(is.message({ body: "from the desk" }), "the desk's message");
    const copy = await phone.next(carbon("sent", "from the desk"), "a sent carbon on the phone (slixmpp)");
    assert.equal(copy.attrs.from, "alice@localhost");
    const inner = forwarded(copy, "sent");
    assert.equal(inner.attrs.from, desk.jid);
    assert.equal(inner.attrs.to, bob.jid);
    await phone.command("message", { to: bob.jid, body: "from the phone" });
    await bob.next(is.message({ body: "from the phone" }), "the phone's message");
    const back = await desk.next(
      carbon("sent", "from the phone"),
      "a sent carbon on the desk (@xmpp/client)",
    );
    assert.equal(forwarded(back, "sent").attrs.from, phone.jid);
    await desk.none(carbon("sent", "from the desk"), "a copy of the desk's own message");
  });

  test("a private message is not copied, and a device that disables carbons gets no more copies", async () => {
    await desk.send(
      xml(
        "message",
        { to: bob.jid, type: "chat", id: newId() },
        xml("body", {}, "off the record"),
        xml("private", { xmlns: CARBONS }),
        xml("no-copy", { xmlns: "urn:xmpp:hints" }),
      ),
    );
    await bob.next(is.message({ body: "off the record" }), "the private message");
    const disabled = parseXml((await phone.command("carbons", { enable: false }))!);
    assert.equal(disabled.attrs.type, "result");
    await desk.send(
      xml("message", { to: bob.jid, type: "chat", id: newId() }, xml("body", {}, "after disable")),
    );
    await bob.next(is.message({ body: "after disable" }), "the next message");
    await phone.none(carbon("sent", "off the record"), "a copy of the private message");
    await phone.none(carbon("sent", "after disable"), "a copy after disabling");
  });
});
