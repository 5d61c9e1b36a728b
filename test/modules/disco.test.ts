import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import disco, { type DiscoApi, NS_DISCO_INFO, NS_DISCO_ITEMS } from "../../src/modules/disco/index.js";
import ping from "../../src/modules/ping/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [disco, ping] as ModuleDefinition<unknown>[],
    config: { modules: { disco: { name: "Test Server" } } },
  });
  for (const u of ["alice", "bob", "carol"]) await h.createUser(u);
  // bob lets alice see his presence; carol has alice in her roster without sharing presence.
  await h.server.services.storage.roster.setItem("bob", {
    jid: "alice@example.test",
    subscription: "from",
    ask: false,
    approved: false,
    groups: [],
  });
  await h.server.services.storage.roster.setItem("carol", {
    jid: "alice@example.test",
    subscription: "to",
    ask: false,
    approved: false,
    groups: [],
  });
});
after(() => h.stop());

const condition = errorCondition;
const info = (to?: string, node?: string) =>
  x("iq", { type: "get", to }, x("query", { xmlns: NS_DISCO_INFO, node }));
const items = (to?: string, node?: string) =>
  x("iq", { type: "get", to }, x("query", { xmlns: NS_DISCO_ITEMS, node }));
const features = (el: XmlElement) =>
  el
    .getChild("query")!
    .getChildren("feature")
    .map((f) => f.attrs.var);

async function session(user: string, resource: string, available = true): Promise<FakeSession> {
  const s = await h.connect(user, resource);
  if (available) s.presence = x("presence");
  return s;
}

test("the server identity and features come from the disco registry", async () => {
  const a = await session("alice", "info");
  const reply = await a.iq(info("example.test"));
  assert.equal(reply.attrs.type, "result");
  const query = reply.getChild("query", NS_DISCO_INFO)!;
  const identity = query.getChild("identity")!;
  assert.deepEqual(
    { category: identity.attrs.category, type: identity.attrs.type, name: identity.attrs.name },
    { category: "server", type: "im", name: "Test Server" },
  );
  const vars = features(reply);
  for (const f of [NS_DISCO_INFO, NS_DISCO_ITEMS, "urn:xmpp:ping"]) assert.ok(vars.includes(f), f);
  assert.deepEqual(vars, h.server.services.disco.getFeatures("host"));

  // A feature added later by any module appears without touching the disco module.
  const remove = h.server.services.disco.addFeature("urn:example:later");
  assert.ok(features(await a.iq(info("example.test"))).includes("urn:example:later"));
  remove();
  assert.ok(!features(await a.iq(info("example.test"))).includes("urn:example:later"));
  await a.disconnect();
});

test("XEP-0128 extension forms are included in the server's info", async () => {
  const form = x(
    "x",
    { xmlns: "jabber:x:data", type: "result" },
    x(
      "field",
      { var: "FORM_TYPE", type: "hidden" },
      x("value", null, "http://jabber.org/network/serverinfo"),
    ),
    x("field", { var: "admin-addresses" }, x("value", null, "mailto:admin@example.test")),
  );
  const { extensions } = h.server.services.disco;
  extensions.push(form);
  const a = await session("alice", "ext");
  const reply = await a.iq(info("example.test"));
  const got = reply.getChild("query")!.getChild("x", "jabber:x:data");
  assert.equal(got?.toString(), form.toString());
  extensions.splice(extensions.indexOf(form), 1);
  await a.disconnect();
});

test("unknown nodes are item-not-found on the server, and the node is mirrored for known ones", async () => {
  const a = await session("alice", "nodes");
  const missing = await a.iq(info("example.test", "urn:example:none"));
  assert.equal(condition(missing), "item-not-found");
  assert.equal(condition(await a.iq(items("example.test", "urn:example:none"))), "item-not-found");

  const api = h.server.services.apis.get("disco") as DiscoApi;
  const remove = api.addNode("host", "urn:example:node", {
    info: () => ({
      identities: [{ category: "automation", type: "command-list" }],
      features: [NS_DISCO_INFO],
    }),
    items: (q) => [{ jid: "example.test", node: "cmd-1", name: `for ${q.from.bareString}` }],
  });
  const found = await a.iq(info("example.test", "urn:example:node"));
  assert.equal(found.getChild("query")!.attrs.node, "urn:example:node");
  assert.equal(found.getChild("query")!.getChild("identity")!.attrs.type, "command-list");
  const listed = await a.iq(items("example.test", "urn:example:node"));
  const item = listed.getChild("query")!.getChild("item")!;
  assert.deepEqual(item.attrs, { jid: "example.test", name: "for alice@example.test", node: "cmd-1" });
  remove();
  assert.equal(condition(await a.iq(info("example.test", "urn:example:node"))), "item-not-found");
  await a.disconnect();
});

