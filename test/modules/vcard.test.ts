import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import vcard, { NS_VCARD } from "../../src/modules/vcard/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [vcard] as ModuleDefinition<unknown>[],
    config: { modules: { vcard: { maxBytes: 4096 } } },
  });
  for (const u of ["alice", "bob", "carol"]) await h.createUser(u);
});
after(() => h.stop());

const condition = errorCondition;
const get = (to?: string) => x("iq", { type: "get", to }, x("vCard", { xmlns: NS_VCARD }));
const set = (card: XmlElement, to?: string) => x("iq", { type: "set", to }, card);

/** A vCard with a photo whose BINVAL keeps its line breaks, as clients send it. */
function card(name: string): XmlElement {
  return x(
    "vCard",
    { xmlns: NS_VCARD, version: "3.0" },
    x("FN", null, name),
    x("N", null, x("FAMILY", null, "Saint-Andre"), x("GIVEN", null, "Peter"), x("MIDDLE")),
    x("DESC", null, "Fish & chips <daily>"),
    x("PHOTO", null, x("TYPE", null, "image/png"), x("BINVAL", null, "iVBORw0KGgo=\nAAAAAElFTkSuQmCC\n")),
  );
}

test("an account sets its vCard and reads it back exactly as sent", async () => {
  const a = await h.connect("alice", "desk");
  const mine = card("Alice");
  const stored = await a.iq(set(mine));
  assert.equal(stored.attrs.type, "result");
  assert.equal(stored.elements().length, 0);
  const reply = await a.iq(get());
  assert.equal(reply.attrs.type, "result");
  assert.equal(reply.getChild("vCard", NS_VCARD)!.toString(), mine.toString());
  // Setting with 'to' = own bare JID is the same as no 'to'.
  const renamed = card("Alice Liddell");
  assert.equal((await a.iq(set(renamed, "alice@example.test"))).attrs.type, "result");
  assert.equal((await a.iq(get("alice@example.test"))).getChild("vCard")!.toString(), renamed.toString());
  await a.disconnect();
});

test("anyone may read another account's vCard", async () => {
  const b = await h.connect("bob", "reader");
  const reply = await b.iq(get("alice@example.test"));
  assert.equal(reply.attrs.type, "result");
  assert.equal(reply.attrs.from, "alice@example.test");
  assert.equal(reply.getChild("vCard")!.getChildText("FN"), "Alice Liddell");
  await b.disconnect();
});

test("no vCard: an empty one for the owner, service-unavailable for others, as for unknown accounts", async () => {
  const c = await h.connect("carol", "new");
  const own = await c.iq(get());
  assert.equal(own.attrs.type, "result");
  assert.equal(own.getChild("vCard", NS_VCARD)!.children.length, 0);
  const b = await h.connect("bob", "nosy");
  assert.equal(condition(await b.iq(get("carol@example.test"))), "service-unavailable");
  assert.equal(condition(await b.iq(get("nobody@example.test"))), "service-unavailable");
  await c.disconnect();
  await b.disconnect();
});

test("only the owner may set a vCard", async () => {
  const b = await h.connect("bob", "intruder");
  const reply = await b.iq(set(card("Mallory"), "alice@example.test"));
  assert.equal(condition(reply), "forbidden");
  assert.equal(reply.getChild("error")!.attrs.type, "auth");
  const a = await h.connect("alice", "check");
  assert.equal((await a.iq(get())).getChild("vCard")!.getChildText("FN"), "Alice Liddell");
  await a.disconnect();
  await b.disconnect();
});

test("a vCard over the size limit is refused and the old one kept", async () => {
  const a = await h.connect("alice", "big");
  const big = x("vCard", { xmlns: NS_VCARD }, x("PHOTO", null, x("BINVAL", null, "A".repeat(5000))));
  assert.equal(condition(await a.iq(set(big))), "not-acceptable");
  assert.equal((await a.iq(get())).getChild("vCard")!.getChildText("FN"), "Alice Liddell");
  // Just under the limit is fine.
  const fits = x("vCard", { xmlns: NS_VCARD }, x("DESC", null, "B".repeat(3900)));
  assert.ok(Buffer.byteLength(fits.toString()) <= 4096);
  assert.equal((await a.iq(set(fits))).attrs.type, "result");
  await a.disconnect();
});

test("setting an empty vCard removes it", async () => {
  const a = await h.connect("alice", "clear");
  assert.equal((await a.iq(set(x("vCard", { xmlns: NS_VCARD })))).attrs.type, "result");
  assert.equal((await a.iq(get())).getChild("vCard")!.children.length, 0);
  const b = await h.connect("bob", "after-clear");
  assert.equal(condition(await b.iq(get("alice@example.test"))), "service-unavailable");
  await a.disconnect();
  await b.disconnect();
});

test("malformed requests are refused", async () => {
  const a = await h.connect("alice", "bad");
  assert.equal(
    condition(await a.iq(x("iq", { type: "get" }, x("vcard", { xmlns: NS_VCARD })))),
    "bad-request",
  );
  assert.equal(
    condition(await a.iq(x("iq", { type: "set" }, x("VCARD", { xmlns: NS_VCARD })))),
    "bad-request",
  );
  await a.disconnect();
});

test("the feature is advertised and invalid options are refused", () => {
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_VCARD));
  assert.ok(h.server.services.disco.getFeatures("account").includes(NS_VCARD));
  assert.equal(vcard.options!.safeParse({ maxBytes: 10 }).success, false);
  assert.equal(vcard.options!.safeParse({ maxBytes: "big" }).success, false);
});
