import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { NS_STANZAS } from "../../src/core/errors.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import message from "../../src/modules/message/index.js";
import offline from "../../src/modules/offline/index.js";
import { type FakeSession, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [message, offline] as ModuleDefinition<unknown>[],
    config: { modules: { offline: { quota: 3 } } },
  });
  for (const u of ["alice", "bob", "carol"]) await h.createUser(u);
});
after(() => h.stop());

/** Marks a fake session available the way the presence module does. */
async function available(s: FakeSession, priority = 0): Promise<void> {
  s.presence = x("presence", null, x("priority", null, String(priority)));
  s.priority = priority;
  if (priority >= 0) await h.server.services.hooks.fireAsync("session/available", { session: s });
}

const chat = (to: string, body: string, id = body) =>
  x("message", { to, type: "chat", id }, x("body", null, body));

function errorCondition(el: {
  getChild(
    n: string,
  ): { elements(): { name: string; attrs: Record<string, string | undefined> }[] } | undefined;
}): string | undefined {
  return el
    .getChild("error")
    ?.elements()
    .find((c) => c.attrs.xmlns === NS_STANZAS)?.name;
}

test("a message to a bare JID goes to the highest-priority resources only", async () => {
  const a = await h.connect("alice", "phone");
  const b1 = await h.connect("bob", "high");
  const b2 = await h.connect("bob", "low");
  const b3 = await h.connect("bob", "negative");
  await available(a);
  await available(b1, 5);
  await available(b2, 1);
  await available(b3, -1);
  await a.sendStanza(chat("bob@example.test", "hi"));
  const got = await b1.next();
  assert.equal(got.getChildText("body"), "hi");
  assert.equal(got.attrs.from, "alice@example.test/phone");
  assert.equal(b2.pending().length, 0);
  assert.equal(b3.pending().length, 0);
  for (const s of [a, b1, b2, b3]) await s.disconnect();
});

test("a message to a full JID reaches that resource even at negative priority", async () => {
  const a = await h.connect("alice", "desk");
  const b = await h.connect("bob", "hidden");
  await available(a);
  await available(b, -5);
  await a.sendStanza(chat("bob@example.test/hidden", "direct"));
  assert.equal((await b.next()).getChildText("body"), "direct");
  await a.disconnect();
  await b.disconnect();
});

test("a message to a resource that is gone falls back to the bare JID", async () => {
  const a = await h.connect("alice", "desk");
  const b = await h.connect("bob", "laptop");
  await available(a);
  await available(b);
  await a.sendStanza(chat("bob@example.test/old-phone", "fallback"));
  assert.equal((await b.next()).getChildText("body"), "fallback");
  await a.disconnect();
  await b.disconnect();
});

test("messages to an offline account are stored with a delay stamp and delivered in order at login", async () => {
  const a = await h.connect("alice", "desk");
  await available(a);
  h.clock.t = Date.UTC(2026, 10, 26, 8, 0, 0);
  await a.sendStanza(chat("carol@example.test", "one"));
  await a.sendStanza(
    x(
      "message",
      { to: "carol@example.test", type: "chat", id: "cs" },
      x("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
    ),
  );
  await a.sendStanza(chat("carol@example.test/any", "two"));
  assert.equal(await h.server.services.storage.offline.count("carol"), 2, "chat states alone are not stored");
  const c = await h.connect("carol", "home");
  assert.equal(c.pending().length, 0, "nothing before initial presence");
  await available(c);
  const first = await c.next();
  const second = await c.next();
  assert.deepEqual([first.getChildText("body"), second.getChildText("body")], ["one", "two"]);
  const delay = first.getChild("delay", "urn:xmpp:delay");
  assert.equal(delay?.attrs.stamp, "2026-11-26T08:00:00Z");
  assert.equal(delay?.attrs.from, "example.test");
  assert.equal(await h.server.services.storage.offline.count("carol"), 0);
  await a.disconnect();
  await c.disconnect();
});

test("a message of a type nobody defined is a normal message: stored for an offline account (RFC 6121 §5.2.2)", async () => {
  const a = await h.connect("alice", "desk");
  await available(a);
  await a.sendStanza(
    x("message", { to: "carol@example.test", type: "memo", id: "u1" }, x("body", null, "odd")),
  );
  assert.equal(a.pending().length, 0, "no bounce");
  assert.equal(await h.server.services.storage.offline.count("carol"), 1);
  const c = await h.connect("carol", "home");
  await available(c);
  assert.equal((await c.next()).getChildText("body"), "odd");
  await a.disconnect();
  await c.disconnect();
});

test("a negative-priority login does not receive offline messages", async () => {
  const a = await h.connect("alice", "desk");
  await available(a);
  await a.sendStanza(chat("carol@example.test", "later"));
  const c = await h.connect("carol", "bot");
  await available(c, -1);
  assert.equal(c.pending().length, 0);
  assert.equal(await h.server.services.storage.offline.count("carol"), 1);
  await c.disconnect();
  const c2 = await h.connect("carol", "home");
  await available(c2);
  assert.equal((await c2.next()).getChildText("body"), "later");
  await a.disconnect();
  await c2.disconnect();
});

test("over the offline quota, messages bounce with service-unavailable", async () => {
  const a = await h.connect("alice", "desk");
  await available(a);
  for (const n of ["q1", "q2", "q3"]) await a.sendStanza(chat("carol@example.test", n));
  await a.sendStanza(chat("carol@example.test", "q4"));
  const bounce = await a.next();
  assert.equal(bounce.attrs.type, "error");
  assert.equal(bounce.attrs.id, "q4");
  assert.equal(errorCondition(bounce), "service-unavailable");
  assert.equal(await h.server.services.storage.offline.count("carol"), 3);
  await h.server.services.storage.offline.remove("carol");
  await a.disconnect();
});

test("a message to an account that does not exist bounces with service-unavailable", async () => {
  const a = await h.connect("alice", "desk");
  await available(a);
  await a.sendStanza(chat("nobody@example.test", "hello?"));
  const bounce = await a.next();
  assert.equal(bounce.attrs.type, "error");
  assert.equal(bounce.attrs.from, "nobody@example.test");
  assert.equal(errorCondition(bounce), "service-unavailable");
  await a.disconnect();
});

test("a malformed 'to' is answered with jid-malformed", async () => {
  const a = await h.connect("alice", "desk");
  await a.sendStanza(chat("bad@@example.test", "x", "m1"));
  const bounce = await a.next();
  assert.equal(errorCondition(bounce), "jid-malformed");
  await a.disconnect();
});

test("headlines go to every non-negative available resource and are never stored", async () => {
  const a = await h.connect("alice", "desk");
  const b1 = await h.connect("bob", "one");
  const b2 = await h.connect("bob", "two");
  await available(a);
  await available(b1, 1);
  await available(b2, 0);
  await a.sendStanza(x("message", { to: "bob@example.test", type: "headline" }, x("body", null, "news")));
  assert.equal((await b1.next()).getChildText("body"), "news");
  assert.equal((await b2.next()).getChildText("body"), "news");
  await a.sendStanza(x("message", { to: "carol@example.test", type: "headline" }, x("body", null, "lost")));
  assert.equal(await h.server.services.storage.offline.count("carol"), 0);
  assert.equal(a.pending().length, 0, "no error for an undeliverable headline");
  for (const s of [a, b1, b2]) await s.disconnect();
});
