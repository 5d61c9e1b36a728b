/**
 * Avatar conversion (XEP-0398) with a stock client: two slixmpp users (Debian's
 * python3-slixmpp, its own XEP-0084, XEP-0153 and XEP-0054 plugins) with a mutual
 * subscription. A vCard avatar alice sets with XEP-0153 reaches bob's XEP-0084 plugin as
 * a metadata notification whose data he fetches; an avatar bob publishes over PEP is the
 * PHOTO of his vCard when alice reads it; the account advertises the conversion.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is } from "../helpers/stanza.js";

const PW = { alice: "alice-avatar-secret", bob: "bob-avatar-secret" };
const ALICE = "alice@localhost";
const BOB = "bob@localhost";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const METADATA = "urn:xmpp:avatar:metadata";
const DATA = "urn:xmpp:avatar:data";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);
const GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
const sha1 = (b: Buffer) => createHash("sha1").update(b).digest("hex");

const metadataInfo = (el: Element) => {
  const items = el.is("message") ? el.getChild("event", EVENT)?.getChild("items") : undefined;
  if (items?.attrs.node !== METADATA) return undefined;
  return items.getChild("item")?.getChild("metadata", METADATA)?.getChild("info");
};

describe("avatar conversion with slixmpp", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: SlixPeer;
  let bob: SlixPeer;

  before(async () => {
    server = await startServer({ name: "avatar-conversion", users: PW });
    alice = await connectSlix(server, { user: "alice", password: PW.alice, resource: "home" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work", mechanism: "auto" });
    await alice.request("roster_get");
    await bob.request("roster_get");
    await alice.command("presence");
    await bob.command("presence");
    await alice.command("subscription", { to: BOB, type: "subscribe" });
    await bob.next(is.presence({ from: ALICE, type: "subscribe" }), "alice's request");
    await bob.command("subscription", { to: ALICE, type: "subscribed" });
    await bob.command("subscription", { to: ALICE, type: "subscribe" });
    await alice.next(is.presence({ from: BOB, type: "subscribe" }), "bob's request");
    await alice.command("subscription", { to: BOB, type: "subscribed" });
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await server?.stop();
  });

  test("the account advertises the conversion", async () => {
    const info = await alice.request("disco_info", { to: ALICE });
    assert.match(info.toString(), /urn:xmpp:pep-vcard-conversion:0/);
  });

  test("a vCard avatar alice sets reaches bob's XEP-0084 plugin", async () => {
    await bob.command("avatar", { action: "interest" });
    await bob.command("presence");
    await alice.next(is.presence({ from: bob.jid }), "bob's presence with his capabilities");
    await alice.command("avatar", { action: "vcard_photo", data: PNG.toString("base64"), type: "image/png" });
    const event = await bob.next((el) => metadataInfo(el)?.attrs.id === sha1(PNG), "alice's avatar metadata");
    assert.equal(event.attrs.from, ALICE);
    assert.equal(metadataInfo(event)!.attrs.type, "image/png");
    const data = await bob.request("avatar", { action: "retrieve", to: ALICE, item: sha1(PNG) });
    const text = data
      .getChild("pubsub", PUBSUB)
      ?.getChild("items")
      ?.getChild("item")
      ?.getChildText("data", DATA);
    assert.deepEqual(Buffer.from(text ?? "", "base64"), PNG, data.toString());
  });

  test("an avatar bob publishes over PEP is the PHOTO of his vCard", async () => {
    const reply = await bob.request("avatar", {
      action: "publish",
      data: GIF.toString("base64"),
      type: "image/gif",
      open: true,
    });
    assert.match(reply.toString(), /type="result"/, reply.toString());
    const vcard = await alice.request("vcard_get", { to: BOB });
    const photo = vcard.getChild("vCard", "vcard-temp")?.getChild("PHOTO");
    assert.equal(photo?.getChildText("TYPE"), "image/gif", vcard.toString());
    assert.deepEqual(Buffer.from(photo?.getChildText("BINVAL") ?? "", "base64"), GIF);
  });
});
