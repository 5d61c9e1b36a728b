/**
 * Client state indication (XEP-0352) with real clients: slixmpp (its xep_0352 plugin) goes
 * inactive while two contacts on @xmpp/client change their presence; it receives none of
 * it, then a contact's message arrives at once — with that contact's latest presence just
 * before it — and <active/> brings the rest: only the last presence per contact.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, newId, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-csi-pw", bob: "bob-csi-pw", carol: "carol-csi-pw" };
const show = (el: Element) => el.getChildText("show") ?? "available";
const presenceFrom = (bareJid: string) => is.presence({ fromBare: bareJid });

describe("client state indication", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: SlixPeer;
  let bob: JsPeer;
  let carol: JsPeer;

  before(async () => {
    server = await startServer({ name: "csi", users: PW });
    alice = await connectSlix(server, {
      user: "alice",
      password: PW.alice,
      resource: "phone",
      plugins: ["xep_0352"],
    });
    bob = await connectJs(server, { user: "bob", password: PW.bob, resource: "desk" });
    carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "laptop" });
    await bob.send(xml("presence"));
    await carol.send(xml("presence"));
    await alice.command("presence");
    // alice subscribes to bob's and carol's presence.
    for (const contact of [bob, carol]) {
      await alice.command("subscription", { to: contact.bareJid, type: "subscribe" });
      await contact.next(is.presence({ fromBare: "alice@localhost", type: "subscribe" }), "alice's request");
      await contact.send(xml("presence", { to: "alice@localhost", type: "subscribed" }));
      await alice.next(presenceFrom(contact.bareJid), `${contact.label}'s presence after approval`);
    }
    await alice.sync();
    alice.stanzas.drain();
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await carol?.close();
    await server?.stop();
  });

  test("presence is held while inactive; a message passes at once after its sender's presence; active flushes the rest", async () => {
    const seen = alice.stanzas.all().length;
    await alice.command("csi", { state: "inactive" });
    await alice.sync();
    await bob.send(xml("presence", {}, xml("show", {}, "away")));
    await carol.send(xml("presence", {}, xml("show", {}, "dnd")));
    await bob.send(xml("presence", {}, xml("show", {}, "xa")));
    await bob.sync();
    await carol.sync();
    await alice.none(presenceFrom("bob@localhost"), "bob's presence while inactive");
    await alice.none(presenceFrom("carol@localhost"), "carol's presence while inactive");

    await bob.send(
      xml("message", { to: "alice@localhost", type: "chat", id: newId() }, xml("body", {}, "are you there?")),
    );
    await alice.next(is.message({ body: "are you there?" }), "bob's message, not held back");
    const received = alice.stanzas.all().slice(seen);
    const bobs = received.filter(presenceFrom("bob@localhost"));
    assert.deepEqual(bobs.map(show), ["xa"], "only bob's latest presence, not the superseded 'away'");
    assert.ok(
      received.indexOf(bobs[0]!) < received.findIndex(is.message({ body: "are you there?" })),
      "bob's presence before his message",
    );
    assert.equal(received.filter(presenceFrom("carol@localhost")).length, 0, "carol's presence still held");

    await alice.command("csi", { state: "active" });
    const carols = await alice.next(presenceFrom("carol@localhost"), "carol's held presence on <active/>");
    assert.equal(show(carols), "dnd");
    await carol.send(xml("presence", {}, xml("show", {}, "chat")));
    assert.equal(
      show(await alice.next(presenceFrom("carol@localhost"), "carol's next presence, live")),
      "chat",
    );
  });
});
