import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { parseJid } from "../../src/core/jid.js";
import { defineModule, type ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import blocking, {
  type BlockingApi,
  NS_BLOCKING,
  NS_BLOCKING_ERRORS,
} from "../../src/modules/blocking/index.js";
import { isListed } from "../../src/modules/blocking/match.js";
import message from "../../src/modules/message/index.js";
import presence from "../../src/modules/presence/index.js";
import roster from "../../src/modules/roster/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

/** Stands in for the presence module: hands presence to local sessions. */
const presenceDelivery = defineModule({
  name: "test-presence-delivery",
  description: "delivers presence stanzas to local sessions",
  setup(ctx) {
    ctx.hook("presence/bare", ({ stanza, to }) => {
      for (const s of ctx.sessions.resourcesOf(to.local)) s.send(stanza);
      return true;
    });
    ctx.hook("presence/full", ({ stanza, to }) => {
      ctx.sessions.get(to.local, to.resource)?.send(stanza);
      return true;
    });
  },
});

let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [message, blocking, presenceDelivery] as ModuleDefinition<unknown>[],
    config: { modules: { blocking: { maxItems: 4 } } },
  });
  for (const u of ["alice", "bob", "carol", "dave", "erin"]) await h.createUser(u);
});
after(() => h.stop());

const condition = errorCondition;
const items = (...jids: string[]) => jids.map((jid) => x("item", { jid }));
const blockIq = (...jids: string[]) =>
  x("iq", { type: "set" }, x("block", { xmlns: NS_BLOCKING }, ...items(...jids)));
const unblockIq = (...jids: string[]) =>
  x("iq", { type: "set" }, x("unblock", { xmlns: NS_BLOCKING }, ...items(...jids)));
const getList = () => x("iq", { type: "get" }, x("blocklist", { xmlns: NS_BLOCKING }));
const listed = (reply: XmlElement) =>
  reply
    .getChild("blocklist", NS_BLOCKING)!
    .getChildren("item")
    .map((i) => i.attrs.jid);
const chat = (to: string, body: string) =>
  x("message", { to, type: "chat", id: body }, x("body", null, body));

async function online(user: string, resource: string): Promise<FakeSession> {
  const s = await h.connect(user, resource);
  s.presence = x("presence", null, x("status", null, `${user} here`));
  return s;
}

async function closeAll(...sessions: FakeSession[]): Promise<void> {
  for (const s of sessions) await s.disconnect();
}

test("JID matching follows XEP-0191 §3.6", () => {
  const list = new Set([
    "bob@example.test/phone",
    "carol@example.test",
    "example.org/gateway",
    "example.net",
  ]);
  const m = (jid: string) => isListed(list, parseJid(jid));
  assert.ok(m("bob@example.test/phone"));
  assert.ok(!m("bob@example.test/laptop"));
  assert.ok(!m("bob@example.test"));
  assert.ok(m("carol@example.test"));
  assert.ok(m("carol@example.test/any"));
  assert.ok(m("example.org/gateway"));
  assert.ok(!m("example.org"));
  assert.ok(!m("user@example.org/gateway"));
  assert.ok(m("example.net"));
  assert.ok(m("x@example.net"));
  assert.ok(m("x@example.net/r"));
  assert.ok(m("example.net/r"));
  assert.ok(!m("example.test"));
  assert.ok(!isListed(new Set(), parseJid("a@b")));
});

test("block, list and unblock, with pushes to the resources that asked for the list", async () => {
  const asked = await online("alice", "asked");
  const silent = await online("alice", "silent");
  assert.deepEqual(listed(await asked.iq(getList())), []);

  const result = await asked.iq(blockIq("bob@example.test", "Example.ORG"));
  assert.equal(result.attrs.type, "result");
  const push = await asked.nextMatching((el) => el.attrs.type === "set");
  assert.equal(push.attrs.to, "alice@example.test/asked");
  assert.deepEqual(
    push
      .getChild("block", NS_BLOCKING)!
      .getChildren("item")
      .map((i) => i.attrs.jid),
    ["bob@example.test", "example.org"],
  );
  assert.equal(silent.pending().length, 0, "a resource that never asked for the blocklist gets no push");
  assert.deepEqual(listed(await asked.iq(getList())), ["bob@example.test", "example.org"]);
  assert.deepEqual(await h.server.services.storage.blocklist.list("alice"), [
    "bob@example.test",
    "example.org",
  ]);

  assert.equal((await asked.iq(unblockIq("example.org"))).attrs.type, "result");
  const unpush = await asked.nextMatching((el) => el.attrs.type === "set");
  assert.deepEqual(
    unpush
      .getChild("unblock")!
      .getChildren("item")
      .map((i) => i.attrs.jid),
    ["example.org"],
  );
  assert.deepEqual(listed(await asked.iq(getList())), ["bob@example.test"]);

  assert.equal((await asked.iq(unblockIq())).attrs.type, "result");
  const all = await asked.nextMatching((el) => el.attrs.type === "set");
  assert.equal(all.getChild("unblock", NS_BLOCKING)!.elements().length, 0);
  assert.deepEqual(listed(await asked.iq(getList())), []);
  assert.deepEqual(await h.server.services.storage.blocklist.list("alice"), []);
  await closeAll(asked, silent);
});

