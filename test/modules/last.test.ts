import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import last, { NS_LAST } from "../../src/modules/last/index.js";
import presence from "../../src/modules/presence/index.js";
import roster from "../../src/modules/roster/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;

before(async () => {
  h = await startHarness({ modules: [roster, presence, last] as ModuleDefinition<unknown>[] });
  for (const u of ["alice", "bob", "carol", "dave"]) await h.createUser(u);
  // alice may see bob's presence; carol only has bob in her own roster.
  await h.server.services.storage.roster.setItem("bob", {
    jid: "alice@example.test",
    subscription: "both",
    ask: false,
    approved: false,
    groups: [],
  });
  await h.server.services.storage.roster.setItem("bob", {
    jid: "carol@example.test",
    subscription: "to",
    ask: false,
    approved: false,
    groups: [],
  });
});
after(() => h.stop());

const condition = errorCondition;
const ask = (to?: string, type = "get") => x("iq", { type, to }, x("query", { xmlns: NS_LAST }));

test("the server's answer is its uptime", async () => {
  const a = await h.connect("alice", "uptime");
  h.clock.advance(90_500);
  const reply = await a.iq(ask("example.test"));
  assert.equal(reply.attrs.type, "result");
  const seconds = Number(reply.getChild("query", NS_LAST)!.attrs.seconds);
  assert.equal(seconds, 90);
  h.clock.advance(10_000);
  const later = Number((await a.iq(ask("example.test"))).getChild("query")!.attrs.seconds);
  assert.equal(later, seconds + 10);
  assert.equal(reply.getChild("query")!.text(), "");
  await a.disconnect();
});

test("a subscriber learns the seconds since the last logout and its status", async () => {
  const b = await h.connect("bob", "phone");
  await b.sendStanza(x("presence", { type: "unavailable" }, x("status", null, "Heading Home")));
  await b.disconnect();
  h.clock.advance(903_000);
  const a = await h.connect("alice", "watcher");
  const reply = await a.iq(ask("bob@example.test"));
  assert.equal(reply.attrs.type, "result");
  const q = reply.getChild("query", NS_LAST)!;
  assert.equal(q.attrs.seconds, "903");
  assert.equal(q.text(), "Heading Home");
  // The account may ask about itself too (no 'to': its own bare JID).
  const d = await h.connect("bob", "again");
  await d.sendStanza(x("presence"));
  assert.equal((await d.iq(ask())).getChild("query")!.attrs.seconds, "0");
  await d.disconnect();
  await a.disconnect();
});

test("an account with an available resource is reported as active now", async () => {
  const b = await h.connect("bob", "online");
  await b.sendStanza(x("presence"));
  const a = await h.connect("alice", "watcher2");
  const q = (await a.iq(ask("bob@example.test"))).getChild("query")!;
  assert.equal(q.attrs.seconds, "0");
  assert.equal(q.text(), "");
  await b.disconnect();
  // A disconnect without unavailable presence records an empty status.
  h.clock.advance(5_000);
  const after = (await a.iq(ask("bob@example.test"))).getChild("query")!;
  assert.equal(after.attrs.seconds, "5");
  assert.equal(after.text(), "");
  await a.disconnect();
});

test("a resource still connected but unavailable is not active: the time and status of its unavailable presence", async () => {
  const b = await h.connect("bob", "quiet");
  const a = await h.connect("alice", "watcher4");
  // Connected without initial presence: not available either (RFC 6121 §4.2).
  assert.notEqual((await a.iq(ask("bob@example.test"))).getChild("query")!.attrs.seconds, "0");
  await b.sendStanza(x("presence"));
  assert.equal((await a.iq(ask("bob@example.test"))).getChild("query")!.attrs.seconds, "0");
  await b.sendStanza(x("presence", { type: "unavailable" }, x("status", null, "Goodbye")));
  h.clock.advance(7_000);
  const q = (await a.iq(ask("bob@example.test"))).getChild("query")!;
  assert.equal(q.attrs.seconds, "7");
  assert.equal(q.text(), "Goodbye");
  const self = (await b.iq(ask())).getChild("query")!;
  assert.equal(self.text(), "Goodbye");
  await b.disconnect();
  await a.disconnect();
});

test("non-subscribers are forbidden, unknown accounts unavailable, no record item-not-found", async () => {
  const c = await h.connect("carol", "nosy");
  assert.equal(condition(await c.iq(ask("bob@example.test"))), "forbidden");
  assert.equal(condition(await c.iq(ask("nobody@example.test"))), "service-unavailable");
  await c.disconnect();
  // dave never logged out: nothing to report, even to a subscriber.
  await h.server.services.storage.roster.setItem("dave", {
    jid: "alice@example.test",
    subscription: "from",
    ask: false,
    approved: false,
    groups: [],
  });
  const a = await h.connect("alice", "watcher3");
  assert.equal(condition(await a.iq(ask("dave@example.test"))), "item-not-found");
  await a.disconnect();
});

test("a query to a full JID reaches the client only when the requester may see its presence", async () => {
  const b = await h.connect("bob", "desk");
  const a = await h.connect("alice", "watcher4");
  const c = await h.connect("carol", "nosy2");
  await a.sendStanza(
    x("iq", { type: "get", id: "full1", to: "bob@example.test/desk" }, x("query", { xmlns: NS_LAST })),
  );
  const delivered = await b.next();
  assert.equal(delivered.attrs.id, "full1");
  assert.equal(delivered.attrs.from, "alice@example.test/watcher4");
  const refused = await c.iq(ask("bob@example.test/desk"));
  assert.equal(condition(refused), "forbidden");
  assert.equal(b.pending().length, 0);
  // Other IQs to full JIDs are not affected.
  await c.sendStanza(
    x("iq", { type: "get", id: "ping1", to: "bob@example.test/desk" }, x("ping", { xmlns: "urn:xmpp:ping" })),
  );
  assert.equal((await b.next()).attrs.id, "ping1");
  for (const s of [a, b, c]) await s.disconnect();
});

test("wrong type and malformed payloads get errors", async () => {
  const a = await h.connect("alice", "bad");
  assert.equal(condition(await a.iq(ask("bob@example.test", "set"))), "service-unavailable");
  const wrong = x("iq", { type: "get", to: "example.test" }, x("last", { xmlns: NS_LAST }));
  assert.equal(condition(await a.iq(wrong)), "bad-request");
  const wrongBare = x("iq", { type: "get", to: "bob@example.test" }, x("last", { xmlns: NS_LAST }));
  assert.equal(condition(await a.iq(wrongBare)), "bad-request");
  await a.disconnect();
});

test("the feature is advertised for the server and for accounts", () => {
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_LAST));
  assert.ok(h.server.services.disco.getFeatures("account").includes(NS_LAST));
});
