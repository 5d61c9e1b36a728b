/**
 * Message carbons (XEP-0280) on the in-process harness: enabling per session, which
 * messages are copied (§6.1), received copies to the resources that did not get the
 * original (§7), sent copies to the sender's other resources (§8), private messages (§9).
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import carbons from "../../src/modules/carbons/index.js";
import message from "../../src/modules/message/index.js";
import offline from "../../src/modules/offline/index.js";
import stanzaId from "../../src/modules/stanza-id/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const NS = "urn:xmpp:carbons:2";
const FWD = "urn:xmpp:forward:0";
let h: Harness;
let open: FakeSession[] = [];

before(async () => {
  h = await startHarness({ modules: [message, stanzaId, offline, carbons] as ModuleDefinition<unknown>[] });
  for (const u of ["alice", "bob"]) await h.createUser(u);
});
afterEach(async () => {
  for (const s of open) await s.disconnect();
  open = [];
});
after(() => h.stop());

async function connect(user: string, resource: string, priority = 0, enable = true): Promise<FakeSession> {
  const s = await h.connect(user, resource);
  open.push(s);
  s.presence = x("presence", null, x("priority", null, String(priority)));
  s.priority = priority;
  if (enable) {
    const r = await s.iq(x("iq", { type: "set" }, x("enable", { xmlns: NS })));
    assert.equal(r.attrs.type, "result", `enabling carbons: ${r}`);
  }
  return s;
}

const chat = (to: string, body: string, type = "chat", ...extra: XmlElement[]) =>
  x("message", { to, type, id: body.replaceAll(" ", "-") }, x("body", null, body), ...extra);

/** Lets every asynchronous delivery of the previous stanza finish. */
const settle = () => new Promise((r) => setImmediate(r));

/** The forwarded original inside a carbon, checking the wrapper (§7, §8). */
function unwrap(carbon: XmlElement, direction: "sent" | "received", account: string, to: string): XmlElement {
  assert.equal(carbon.name, "message");
  assert.equal(carbon.attrs.from, account, "a carbon comes from the account's bare JID");
  assert.equal(carbon.attrs.to, to, "to the resource receiving the copy");
  const wrapper = carbon.getChild(direction, NS);
  assert.ok(wrapper, `no <${direction} xmlns='${NS}'/> in ${carbon}`);
  const forwarded = wrapper.getChild("forwarded", FWD);
  assert.ok(forwarded, `no <forwarded/> in ${carbon}`);
  const inner = forwarded.getChild("message");
  assert.ok(inner, `no forwarded message in ${carbon}`);
  assert.equal(inner.attrs.xmlns, "jabber:client");
  return inner;
}

const carbonsOf = (s: FakeSession) =>
  s.pending().filter((m) => m.getChild("sent", NS) || m.getChild("received", NS));

describe("enabling", () => {
  test("the server advertises urn:xmpp:carbons:2", () => {
    assert.ok(h.server.services.disco.getFeatures("host").includes(NS));
  });

  test("enable and disable answer with results, also when repeated (§10.1); other payloads are bad requests", async () => {
    const a = await connect("alice", "one", 0, false);
    for (const name of ["enable", "enable", "disable", "disable"]) {
      const r = await a.iq(x("iq", { type: "set" }, x(name, { xmlns: NS })));
      assert.equal(r.attrs.type, "result", `${name}: ${r}`);
    }
    const bad = await a.iq(x("iq", { type: "set" }, x("toggle", { xmlns: NS })));
    assert.equal(errorCondition(bad), "bad-request");
  });

  test("a client cannot set carbons for another account", async () => {
    const a = await connect("alice", "one", 0, false);
    await connect("bob", "one", 0, false);
    const r = await a.iq(x("iq", { type: "set", to: "bob@example.test" }, x("enable", { xmlns: NS })));
    assert.equal(errorCondition(r), "not-allowed");
  });
});