test("inbound stanzas from a blocked JID: messages and IQ requests bounce, presence and IQ responses vanish", async () => {
  const a = await online("alice", "inbox");
  await a.iq(blockIq("bob@example.test"));
  const b = await online("bob", "sender");

  await b.sendStanza(chat("alice@example.test", "hello?"));
  const bounced = await b.next();
  assert.equal(bounced.attrs.type, "error");
  assert.equal(condition(bounced), "service-unavailable");
  await b.sendStanza(chat("alice@example.test/inbox", "direct"));
  assert.equal(condition(await b.next()), "service-unavailable");

  const iq = await b.iq(
    x("iq", { type: "get", to: "alice@example.test/inbox" }, x("ping", { xmlns: "urn:xmpp:ping" })),
  );
  assert.equal(condition(iq), "service-unavailable");
  const bareIq = await b.iq(
    x("iq", { type: "get", to: "alice@example.test" }, x("query", { xmlns: "urn:x" })),
  );
  assert.equal(condition(bareIq), "service-unavailable");

  await b.sendStanza(x("presence", { to: "alice@example.test" }));
  await b.sendStanza(x("presence", { to: "alice@example.test", type: "subscribe" }));
  await b.sendStanza(x("iq", { type: "result", id: "r1", to: "alice@example.test/inbox" }));
  await b.sendStanza(x("message", { type: "error", to: "alice@example.test/inbox" }));
  assert.equal(b.pending().length, 0, "no error for presence or IQ responses");
  assert.equal(
    a.pending().filter((el) => el.attrs.from?.startsWith("bob@")).length,
    0,
    "nothing from bob reached alice",
  );

  // Someone not blocked still gets through.
  const c = await online("carol", "friend");
  await c.sendStanza(chat("alice@example.test", "hi alice"));
  assert.equal((await a.nextMatching((el) => el.name === "message")).getChildText("body"), "hi alice");

  await a.iq(unblockIq());
  await b.sendStanza(chat("alice@example.test", "after unblock"));
  assert.equal((await a.nextMatching((el) => el.name === "message")).getChildText("body"), "after unblock");
  await closeAll(a, b, c);
});

test("a message for an offline account that blocks the sender bounces instead of being stored", async () => {
  const a = await online("alice", "brief");
  await a.iq(blockIq("dave@example.test"));
  await a.disconnect();
  const d = await online("dave", "late");
  await d.sendStanza(chat("alice@example.test", "while you were out"));
  assert.equal(condition(await d.next()), "service-unavailable");
  const a2 = await online("alice", "back");
  await a2.iq(unblockIq());
  await closeAll(d, a2);
});

test("outbound stanzas to a blocked JID are refused with <blocked/>", async () => {
  const a = await online("alice", "out");
  await a.iq(blockIq("bob@example.test", "example.org"));
  const b = await online("bob", "target");
  for (const stanza of [
    chat("bob@example.test", "psst"),
    x("presence", { to: "bob@example.test/target" }),
    x("iq", { type: "get", id: "q1", to: "bob@example.test/target" }, x("ping", { xmlns: "urn:xmpp:ping" })),
    chat("someone@example.org/home", "remote"),
  ]) {
    await a.sendStanza(stanza);
    const err = await a.nextMatching((el) => el.attrs.type === "error");
    assert.equal(condition(err), "not-acceptable", stanza.toString());
    const error = err.getChild("error")!;
    assert.equal(error.attrs.type, "cancel");
    assert.ok(error.getChild("blocked", NS_BLOCKING_ERRORS), "application condition <blocked/>");
  }
  assert.equal(b.pending().length, 0);
  // Stanzas to the account itself and to unblocked JIDs are untouched.
  const self = await a.iq(x("iq", { type: "get" }, x("blocklist", { xmlns: NS_BLOCKING })));
  assert.equal(self.attrs.type, "result");
  await a.iq(unblockIq());
  await closeAll(a, b);
});

