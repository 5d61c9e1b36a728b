/**
 * Presence subscriptions and presence broadcast (RFC 6121 §3, §4), with alice
 * on @xmpp/client and bob on slixmpp: request, approval, mutual subscription,
 * show/status both ways, unavailable on disconnect, probes at login,
 * pre-approval (§3.4), unsubscribe (§3.3) and unsubscribed (§3.2).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import type { Peer } from "../helpers/peer.js";
import { rosterGet } from "../helpers/roster.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, itemState, NS, rosterItem, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-presence-pw", bob: "bob-presence-pw", carol: "carol-presence-pw" };
const ALICE = "alice@localhost";
const BOB = "bob@localhost";
const CAROL = "carol@localhost";

/** The next roster push about `jid` whose item is in the given state. */
function pushFor(
  peer: Peer,
  jid: string,
  state: { subscription: string; ask?: string },
  what: string,
): Promise<Element> {
  return peer.next(
    (el) => {
      if (!is.rosterPush(jid)(el)) return false;
      const s = itemState(rosterItem(el, jid));
      return s?.subscription === state.subscription && s.ask === state.ask;
    },
    `${what}: roster push ${jid} subscription=${state.subscription}${state.ask ? ` ask=${state.ask}` : ""}`,
  );
}

async function subscriptionOf(peer: Peer, jid: string): Promise<string | undefined> {
  const roster = await rosterGet(peer);
  return itemState(rosterItem(roster, jid))?.subscription;
}