describe("received copies (§7)", () => {
  test("a bare-JID message: the top resource gets the original, other enabled resources a copy, others nothing", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    const tablet = await connect("alice", "tablet", 1, false);
    const bob = await connect("bob", "work");
    await bob.sendStanza(chat("alice@example.test", "hello alice"));
    await settle();
    const original = await phone.next();
    assert.equal(original.getChildText("body"), "hello alice");
    assert.equal(carbonsOf(phone).length, 0, "the resource with the original gets no copy");
    const copy = await desk.next();
    const inner = unwrap(copy, "received", "alice@example.test", "alice@example.test/desk");
    assert.equal(copy.attrs.type, "chat", "the wrapper keeps the type");
    assert.equal(inner.getChildText("body"), "hello alice");
    assert.equal(inner.attrs.from, "bob@example.test/work");
    assert.equal(inner.attrs.to, "alice@example.test");
    assert.equal(tablet.pending().length, 0, "a resource without carbons gets nothing");
  });

  test("a full-JID message: the addressed resource gets the original, every other enabled one a copy", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    const bob = await connect("bob", "work");
    await bob.sendStanza(chat("alice@example.test/desk", "to the desk"));
    await settle();
    assert.equal((await desk.next()).getChildText("body"), "to the desk");
    assert.equal(carbonsOf(desk).length, 0);
    const inner = unwrap(await phone.next(), "received", "alice@example.test", "alice@example.test/phone");
    assert.equal(inner.attrs.to, "alice@example.test/desk");
  });

  test("an account with no available resource: the message is stored and enabled resources still get a copy", async () => {
    const hidden = await connect("alice", "hidden", -1);
    const bob = await connect("bob", "work");
    await bob.sendStanza(chat("alice@example.test", "while away"));
    await settle();
    unwrap(await hidden.next(), "received", "alice@example.test", "alice@example.test/hidden");
    assert.equal(await h.server.services.storage.offline.count("alice"), 1);
    await h.server.services.storage.offline.remove("alice");
  });
});

describe("sent copies (§8)", () => {
  test("the sender's other enabled resources get a copy, the sender none, whether or not it enabled carbons", async () => {
    for (const senderEnabled of [true, false]) {
      const phone = await connect("alice", "phone", 5, senderEnabled);
      const desk = await connect("alice", "desk", 1);
      const bob = await connect("bob", "work");
      const body = `from the phone ${senderEnabled}`;
      await phone.sendStanza(chat("bob@example.test", body));
      await settle();
      assert.equal((await bob.next()).getChildText("body"), body);
      const inner = unwrap(await desk.next(), "sent", "alice@example.test", "alice@example.test/desk");
      assert.equal(inner.attrs.from, "alice@example.test/phone");
      assert.equal(inner.attrs.to, "bob@example.test");
      assert.equal(inner.getChildText("body"), body);
      assert.equal(phone.pending().length, 0, "no copy to the sending resource");
      for (const s of open) await s.disconnect();
      open = [];
    }
  });

  test("a message between two resources of one account reaches each exactly once", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    const tablet = await connect("alice", "tablet", 0);
    await phone.sendStanza(chat("alice@example.test/desk", "note to desk"));
    await settle();
    assert.equal((await desk.next()).getChildText("body"), "note to desk");
    assert.equal(desk.pending().length, 0);
    assert.equal(phone.pending().length, 0, "the sender gets no copy of its own message");
    unwrap(await tablet.next(), "received", "alice@example.test", "alice@example.test/tablet");
    assert.equal(tablet.pending().length, 0, "one copy, not a sent and a received one");
  });
});

