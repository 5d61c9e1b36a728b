/**
 * Server services, exercised from both clients: service discovery (XEP-0030),
 * ping (XEP-0199), software version (XEP-0092), entity time (XEP-0202),
 * vCards (XEP-0054), private XML storage (XEP-0049), blocking (XEP-0191) and
 * last activity (XEP-0012).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, newId, stanzaError, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-services-pw", bob: "bob-services-pw", carol: "carol-services-pw" };
const ALICE = "alice@localhost";
const BOB = "bob@localhost";

function assertResult(reply: Element): void {
  assert.equal(reply.attrs.type, "result", `expected a result, got ${reply}`);
}

function errorCondition(reply: Element): string | undefined {
  return stanzaError(reply)?.condition;
}

describe("server services", { skip: slixSkip }, () => {
  let server: TestServer;
  let startedAt: number;
  let alice: JsPeer;
  let bob: SlixPeer;

  before(async () => {
    startedAt = Date.now();
    server = await startServer({ name: "services", users: PW });
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

  test("disco#info on the server: an im server identity and the supported features", async () => {
    const reply = await bob.request("disco_info", { to: "localhost" });
    assertResult(reply);
    const query = reply.getChild("query", NS.discoInfo)!;
    const identities = query.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`);
    assert.ok(identities.includes("server/im"), `identities: ${identities}`);
    const features = query.getChildren("feature").map((f) => f.attrs.var);
    for (const f of [NS.discoInfo, NS.ping, NS.version, NS.time, NS.last, NS.vcard, NS.blocking]) {
      assert.ok(features.includes(f), `feature ${f} missing from ${features.join(", ")}`);
    }
    assert.equal(new Set(features).size, features.length, "features are listed once each");
  });

  test("ping (XEP-0199): the server answers both clients; a client answers another client", async () => {
    assertResult(
      await alice.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping }))),
    );
    assertResult(await bob.request("ping", { to: "localhost" }));
    // IQ routed to a full JID: slixmpp answers pings itself.
    const c2c = await alice.iq(xml("iq", { type: "get", to: bob.jid }, xml("ping", { xmlns: NS.ping })));
    assertResult(c2c);
    assert.equal(c2c.attrs.from, bob.jid);
  });

  test("software version (XEP-0092)", async () => {
    const reply = await alice.iq(
      xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: NS.version })),
    );
    assertResult(reply);
    const q = reply.getChild("query", NS.version)!;
    assert.ok(q.getChildText("name"), `no <name/>: ${reply}`);
    assert.ok(q.getChildText("version"), `no <version/>: ${reply}`);
    const viaSlix = await bob.request("version", { to: "localhost" });
    assert.equal(viaSlix.getChild("query", NS.version)?.getChildText("name"), q.getChildText("name"));
  });

  test("entity time (XEP-0202): UTC within a minute of ours, a valid offset", async () => {
    const reply = await bob.request("time", { to: "localhost" });
    assertResult(reply);
    const t = reply.getChild("time", NS.time)!;
    assert.match(t.getChildText("tzo") ?? "", /^(Z|[+-]\d{2}:\d{2})$/);
    const utc = t.getChildText("utc") ?? "";
    assert.match(utc, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    assert.ok(Math.abs(Date.parse(utc) - Date.now()) < 60_000, `server time ${utc} is far from ours`);
  });

  test("vCard (XEP-0054): set and get one's own, get another user's from the other client", async () => {
    const set = await alice.iq(
      xml(
        "iq",
        { type: "set" },
        xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Alice Liddell"), xml("NICKNAME", {}, "alice")),
      ),
    );
    assertResult(set);
    const own = await alice.iq(xml("iq", { type: "get" }, xml("vCard", { xmlns: NS.vcard })));
    assertResult(own);
    assert.equal(own.getChild("vCard", NS.vcard)?.getChildText("FN"), "Alice Liddell");
    assert.equal(own.getChild("vCard", NS.vcard)?.getChildText("NICKNAME"), "alice");

    const seenByBob = await bob.request("vcard_get", { to: ALICE });
    assertResult(seenByBob);
    assert.equal(seenByBob.getChild("vCard", NS.vcard)?.getChildText("FN"), "Alice Liddell");

    await bob.command("vcard_set", { fn: "Bob Builder", nickname: "bob" });
    const seenByAlice = await alice.iq(
      xml("iq", { type: "get", to: BOB }, xml("vCard", { xmlns: NS.vcard })),
    );
    assertResult(seenByAlice);
    assert.equal(seenByAlice.getChild("vCard", NS.vcard)?.getChildText("FN"), "Bob Builder");
  });

  test("another account without a vCard, or no account at all: the same service-unavailable (XEP-0054 §3.3)", async () => {
    const none = await alice.iq(
      xml("iq", { type: "get", to: "carol@localhost" }, xml("vCard", { xmlns: NS.vcard })),
    );
    assert.equal(errorCondition(none), "service-unavailable", none.toString());
    const ghost = await alice.iq(
      xml("iq", { type: "get", to: "ghost@localhost" }, xml("vCard", { xmlns: NS.vcard })),
    );
    assert.equal(errorCondition(ghost), "service-unavailable", ghost.toString());
  });

  test("one's own vCard before setting one: an empty vCard or item-not-found (XEP-0054 §3.1)", async () => {
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "v" });
    try {
      const reply = await carol.iq(xml("iq", { type: "get" }, xml("vCard", { xmlns: NS.vcard })));
      if (reply.attrs.type === "result") {
        assert.equal(reply.getChild("vCard", NS.vcard)?.getChildElements().length ?? 0, 0, reply.toString());
      } else {
        assert.equal(errorCondition(reply), "item-not-found", reply.toString());
      }
    } finally {
      await carol.close();
    }
  });

  test("a vCard cannot be written for another account", async () => {
    const reply = await alice.iq(
      xml("iq", { type: "set", to: BOB }, xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Hacked"))),
    );
    assert.equal(reply.attrs.type, "error", `expected an error, got ${reply}`);
    const bobs = await alice.iq(xml("iq", { type: "get", to: BOB }, xml("vCard", { xmlns: NS.vcard })));
    assert.equal(bobs.getChild("vCard", NS.vcard)?.getChildText("FN"), "Bob Builder");
  });

  test("private XML storage (XEP-0049): set, get, unknown namespace, other users' data", async () => {
    const prefs = () => xml("exodus", { xmlns: "exodus:prefs" }, xml("defaultnick", {}, "Hamlet"));
    assertResult(await alice.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.private }, prefs()))));
    const got = await alice.iq(
      xml(
        "iq",
        { type: "get" },
        xml("query", { xmlns: NS.private }, xml("exodus", { xmlns: "exodus:prefs" })),
      ),
    );
    assertResult(got);
    assert.equal(
      got.getChild("query", NS.private)?.getChild("exodus", "exodus:prefs")?.getChildText("defaultnick"),
      "Hamlet",
      got.toString(),
    );
    // Never stored: the empty element comes back.
    const empty = await alice.iq(
      xml(
        "iq",
        { type: "get" },
        xml("query", { xmlns: NS.private }, xml("settings", { xmlns: "urn:example:unset" })),
      ),
    );
    assertResult(empty);
    const unset = empty.getChild("query", NS.private)?.getChild("settings", "urn:example:unset");
    assert.ok(unset, `the empty <settings/> element should be returned: ${empty}`);
    assert.equal(unset.getChildElements().length, 0);
    // bob (slixmpp) cannot read alice's data.
    const foreign = await bob.iq(
      xml(
        "iq",
        { type: "get", to: ALICE },
        xml("query", { xmlns: NS.private }, xml("exodus", { xmlns: "exodus:prefs" })),
      ),
    );
    assert.ok(
      ["forbidden", "service-unavailable"].includes(errorCondition(foreign) ?? ""),
      foreign.toString(),
    );
    assert.doesNotMatch(foreign.toString(), /Hamlet/);
    // A query without a child element.
    const bad = await alice.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.private })));
    assert.ok(
      ["bad-format", "not-acceptable", "bad-request"].includes(errorCondition(bad) ?? ""),
      bad.toString(),
    );
  });

  test("blocking (XEP-0191): a blocked contact's messages are not delivered, then unblocking restores them", async () => {
    const list = await bob.request("blocklist");
    assertResult(list);
    assert.deepEqual(list.getChild("blocklist", NS.blocking)?.getChildren("item") ?? [], []);

    assertResult(await bob.request("block", { jids: [ALICE] }));
    const push = await bob.next(is.blockingPush("block"), "the block push to bob's resource");
    assert.deepEqual(
      push
        .getChild("block", NS.blocking)!
        .getChildren("item")
        .map((i) => i.attrs.jid),
      [ALICE],
    );

    const listed = await bob.request("blocklist");
    assert.deepEqual(
      listed
        .getChild("blocklist", NS.blocking)
        ?.getChildren("item")
        .map((i) => i.attrs.jid),
      [ALICE],
    );

    // Inbound from the blocked JID: not delivered; messages SHOULD, IQs MUST bounce service-unavailable.
    const blockedMsg = xml(
      "message",
      { to: bob.jid, type: "chat", id: newId("blk") },
      xml("body", {}, "are you there?"),
    );
    await alice.send(blockedMsg);
    await bob.none(is.message({ body: "are you there?" }), "a message from the blocked contact");
    const bounced = alice.stanzas
      .all()
      .find((el) => el.name === "message" && el.attrs.id === blockedMsg.attrs.id);
    if (bounced) assert.equal(errorCondition(bounced), "service-unavailable", bounced.toString());
    const iq = await alice.iq(xml("iq", { type: "get", to: bob.jid }, xml("ping", { xmlns: NS.ping })));
    assert.equal(errorCondition(iq), "service-unavailable", iq.toString());

    // Outbound to the blocked JID: not-acceptable with <blocked/>.
    await bob.command("message", { to: ALICE, body: "you are blocked", msg_id: "to-blocked-1" });
    const refused = await bob.next(
      (el) => el.name === "message" && el.attrs.id === "to-blocked-1" && el.attrs.type === "error",
      "the error for a message to a blocked JID",
    );
    assert.equal(errorCondition(refused), "not-acceptable", refused.toString());
    assert.ok(
      refused.getChild("error")?.getChild("blocked", NS.blockingErrors),
      `no <blocked/> in ${refused}`,
    );
    await alice.none(is.message({ body: "you are blocked" }), "bob's message to a JID he blocked");

    assertResult(await bob.request("unblock", { jids: [ALICE] }));
    await bob.next(is.blockingPush("unblock"), "the unblock push");
    await alice.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, "unblocked now")));
    await bob.next(is.message({ body: "unblocked now", from: alice.jid }), "the message after unblocking");
  });

  test("last activity (XEP-0012): server uptime", async () => {
    const reply = await alice.iq(
      xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: NS.last })),
    );
    assertResult(reply);
    const seconds = Number(reply.getChild("query", NS.last)?.attrs.seconds);
    const upperBound = (Date.now() - startedAt) / 1000 + 5;
    assert.ok(
      Number.isInteger(seconds) && seconds >= 0 && seconds <= upperBound,
      `uptime ${seconds} s (max ${upperBound})`,
    );
  });

  test("last activity of a user: forbidden without a subscription, 0 when online, time since logout after", async () => {
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "c" });
    try {
      const denied = await carol.iq(xml("iq", { type: "get", to: ALICE }, xml("query", { xmlns: NS.last })));
      assert.equal(errorCondition(denied), "forbidden", denied.toString());
    } finally {
      await carol.close();
    }
    // bob subscribes to alice's presence; like any client managing subscriptions he has
    // asked for his roster, so he is an interested resource (the approval is for those, RFC 6121 §3.1.6).
    await bob.command("roster_get");
    await bob.command("subscription", { to: ALICE, type: "subscribe" });
    await alice.next(is.presence({ from: BOB, type: "subscribe" }), "bob's subscription request");
    await alice.send(xml("presence", { to: BOB, type: "subscribed" }));
    await bob.next(is.presence({ from: ALICE, type: "subscribed" }), "the approval");

    const online = await bob.request("last", { to: ALICE });
    assertResult(online);
    assert.equal(online.getChild("query", NS.last)?.attrs.seconds, "0", online.toString());

    await alice.send(xml("presence", { type: "unavailable" }, xml("status", {}, "gone fishing")));
    await alice.close();
    await bob.next(is.presence({ fromBare: ALICE, type: "unavailable" }), "alice going offline");
    await new Promise((r) => setTimeout(r, 1100));
    const offline = await bob.request("last", { to: ALICE });
    assertResult(offline);
    const q = offline.getChild("query", NS.last)!;
    const secs = Number(q.attrs.seconds);
    assert.ok(Number.isInteger(secs) && secs >= 1 && secs < 60, `seconds since logout: ${q.attrs.seconds}`);
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "home" });
  });
});