test("an account's own resources are never blocked from one another", async () => {
  const a1 = await online("alice", "one");
  const a2 = await online("alice", "two");
  await a1.iq(blockIq("alice@example.test", "example.test"));
  await a1.sendStanza(chat("alice@example.test/two", "note to self"));
  assert.equal((await a2.nextMatching((el) => el.name === "message")).getChildText("body"), "note to self");
  // The domain item blocks everyone else here.
  const e = await online("erin", "other");
  await e.sendStanza(chat("alice@example.test/two", "hi"));
  assert.equal(condition(await e.next()), "service-unavailable");
  await a1.iq(unblockIq());
  await closeAll(a1, a2, e);
});

test("with its own domain blocked, an account still gets the server's errors for its requests (RFC 6120 §8.2.3)", async () => {
  const a = await online("alice", "one");
  const e = await online("erin", "other");
  await a.iq(blockIq("example.test"));
  try {
    const failed = await a.iq(x("iq", { type: "get" }, x("query", { xmlns: "urn:example:unknown" })));
    assert.equal(failed.attrs.type, "error");
    assert.equal(condition(failed), "service-unavailable");
    // Other users of the domain stay blocked.
    await e.sendStanza(chat("alice@example.test/one", "hi"));
    assert.equal(condition(await e.next()), "service-unavailable");
  } finally {
    await a.iq(unblockIq()).catch(() => undefined);
    await closeAll(a, e);
  }
});

test("blocking sends unavailable presence to contacts allowed to see it; unblocking sends the current presence", async () => {
  const { roster } = h.server.services.storage;
  const item = (jid: string, subscription: "from" | "to" | "both") => ({
    jid,
    subscription,
    ask: false,
    approved: false,
    groups: [],
  });
  await roster.setItem("alice", item("bob@example.test", "both"));
  await roster.setItem("alice", item("carol@example.test", "to"));
  const a = await online("alice", "pres");
  a.directedPresence.add("erin@example.test/desk");
  const b = await online("bob", "watch");
  const c = await online("carol", "watch");
  const e = await online("erin", "desk");

  await a.iq(blockIq("bob@example.test", "carol@example.test", "erin@example.test"));
  const toBob = await b.nextMatching((el) => el.name === "presence");
  assert.equal(toBob.attrs.type, "unavailable");
  assert.equal(toBob.attrs.from, "alice@example.test/pres");
  const toErin = await e.nextMatching((el) => el.name === "presence");
  assert.equal(toErin.attrs.type, "unavailable", "directed presence is ended too");
  assert.equal(c.pending().length, 0, "carol may not see alice's presence: nothing to retract");

  // While blocked, presence the server sends on alice's behalf to bob is dropped.
  await h.server.services.router.deliver(
    x("presence", { from: "alice@example.test/pres", to: "bob@example.test" }),
    parseJid("alice@example.test/pres"),
    parseJid("bob@example.test"),
  );
  assert.equal(b.pending().length, 0);

  await a.iq(unblockIq("bob@example.test", "carol@example.test"));
  const back = await b.nextMatching((el) => el.name === "presence");
  assert.equal(back.attrs.type, undefined);
  assert.equal(back.getChildText("status"), "alice here");
  assert.equal(back.attrs.to, "bob@example.test");
  assert.equal(c.pending().length, 0);
  await a.iq(unblockIq());
  await roster.removeItem("alice", "bob@example.test");
  await roster.removeItem("alice", "carol@example.test");
  await closeAll(a, b, c, e);
});