describe("which messages are copied (§6.1, §9)", () => {
  test("<private/> with <no-copy/> is copied neither way; the addressee still gets it", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    const bobWork = await connect("bob", "work", 5);
    const bobHome = await connect("bob", "home", 1);
    const priv = () => [x("private", { xmlns: NS }), x("no-copy", { xmlns: "urn:xmpp:hints" })];
    await phone.sendStanza(chat("bob@example.test", "just for you", "chat", ...priv()));
    await settle();
    assert.equal((await bobWork.next()).getChildText("body"), "just for you");
    assert.equal(desk.pending().length, 0, "no sent copy");
    assert.equal(bobHome.pending().length, 0, "no received copy");
    await bobWork.sendStanza(
      chat("alice@example.test", "no-copy alone", "chat", x("no-copy", { xmlns: "urn:xmpp:hints" })),
    );
    await settle();
    assert.equal((await phone.next()).getChildText("body"), "no-copy alone");
    assert.equal(desk.pending().length, 0);
    assert.equal(bobHome.pending().length, 0);
  });

  test("normal messages with a body or IM payloads are copied; without, and headline/groupchat/error, not", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    await connect("bob", "work", 5);
    const to = "bob@example.test";
    const cases: [XmlElement, boolean][] = [
      [chat(to, "normal with body", "normal"), true],
      [x("message", { to, id: "receipt" }, x("received", { xmlns: "urn:xmpp:receipts", id: "x1" })), true],
      [
        x("message", { to, id: "marker" }, x("displayed", { xmlns: "urn:xmpp:chat-markers:0", id: "x1" })),
        true,
      ],
      [
        x(
          "message",
          { to, type: "chat", id: "state" },
          x("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
        ),
        true,
      ],
      [
        x(
          "message",
          { to, id: "invite" },
          x("x", { xmlns: "jabber:x:conference", jid: "room@muc.example.test" }),
        ),
        true,
      ],
      [x("message", { to, id: "bare-normal" }, x("subject", null, "no body")), false],
      [chat(to, "headline", "headline"), false],
      [chat(to, "groupchat", "groupchat"), false],
      [chat(to, "error", "error"), false],
    ];
    for (const [stanza, copied] of cases) {
      desk.pending().length = 0;
      const before = desk.received.length;
      await phone.sendStanza(stanza);
      await settle();
      const copies = desk.received.slice(before).filter((m) => m.getChild("sent", NS));
      assert.equal(copies.length, copied ? 1 : 0, `${stanza}: ${copied ? "copied" : "not copied"}`);
    }
  });

  test("a private message from a room occupant is not copied; an invitation through a room is", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    const room = "room@muc.example.test/juliet";
    await h.server.services.router.deliver(
      x(
        "message",
        { from: room, to: "alice@example.test", type: "chat" },
        x("body", null, "pm"),
        x("x", { xmlns: "http://jabber.org/protocol/muc#user" }),
      ),
      (await import("../../src/core/jid.js")).parseJid(room),
      (await import("../../src/core/jid.js")).parseJid("alice@example.test"),
    );
    await settle();
    assert.equal((await phone.next()).getChildText("body"), "pm");
    assert.equal(desk.pending().length, 0, "the room sends those to each joined client itself");
    await h.server.services.router.deliver(
      x(
        "message",
        { from: "room@muc.example.test", to: "alice@example.test" },
        x("x", { xmlns: "http://jabber.org/protocol/muc#user" }, x("invite", { from: "bob@example.test" })),
      ),
      (await import("../../src/core/jid.js")).parseJid("room@muc.example.test"),
      (await import("../../src/core/jid.js")).parseJid("alice@example.test"),
    );
    await settle();
    await phone.next();
    unwrap(await desk.next(), "received", "alice@example.test", "alice@example.test/desk");
  });

  test("a carbon sent to the server is not copied again, and disabling stops the copies", async () => {
    const phone = await connect("alice", "phone", 5);
    const desk = await connect("alice", "desk", 1);
    const bob = await connect("bob", "work", 5);
    await bob.sendStanza(
      x(
        "message",
        { to: "alice@example.test", type: "chat" },
        x(
          "received",
          { xmlns: NS },
          x(
            "forwarded",
            { xmlns: FWD },
            x("message", { xmlns: "jabber:client", from: "eve@example.test" }, x("body", null, "forged")),
          ),
        ),
      ),
    );
    await settle();
    await phone.next();
    assert.equal(desk.pending().length, 0);
    const r = await desk.iq(x("iq", { type: "set" }, x("disable", { xmlns: NS })));
    assert.equal(r.attrs.type, "result");
    await bob.sendStanza(chat("alice@example.test", "after disable"));
    await settle();
    await phone.next();
    assert.equal(desk.pending().length, 0);
  });
});

describe("Bind 2 (XEP-0386)", () => {
  test("carbons are a Bind 2 inline feature: <enable/> inside <bind/> turns them on for the session", async () => {
    const feature = h.server.services.streamFeatures.forStage("post-auth").find((p) => p.bind2?.var === NS);
    assert.ok(feature?.bind2, "listed for Bind 2 under urn:xmpp:carbons:2");
    const phone = await connect("alice", "phone", 5, false);
    const desk = await connect("alice", "desk", 1, false);
    const bob = await connect("bob", "work");
    assert.equal(await feature.bind2.enable(desk, x("enable", { xmlns: NS })), undefined);
    await bob.sendStanza(chat("alice@example.test", "after bind"));
    await settle();
    await phone.next();
    unwrap(await desk.next(), "received", "alice@example.test", "alice@example.test/desk");
  });
});
