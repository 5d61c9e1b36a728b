import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import privateStorage, { isReserved, NS_PRIVATE } from "../../src/modules/private/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [privateStorage] as ModuleDefinition<unknown>[],
    config: { modules: { private: { maxBytes: 2048, maxElements: 3 } } },
  });
  for (const u of ["hamlet", "macbeth"]) await h.createUser(u);
});
after(() => h.stop());

const condition = errorCondition;
const query = (type: string, children: XmlElement[], to?: string) =>
  x("iq", { type, to }, x("query", { xmlns: NS_PRIVATE }, ...children));
const prefs = (nick: string) => x("exodus", { xmlns: "exodus:prefs" }, x("defaultnick", null, nick));

test("an account stores XML and gets it back by element name and namespace", async () => {
  const s = await h.connect("hamlet", "denmark");
  assert.equal((await s.iq(query("set", [prefs("Hamlet")]))).attrs.type, "result");
  const reply = await s.iq(query("get", [x("exodus", { xmlns: "exodus:prefs" })]));
  assert.equal(reply.attrs.type, "result");
  const stored = reply.getChild("query", NS_PRIVATE)!.elements();
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.toString(), prefs("Hamlet").toString());
  // Same namespace, other element name: a separate entry, still empty.
  const other = await s.iq(query("get", [x("other", { xmlns: "exodus:prefs" })]));
  assert.equal(other.getChild("query")!.elements()[0]!.toString(), '<other xmlns="exodus:prefs"/>');
  await s.disconnect();
});

test("nothing stored: the empty element asked for", async () => {
  const s = await h.connect("hamlet", "empty");
  const reply = await s.iq(query("get", [x("storage", { xmlns: "storage:bookmarks" })]));
  assert.equal(reply.getChild("query")!.elements()[0]!.toString(), '<storage xmlns="storage:bookmarks"/>');
  await s.disconnect();
});

test("a set may carry several elements; a later set replaces an element", async () => {
  const s = await h.connect("hamlet", "multi");
  const bookmarks = x(
    "storage",
    { xmlns: "storage:bookmarks" },
    x("conference", { jid: "elsinore@conference.example" }),
  );
  assert.equal((await s.iq(query("set", [prefs("Prince"), bookmarks]))).attrs.type, "result");
  const got = await s.iq(query("get", [x("storage", { xmlns: "storage:bookmarks" })]));
  assert.equal(got.getChild("query")!.elements()[0]!.toString(), bookmarks.toString());
  const nick = await s.iq(query("get", [x("exodus", { xmlns: "exodus:prefs" })]));
  assert.equal(nick.getChild("query")!.elements()[0]!.getChildText("defaultnick"), "Prince");
  await s.disconnect();
});

test("another account's private data is forbidden, for get and set", async () => {
  const m = await h.connect("macbeth", "castle");
  const setOther = await m.iq(query("set", [prefs("Macbeth")], "hamlet@example.test"));
  assert.equal(condition(setOther), "forbidden");
  const getOther = await m.iq(query("get", [x("exodus", { xmlns: "exodus:prefs" })], "hamlet@example.test"));
  assert.equal(condition(getOther), "forbidden");
  // macbeth's own space is separate.
  const own = await m.iq(query("get", [x("exodus", { xmlns: "exodus:prefs" })]));
  assert.equal(own.getChild("query")!.elements()[0]!.children.length, 0);
  await m.disconnect();
});

test("reserved namespaces and an empty query are not-acceptable", async () => {
  assert.ok(isReserved("jabber:iq:roster"));
  assert.ok(isReserved("http://jabber.org/protocol/muc"));
  assert.ok(isReserved("vcard-temp"));
  assert.ok(!isReserved("storage:bookmarks"));
  const s = await h.connect("hamlet", "reserved");
  const vcard = x("vCard", { xmlns: "vcard-temp" }, x("FN", null, "Hamlet"));
  assert.equal(condition(await s.iq(query("set", [vcard]))), "not-acceptable");
  assert.equal(
    condition(await s.iq(query("get", [x("query", { xmlns: "jabber:iq:roster" })]))),
    "not-acceptable",
  );
  // A child without a namespace of its own is in jabber:iq:private, which is reserved too.
  assert.equal(condition(await s.iq(query("set", [x("plain", null, "text")]))), "not-acceptable");
  assert.equal(condition(await s.iq(query("set", []))), "not-acceptable");
  assert.equal(condition(await s.iq(query("get", []))), "not-acceptable");
  await s.disconnect();
});

test("a get for two elements and a wrong payload element are bad requests", async () => {
  const s = await h.connect("hamlet", "bad");
  const two = [x("a", { xmlns: "urn:a" }), x("b", { xmlns: "urn:b" })];
  assert.equal(condition(await s.iq(query("get", two))), "bad-request");
  const wrong = x("iq", { type: "get" }, x("storage", { xmlns: NS_PRIVATE }));
  assert.equal(condition(await s.iq(wrong)), "bad-request");
  await s.disconnect();
});

test("size and count limits; a refused set stores nothing", async () => {
  const s = await h.connect("macbeth", "limits");
  const big = x("notes", { xmlns: "urn:notes" }, "N".repeat(3000));
  assert.equal(condition(await s.iq(query("set", [x("ok", { xmlns: "urn:ok" }), big]))), "not-acceptable");
  const ok = await s.iq(query("get", [x("ok", { xmlns: "urn:ok" })]));
  assert.equal(
    ok.getChild("query")!.elements()[0]!.children.length,
    0,
    "nothing of the refused set was kept",
  );
  // maxElements is 3: three distinct elements fit, a fourth does not, replacing one still does.
  const el = (n: number, v = "v") => x(`e${n}`, { xmlns: "urn:count" }, v);
  assert.equal((await s.iq(query("set", [el(1), el(2), el(3)]))).attrs.type, "result");
  assert.equal(condition(await s.iq(query("set", [el(4)]))), "not-acceptable");
  assert.equal((await s.iq(query("set", [el(2, "new")]))).attrs.type, "result");
  await s.disconnect();
});

test("the feature is advertised", () => {
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_PRIVATE));
});