test("server items come from registered providers; none gives an empty query", async () => {
  const a = await session("alice", "items");
  const empty = await a.iq(items("example.test"));
  assert.equal(empty.attrs.type, "result");
  assert.equal(empty.getChild("query", NS_DISCO_ITEMS)!.elements().length, 0);

  const api = h.server.services.apis.get("disco") as DiscoApi;
  const remove = api.addItems("host", () => [{ jid: "upload.example.test", name: "Uploads" }]);
  const reply = await a.iq(items("example.test"));
  assert.deepEqual(
    reply
      .getChild("query")!
      .getChildren("item")
      .map((i) => i.attrs.jid),
    ["upload.example.test"],
  );
  remove();
  await a.disconnect();
});

test("an account's info is answered to the account itself, with the account identity and features", async () => {
  const a = await session("alice", "self");
  for (const to of [undefined, "alice@example.test"]) {
    const reply = await a.iq(info(to));
    assert.equal(reply.attrs.type, "result");
    const identity = reply.getChild("query")!.getChild("identity")!;
    assert.equal(identity.attrs.category, "account");
    assert.equal(identity.attrs.type, "registered");
    assert.deepEqual(features(reply), h.server.services.disco.getFeatures("account"));
    assert.ok(features(reply).includes("urn:xmpp:ping"));
  }
  await a.disconnect();
});

test("an account's info goes to contacts with a from/both subscription only", async () => {
  const a = await session("alice", "contact");
  // bob's roster: alice has 'from' → allowed.
  assert.equal((await a.iq(info("bob@example.test"))).attrs.type, "result");
  // carol's roster: alice has only 'to' → not allowed to see carol's presence.
  assert.equal(condition(await a.iq(info("carol@example.test"))), "service-unavailable");
  // The same answer as for an account that does not exist (no directory harvesting).
  assert.equal(condition(await a.iq(info("nobody@example.test"))), "service-unavailable");
  assert.equal(condition(await a.iq(info("nobody@example.test", "x"))), "service-unavailable");
  const b = await session("bob", "probe");
  assert.equal(condition(await b.iq(info("alice@example.test"))), "service-unavailable");
  await a.disconnect();
  await b.disconnect();
});

test("an account's items list its available resources to those allowed, and are empty for others", async () => {
  const b1 = await session("bob", "phone");
  const b2 = await session("bob", "laptop");
  const b3 = await session("bob", "idle", false);
  const a = await session("alice", "items-of-bob");
  const reply = await a.iq(items("bob@example.test"));
  const jids = reply
    .getChild("query")!
    .getChildren("item")
    .map((i) => i.attrs.jid)
    .sort();
  assert.deepEqual(jids, ["bob@example.test/laptop", "bob@example.test/phone"]);

  const c = await session("carol", "items-of-bob");
  const hidden = await c.iq(items("bob@example.test"));
  assert.equal(hidden.attrs.type, "result");
  assert.equal(hidden.getChild("query")!.elements().length, 0);
  const unknown = await c.iq(items("nobody@example.test", "some-node"));
  assert.equal(unknown.attrs.type, "result");
  assert.equal(unknown.getChild("query")!.attrs.node, "some-node");
  // An unknown node of a visible account is item-not-found.
  assert.equal(condition(await a.iq(items("bob@example.test", "some-node"))), "item-not-found");
  assert.equal(condition(await a.iq(info("bob@example.test", "some-node"))), "item-not-found");
  for (const s of [b1, b2, b3, a, c]) await s.disconnect();
});

test("malformed requests and wrong types are refused", async () => {
  const a = await session("alice", "bad");
  const wrongElement = x("iq", { type: "get", to: "example.test" }, x("items", { xmlns: NS_DISCO_INFO }));
  assert.equal(condition(await a.iq(wrongElement)), "bad-request");
  const twoChildren = x(
    "iq",
    { type: "get", to: "example.test" },
    x("query", { xmlns: NS_DISCO_INFO }),
    x("query", { xmlns: NS_DISCO_ITEMS }),
  );
  assert.equal(condition(await a.iq(twoChildren)), "bad-request");
  const set = x("iq", { type: "set", to: "example.test" }, x("query", { xmlns: NS_DISCO_INFO }));
  assert.equal(condition(await a.iq(set)), "service-unavailable");
  await a.disconnect();
});

test("unloading the module removes its identities and features from the registry", async () => {
  const registry = h.server.services.disco;
  assert.ok(registry.getFeatures("host").includes(NS_DISCO_INFO));
  await h.server.modules.unload("disco");
  assert.ok(!registry.getFeatures("host").includes(NS_DISCO_INFO));
  assert.ok(!registry.getFeatures("account").includes(NS_DISCO_ITEMS));
  assert.equal(registry.getIdentities("host").length, 0);
  assert.equal(h.server.services.apis.get("disco"), undefined);
  await h.server.modules.load(disco as ModuleDefinition<unknown>);
});