test("malformed commands, other accounts' lists and the size limit", async () => {
  const a = await online("alice", "errors");
  const emptyBlock = x("iq", { type: "set" }, x("block", { xmlns: NS_BLOCKING }));
  assert.equal(condition(await a.iq(emptyBlock)), "bad-request");
  const noJid = x("iq", { type: "set" }, x("block", { xmlns: NS_BLOCKING }, x("item")));
  assert.equal(condition(await a.iq(noJid)), "bad-request");
  const stray = x(
    "iq",
    { type: "set" },
    x("block", { xmlns: NS_BLOCKING }, x("jid", null, "bob@example.test")),
  );
  assert.equal(condition(await a.iq(stray)), "bad-request");
  assert.equal(condition(await a.iq(blockIq("a@b@c"))), "jid-malformed");
  const wrongName = x("iq", { type: "set" }, x("blocklist", { xmlns: NS_BLOCKING }));
  assert.equal(condition(await a.iq(wrongName)), "bad-request");
  const wrongGet = x("iq", { type: "get" }, x("block", { xmlns: NS_BLOCKING }));
  assert.equal(condition(await a.iq(wrongGet)), "bad-request");
  const others = x("iq", { type: "get", to: "bob@example.test" }, x("blocklist", { xmlns: NS_BLOCKING }));
  assert.equal(condition(await a.iq(others)), "forbidden");
  assert.deepEqual(listed(await a.iq(getList())), [], "nothing was stored by refused commands");

  // maxItems is 4.
  assert.equal((await a.iq(blockIq("a@x.test", "b@x.test", "c@x.test"))).attrs.type, "result");
  assert.equal(condition(await a.iq(blockIq("d@x.test", "e@x.test"))), "not-acceptable");
  assert.equal(
    (await a.iq(blockIq("a@x.test", "d@x.test"))).attrs.type,
    "result",
    "already listed items do not count",
  );
  assert.equal(condition(await a.iq(blockIq("e@x.test"))), "not-acceptable");
  await a.iq(unblockIq());
  await a.disconnect();
});

test("other modules can ask whether an account blocks a JID", async () => {
  const api = h.server.services.apis.get("blocking") as BlockingApi;
  const a = await online("alice", "api");
  await a.iq(blockIq("bob@example.test"));
  assert.equal(await api.isBlocked("alice", parseJid("bob@example.test/x")), true);
  assert.equal(await api.isBlocked("alice", parseJid("carol@example.test")), false);
  assert.equal(await api.isBlocked("bob", parseJid("alice@example.test")), false);
  await a.iq(unblockIq());
  assert.equal(await api.isBlocked("alice", parseJid("bob@example.test")), false);
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_BLOCKING));
  await a.disconnect();
});

test("with the roster and presence modules: blocking hides the user's presence, unblocking restores it", async () => {
  const hp = await startHarness({
    modules: [message, roster, presence, blocking] as ModuleDefinition<unknown>[],
  });
  try {
    await hp.createUser("ann");
    await hp.createUser("ben");
    const ann = await hp.connect("ann", "a");
    const ben = await hp.connect("ben", "b");
    await ann.sendStanza(x("presence"));
    await ben.sendStanza(x("presence"));
    // A mutual subscription, made the way clients make it.
    await ann.sendStanza(x("presence", { type: "subscribe", to: "ben@example.test" }));
    await ben.sendStanza(x("presence", { type: "subscribed", to: "ann@example.test" }));
    await ben.sendStanza(x("presence", { type: "subscribe", to: "ann@example.test" }));
    await ann.sendStanza(x("presence", { type: "subscribed", to: "ben@example.test" }));
    const fromAnn = () =>
      ben.pending().filter((el) => el.name === "presence" && el.attrs.from === "ann@example.test/a");
    ben.received.length = 0;

    await ann.iq(blockIq("ben@example.test"));
    assert.deepEqual(
      fromAnn().map((el) => el.attrs.type),
      ["unavailable"],
    );
    // Ann's presence updates no longer reach ben, and ben's no longer reach ann.
    await ann.sendStanza(x("presence", null, x("show", null, "away")));
    assert.deepEqual(
      fromAnn().map((el) => el.attrs.type),
      ["unavailable"],
    );
    const annBefore = ann.received.length;
    await ben.sendStanza(x("presence", null, x("status", null, "ping?")));
    assert.equal(ann.received.slice(annBefore).filter((el) => el.name === "presence").length, 0);

    await ann.iq(unblockIq("ben@example.test"));
    const last = fromAnn().at(-1)!;
    assert.equal(last.attrs.type, undefined);
    assert.equal(last.getChildText("show"), "away");
  } finally {
    await hp.stop();
  }
});
