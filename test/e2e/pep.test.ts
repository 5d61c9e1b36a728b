/**
 * Personal eventing with a stock client: two slixmpp users (Debian's python3-slixmpp, its
 * own XEP-0115, XEP-0163 and XEP-0172 plugins) with a mutual subscription. Bob's client
 * advertises interest in nicknames through its capabilities; alice publishes hers; bob
 * gets the notification, and when he comes back online, the last nickname again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is } from "../helpers/stanza.js";

const PW = { alice: "alice-pep-secret", bob: "bob-pep-secret" };
const ALICE = "alice@localhost";
const BOB = "bob@localhost";
const NICK = "http://jabber.org/protocol/nick";
const EVENT = "http://jabber.org/protocol/pubsub#event";

const nickEvent = (el: Element) => {
  const items = el.is("message") ? el.getChild("event", EVENT)?.getChild("items") : undefined;
  return items?.attrs.node === NICK ? items.getChild("item")?.getChildText("nick", NICK) : undefined;
};

describe("personal eventing with slixmpp", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: SlixPeer;
  let bob: SlixPeer;

  before(async () => {
    server = await startServer({ name: "pep", users: PW });
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

  test("a nickname alice publishes reaches bob, whose capabilities ask for it", async () => {
    await bob.command("pep", { action: "interest" });
    await bob.command("presence");
    await alice.next(is.presence({ from: bob.jid }), "bob's presence with his capabilities");
    const reply = await alice.request("pep", { action: "publish_nick", nick: "Ally" });
    assert.match(String(reply), /type="result"/, String(reply));
    const event = await bob.next((el) => nickEvent(el) === "Ally", "alice's nickname event");
    assert.equal(event.attrs.from, ALICE);
  });

  test("bob's next login gets alice's last nickname with his first presence", async () => {
    await bob.close();
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work", mechanism: "auto" });
    await bob.request("roster_get");
    await bob.command("pep", { action: "interest" });
    await bob.command("presence");
    await bob.next((el) => nickEvent(el) === "Ally", "the last nickname on presence");
  });
});