describe("presence subscriptions and broadcast", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: JsPeer;
  let bob: SlixPeer;

  before(async () => {
    server = await startServer({ name: "presence", users: PW });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "home" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work" });
    // Interested and available resources (RFC 6121 §2.1.6, §4.2).
    await rosterGet(alice);
    await alice.send(xml("presence"));
    await bob.request("roster_get");
    await bob.command("presence");
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await server.stop();
  });

  test("subscribe: the request reaches bob from alice's bare JID; alice's item is pending out", async () => {
    await alice.send(xml("presence", { to: BOB, type: "subscribe" }));
    await pushFor(alice, BOB, { subscription: "none", ask: "subscribe" }, "alice");
    const req = await bob.next(
      is.presence({ from: ALICE, type: "subscribe" }),
      "alice's subscription request",
    );
    assert.equal(
      req.attrs.from,
      ALICE,
      "the server stamps the bare JID on subscription requests (RFC 6121 §3.1.2)",
    );
  });

  test("bob approves: alice → 'to', bob → 'from'; alice receives bob's available presence", async () => {
    await bob.command("subscription", { to: ALICE, type: "subscribed" });
    await pushFor(bob, ALICE, { subscription: "from" }, "bob");
    await alice.next(is.presence({ from: BOB, type: "subscribed" }), "the approval");
    await pushFor(alice, BOB, { subscription: "to" }, "alice");
    // RFC 6121 §3.1.5: the contact's server sends presence from each available resource.
    await alice.next(is.presence({ from: bob.jid }), "bob's current presence after approval");
  });

  test("bob subscribes back and alice approves: both items end in 'both'", async () => {
    await bob.command("subscription", { to: ALICE, type: "subscribe" });
    await pushFor(bob, ALICE, { subscription: "from", ask: "subscribe" }, "bob");
    await alice.next(is.presence({ from: BOB, type: "subscribe" }), "bob's subscription request");
    await alice.send(xml("presence", { to: BOB, type: "subscribed" }));
    await pushFor(alice, BOB, { subscription: "both" }, "alice");
    await bob.next(is.presence({ from: ALICE, type: "subscribed" }), "the approval");
    await pushFor(bob, ALICE, { subscription: "both" }, "bob");
    await bob.next(is.presence({ from: alice.jid }), "alice's current presence after approval");
    assert.equal(await subscriptionOf(alice, BOB), "both");
    assert.equal(await subscriptionOf(bob, ALICE), "both");
  });

  test("presence with show and status is broadcast both ways", async () => {
    await alice.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, "out for lunch")));
    const fromAlice = await bob.next(
      (el) => is.presence({ from: alice.jid })(el) && el.getChildText("show") === "away",
      "alice's away presence",
    );
    assert.equal(fromAlice.getChildText("status"), "out for lunch");
    await bob.command("presence", { show: "dnd", status: "in a meeting" });
    const fromBob = await alice.next(
      (el) => is.presence({ from: bob.jid })(el) && el.getChildText("show") === "dnd",
      "bob's dnd presence",
    );
    assert.equal(fromBob.getChildText("status"), "in a meeting");
  });

  test("presence is not broadcast to someone without a subscription", async () => {
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "c" });
    try {
      await carol.send(xml("presence"));
      await alice.send(xml("presence", {}, xml("status", {}, "back")));
      await bob.next(
        (el) => is.presence({ from: alice.jid })(el) && el.getChildText("status") === "back",
        "alice's update",
      );
      await carol.none(is.presence({ fromBare: ALICE }), "presence from alice (carol is not subscribed)");
    } finally {
      await carol.close();
    }
  });

  test("when bob disconnects alice receives unavailable; when he returns, a probe brings alice's presence", async () => {
    const oldJid = bob.jid;
    await bob.close();
    await alice.next(
      is.presence({ from: oldJid, type: "unavailable" }),
      "bob's unavailable presence after his disconnect",
    );
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work2" });
    await bob.request("roster_get");
    await bob.command("presence", { status: "back at work" });
    // RFC 6121 §4.2.2: the server probes bob's contacts and delivers their current presence.
    const probed = await bob.next(
      is.presence({ from: alice.jid }),
      "alice's presence in answer to the probe",
    );
    assert.equal(probed.getChildText("status"), "back");
    const seen = await alice.next(is.presence({ from: bob.jid }), "bob's initial presence");
    assert.equal(seen.getChildText("status"), "back at work");
  });

  test("pre-approval (RFC 6121 §3.4): carol pre-approves alice, alice's later request is approved at once", async () => {
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "c2" });
    try {
      const features = carol.features.at(-1);
      assert.ok(features?.getChild("sub", NS.preapproval), `no pre-approval stream feature: ${features}`);
      await rosterGet(carol);
      await carol.send(xml("presence"));
      await carol.send(xml("presence", { to: ALICE, type: "subscribed" }));
      const pre = await carol.next(
        (el) => is.rosterPush(ALICE)(el) && rosterItem(el, ALICE)?.attrs.approved === "true",
        "carol's roster push with approved='true'",
      );
      assert.equal(itemState(rosterItem(pre, ALICE))?.subscription, "none");
      await alice.send(xml("presence", { to: CAROL, type: "subscribe" }));
      await alice.next(is.presence({ from: CAROL, type: "subscribed" }), "the automatic approval");
      await pushFor(alice, CAROL, { subscription: "to" }, "alice");
      await pushFor(carol, ALICE, { subscription: "from" }, "carol");
      await carol.none(is.presence({ from: ALICE, type: "subscribe" }), "the pre-approved request");
    } finally {
      await carol.close();
    }
  });

  test("unsubscribe (RFC 6121 §3.3): alice → 'from', bob → 'to', alice gets bob's unavailable", async () => {
    await alice.send(xml("presence", { to: BOB, type: "unsubscribe" }));
    await pushFor(alice, BOB, { subscription: "from" }, "alice");
    await bob.next(is.presence({ from: ALICE, type: "unsubscribe" }), "alice's unsubscribe");
    await pushFor(bob, ALICE, { subscription: "to" }, "bob");
    await alice.next(
      is.presence({ from: bob.jid, type: "unavailable" }),
      "bob's unavailable presence (no longer visible)",
    );
  });

  test("unsubscribed (RFC 6121 §3.2): alice cancels bob's subscription, both end in 'none'", async () => {
    await alice.send(xml("presence", { to: BOB, type: "unsubscribed" }));
    await pushFor(alice, BOB, { subscription: "none" }, "alice");
    await bob.next(is.presence({ from: ALICE, type: "unsubscribed" }), "the cancellation");
    await pushFor(bob, ALICE, { subscription: "none" }, "bob");
    await bob.next(is.presence({ from: alice.jid, type: "unavailable" }), "alice's unavailable presence");
    assert.equal(await subscriptionOf(alice, BOB), "none");
    assert.equal(await subscriptionOf(bob, ALICE), "none");
    // No longer subscribed: presence changes stay private.
    await alice.send(xml("presence", {}, xml("show", {}, "xa")));
    await bob.none(is.presence({ from: alice.jid }), "alice's presence after the cancellation");
  });
});
