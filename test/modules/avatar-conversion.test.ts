/**
 * Avatar conversion (XEP-0398): a PEP avatar (XEP-0084) becomes the vCard PHOTO when it is
 * public, a vCard PHOTO becomes the PEP avatar and is notified to contacts, removals follow,
 * neither conversion triggers the other, bad images are refused or skipped without touching
 * what is stored, and the photo hash goes into the account's presence (XEP-0153).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import { NS_CAPS, NS_DATA, NS_DISCO_INFO } from "../../src/core/xml/namespaces.js";
import avatarConversion from "../../src/modules/avatar-conversion/index.js";
import disco from "../../src/modules/disco/index.js";
import message from "../../src/modules/message/index.js";
import { capsVer } from "../../src/modules/pep/caps.js";
import pep from "../../src/modules/pep/index.js";
import presence from "../../src/modules/presence/index.js";
import roster from "../../src/modules/roster/index.js";
import vcard, { NS_VCARD } from "../../src/modules/vcard/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const D = "example.test";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const OWNER = "http://jabber.org/protocol/pubsub#owner";
const DATA = "urn:xmpp:avatar:data";
const METADATA = "urn:xmpp:avatar:metadata";
const UPDATE = "vcard-temp:x:update";
const CONVERSION = "urn:xmpp:pep-vcard-conversion:0";

/** A 1×1 PNG and a 1×1 GIF: real images, as clients send them. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);
const GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
const sha1 = (b: Buffer) => createHash("sha1").update(b).digest("hex");

let h: Harness;
let seq = 0;
/** Every "pep/published" and "vcard/changed" the server fires, as it fires them, to count conversions. */
const fired: { event: string; origin: string | undefined; node?: string }[] = [];

before(async () => {
  h = await startHarness({
    modules: [message, roster, presence, disco, vcard, pep, avatarConversion] as ModuleDefinition<unknown>[],
    config: { modules: { vcard: { maxBytes: 8192 } } },
  });
  h.server.services.hooks.on(
    "pep/published",
    ({ origin, node }) => {
      fired.push({ event: "pep/published", origin, node });
    },
    1000,
  );
  h.server.services.hooks.on(
    "vcard/changed",
    ({ origin }) => {
      fired.push({ event: "vcard/changed", origin });
    },
    1000,
  );
});
after(() => h.stop());

async function accounts(...prefixes: string[]): Promise<string[]> {
  const n = ++seq;
  const names = prefixes.map((p) => `${p}${n}`);
  for (const name of names) await h.createUser(name);
  return names;
}

async function befriend(a: string, b: string): Promise<void> {
  const item = (jid: string) => ({
    jid,
    subscription: "both" as const,
    ask: false,
    approved: false,
    groups: [],
  });
  await h.server.services.storage.roster.setItem(a, item(`${b}@${D}`));
  await h.server.services.storage.roster.setItem(b, item(`${a}@${D}`));
}

/** Available presence with capabilities that ask for `notify` nodes, answering the server's disco#info. */
async function online(s: FakeSession, notify: string[]): Promise<void> {
  const info = x(
    "query",
    { xmlns: NS_DISCO_INFO },
    x("identity", { category: "client", type: "pc", name: `Avatar test ${++seq}` }),
    ...notify.map((n) => x("feature", { var: `${n}+notify` })),
  );
  const ver = capsVer(info, "sha-1")!;
  await s.sendStanza(x("presence", null, x("c", { xmlns: NS_CAPS, hash: "sha-1", node: "https://t", ver })));
  const q = await s.nextMatching(
    (el) => el.name === "iq" && el.getChild("query", NS_DISCO_INFO) !== undefined,
  );
  await s.sendStanza(x("iq", { type: "result", id: q.attrs.id, to: q.attrs.from }, info));
}

const publishIq = (node: string, id: string, payload: XmlElement, access?: string) =>
  x(
    "iq",
    { type: "set" },
    x(
      "pubsub",
      { xmlns: PUBSUB },
      x("publish", { node }, x("item", { id }, payload)),
      access &&
        x(
          "publish-options",
          null,
          x(
            "x",
            { xmlns: NS_DATA, type: "submit" },
            x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", null, `${PUBSUB}#publish-options`)),
            x("field", { var: "pubsub#access_model" }, x("value", null, access)),
          ),
        ),
    ),
  );

/** Publishes an avatar the way XEP-0084 clients do: data, then metadata. */
async function publishAvatar(s: FakeSession, image: Buffer, type: string, access?: string, id = sha1(image)) {
  const data = await s.iq(publishIq(DATA, id, x("data", { xmlns: DATA }, image.toString("base64")), access));
  assert.equal(data.attrs.type, "result", data.toString());
  const info = x("info", { id, type, bytes: String(image.length) });
  const meta = await s.iq(publishIq(METADATA, id, x("metadata", { xmlns: METADATA }, info), access));
  assert.equal(meta.attrs.type, "result", meta.toString());
}

const vcardGet = (to?: string) => x("iq", { type: "get", to }, x("vCard", { xmlns: NS_VCARD }));
const vcardSet = (card: XmlElement) => x("iq", { type: "set" }, card);
const itemsIq = (to: string, node: string) =>
  x("iq", { type: "get", to }, x("pubsub", { xmlns: PUBSUB }, x("items", { node })));

/** A vCard with a name and, optionally, a photo whose BINVAL is wrapped as clients wrap it. */
function card(name: string, photo?: { bytes?: Buffer; binval?: string; type?: string }): XmlElement {
  const binval = photo && (photo.binval ?? photo.bytes!.toString("base64").replace(/(.{40})/g, "$1\n"));
  return x(
    "vCard",
    { xmlns: NS_VCARD },
    x("FN", null, name),
    photo &&
      x("PHOTO", null, photo.type !== undefined && x("TYPE", null, photo.type), x("BINVAL", null, binval!)),
  );
}

async function readVcard(s: FakeSession, of?: string): Promise<XmlElement> {
  const reply = await s.iq(vcardGet(of));
  assert.equal(reply.attrs.type, "result", reply.toString());
  return reply.getChild("vCard", NS_VCARD)!;
}

const photoOf = (card: XmlElement) => {
  const photo = card.getChild("PHOTO");
  const binval = photo?.getChildText("BINVAL");
  return photo && { type: photo.getChildText("TYPE"), bytes: Buffer.from(binval ?? "", "base64") };
};

const metadataEvent = (el: XmlElement) =>
  el.name === "message" && el.getChild("event", EVENT)?.getChild("items")?.attrs.node === METADATA;

const pause = (ms = 100) => new Promise((r) => setTimeout(r, ms));

test("the account advertises the conversion", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  const info = await a.iq(
    x("iq", { type: "get", to: `${alice}@${D}` }, x("query", { xmlns: NS_DISCO_INFO })),
  );
  const features = info
    .getChild("query", NS_DISCO_INFO)!
    .getChildren("feature")
    .map((f) => f.attrs.var);
  assert.ok(features.includes(CONVERSION), features.join(" "));
  assert.ok(
    !h.server.services.disco.getFeatures("host").includes(CONVERSION),
    "an account feature, not the server's",
  );
  await a.disconnect();
});

test("a public PEP avatar becomes the vCard PHOTO, the rest of the vCard kept, once", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  const a = await h.connect(alice!, "r");
  assert.equal((await a.iq(vcardSet(card("Alice")))).attrs.type, "result");
  fired.length = 0;
  await publishAvatar(a, PNG, "image/png", "open");
  const mine = await readVcard(a);
  assert.equal(mine.getChildText("FN"), "Alice");
  assert.deepEqual(photoOf(mine), { type: "image/png", bytes: PNG });
  // Anyone may read the vCard, so the vCard-only client of a stranger sees it too.
  const b = await h.connect(bob!, "r");
  assert.deepEqual(photoOf(await readVcard(b, `${alice}@${D}`)), { type: "image/png", bytes: PNG });
  // One vCard change, by the conversion; no PEP publication came back from it.
  assert.deepEqual(
    fired.map((f) => `${f.event} ${f.origin ?? "client"}`),
    ["pep/published client", "pep/published client", "vcard/changed avatar-conversion"],
  );
  // Publishing the same avatar again writes nothing.
  fired.length = 0;
  await publishAvatar(a, PNG, "image/png", "open");
  assert.ok(!fired.some((f) => f.event === "vcard/changed"));
  // A new one replaces the PHOTO.
  await publishAvatar(a, GIF, "image/gif", "open");
  assert.deepEqual(photoOf(await readVcard(a)), { type: "image/gif", bytes: GIF });
  await a.disconnect();
  await b.disconnect();
});

test("of several infos in the metadata, the one the data node holds is copied, not the one by URL", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  const id = sha1(GIF);
  const data = await a.iq(publishIq(DATA, id, x("data", { xmlns: DATA }, GIF.toString("base64")), "open"));
  assert.equal(data.attrs.type, "result");
  const metadata = x(
    "metadata",
    { xmlns: METADATA },
    x("info", {
      id: sha1(PNG),
      url: "https://example.com/a.png",
      type: "image/png",
      bytes: String(PNG.length),
    }),
    x("info", { id, type: "image/gif", bytes: String(GIF.length) }),
  );
  assert.equal((await a.iq(publishIq(METADATA, id, metadata, "open"))).attrs.type, "result");
  assert.deepEqual(photoOf(await readVcard(a)), { type: "image/gif", bytes: GIF });
  await a.disconnect();
});

test("a PEP avatar only contacts may see is not copied into the world-readable vCard", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  await publishAvatar(a, PNG, "image/png"); // the default access model: presence
  assert.equal((await readVcard(a)).children.length, 0);
  await a.disconnect();
});

test("a vCard PHOTO is published as the PEP avatar and notified to a contact, and not echoed back", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  const a = await h.connect(alice!, "r");
  const b = await h.connect(bob!, "r");
  await online(b, [METADATA]);
  fired.length = 0;
  const sent = card("Alice", { bytes: PNG, type: "image/png" });
  assert.equal((await a.iq(vcardSet(sent))).attrs.type, "result");

  const event = await b.nextMatching(metadataEvent);
  assert.equal(event.attrs.from, `${alice}@${D}`);
  const item = event.getChild("event", EVENT)!.getChild("items")!.getChild("item")!;
  assert.equal(item.attrs.id, sha1(PNG));
  const info = item.getChild("metadata", METADATA)!.getChild("info")!;
  assert.deepEqual(
    { id: info.attrs.id, type: info.attrs.type, bytes: info.attrs.bytes },
    { id: sha1(PNG), type: "image/png", bytes: String(PNG.length) },
  );
  // The data is there for the contact to fetch, under the id the metadata gives.
  const data = await b.iq(itemsIq(`${alice}@${D}`, DATA));
  const dataItem = data.getChild("pubsub", PUBSUB)!.getChild("items")!.getChild("item")!;
  assert.equal(dataItem.attrs.id, sha1(PNG));
  assert.deepEqual(Buffer.from(dataItem.getChildText("data", DATA)!, "base64"), PNG);
  // The nodes were created open, as the vCard is.
  for (const node of [DATA, METADATA]) {
    const config = await a.iq(
      x("iq", { type: "get" }, x("pubsub", { xmlns: OWNER }, x("configure", { node }))),
    );
    const access = config
      .getChild("pubsub", OWNER)!
      .getChild("configure")!
      .getChild("x", NS_DATA)!
      .getChildren("field")
      .find((f) => f.attrs.var === "pubsub#access_model");
    assert.equal(access?.getChildText("value"), "open", node);
  }
  // The vCard is kept exactly as sent: the conversion did not write it back.
  assert.equal((await readVcard(a)).toString(), sent.toString());
  assert.deepEqual(
    fired.map((f) => `${f.event} ${f.origin ?? "client"} ${f.node ?? ""}`.trim()),
    [
      "vcard/changed client",
      `pep/published avatar-conversion ${DATA}`,
      `pep/published avatar-conversion ${METADATA}`,
    ],
  );
  // The same photo again publishes nothing.
  await pause();
  fired.length = 0;
  assert.equal(
    (await a.iq(vcardSet(card("Alice A.", { bytes: PNG, type: "image/png" })))).attrs.type,
    "result",
  );
  await pause();
  assert.deepEqual(
    fired.map((f) => f.event),
    ["vcard/changed"],
  );
  assert.ok(!b.pending().some(metadataEvent), "no second notification");
  await a.disconnect();
  await b.disconnect();
});

test("removing the vCard PHOTO disables the PEP avatar it had put there; disabling a public PEP avatar removes the PHOTO", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  const a = await h.connect(alice!, "r");
  const b = await h.connect(bob!, "r");
  await online(b, [METADATA]);
  assert.equal((await a.iq(vcardSet(card("Alice", { bytes: PNG, type: "image/png" })))).attrs.type, "result");
  await b.nextMatching(metadataEvent);
  assert.equal((await a.iq(vcardSet(card("Alice")))).attrs.type, "result");
  const disabled = await b.nextMatching(metadataEvent);
  const metadata = disabled
    .getChild("event", EVENT)!
    .getChild("items")!
    .getChild("item")!
    .getChild("metadata", METADATA)!;
  assert.equal(metadata.children.length, 0, "empty metadata: no avatar (XEP-0084 §4.2)");

  // Back through PEP: a public avatar, then disabled with empty metadata.
  await publishAvatar(a, GIF, "image/gif", "open");
  assert.deepEqual(photoOf(await readVcard(a)), { type: "image/gif", bytes: GIF });
  const off = await a.iq(publishIq(METADATA, "off", x("metadata", { xmlns: METADATA })));
  assert.equal(off.attrs.type, "result");
  const after = await readVcard(a);
  assert.equal(after.getChild("PHOTO"), undefined);
  assert.equal(after.getChildText("FN"), "Alice");
  await a.disconnect();
  await b.disconnect();
});

test("a vCard without PHOTO leaves a PEP avatar it did not put there alone", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  await publishAvatar(a, PNG, "image/png"); // presence-only: never in the vCard
  fired.length = 0;
  assert.equal((await a.iq(vcardSet(card("Alice")))).attrs.type, "result");
  await pause();
  assert.ok(!fired.some((f) => f.event === "pep/published"));
  const meta = await a.iq(itemsIq(`${alice}@${D}`, METADATA));
  const item = meta.getChild("pubsub", PUBSUB)!.getChild("items")!.getChild("item")!;
  assert.equal(item.getChild("metadata", METADATA)!.getChild("info")!.attrs.id, sha1(PNG));
  await a.disconnect();
});

test("a vCard PHOTO that is not an image is refused and nothing stored changes", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  const good = card("Alice", { bytes: PNG, type: "image/png" });
  assert.equal((await a.iq(vcardSet(good))).attrs.type, "result");
  fired.length = 0;
  for (const photo of [
    { binval: "iVBORw0KGgo=AAAA!!", type: "image/png" },
    { bytes: GIF, type: "image/png" },
    { bytes: Buffer.from("just some text"), type: "text/plain" },
    { bytes: Buffer.from("just some text") },
  ]) {
    const refused = await a.iq(vcardSet(card("Mallory", photo)));
    assert.equal(errorCondition(refused), "not-acceptable", JSON.stringify(photo));
    assert.ok(refused.getChild("error")!.getChildText("text")!.length > 0, "the reason is given");
  }
  assert.equal((await readVcard(a)).toString(), good.toString());
  assert.deepEqual(fired, []);
  // Without TYPE, a recognised format is published with the type its bytes show.
  assert.equal((await a.iq(vcardSet(card("Alice", { bytes: GIF })))).attrs.type, "result");
  await pause();
  const meta = await a.iq(itemsIq(`${alice}@${D}`, METADATA));
  const info = meta
    .getChild("pubsub", PUBSUB)!
    .getChild("items")!
    .getChild("item")!
    .getChild("metadata")!
    .getChild("info")!;
  assert.deepEqual([info.attrs.id, info.attrs.type], [sha1(GIF), "image/gif"]);
  await a.disconnect();
});

test("a PEP avatar that cannot be vouched for is published but not copied into the vCard", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  const kept = card("Alice", { bytes: PNG, type: "image/png" });
  assert.equal((await a.iq(vcardSet(kept))).attrs.type, "result");
  await pause();
  // An id that is not the SHA-1 of the data; data that is not base64; bytes that are not the type named.
  await publishAvatar(a, GIF, "image/gif", "open", "0000000000000000000000000000000000000000");
  const bad = "b".repeat(40);
  await a.iq(publishIq(DATA, bad, x("data", { xmlns: DATA }, "not base64 at all!"), "open"));
  await a.iq(
    publishIq(
      METADATA,
      bad,
      x("metadata", { xmlns: METADATA }, x("info", { id: bad, type: "image/png", bytes: "3" })),
      "open",
    ),
  );
  await publishAvatar(a, Buffer.from("plain text"), "image/png", "open");
  // A metadata item naming no stored data, and one with only a URL.
  await a.iq(
    publishIq(
      METADATA,
      sha1(GIF),
      x("metadata", { xmlns: METADATA }, x("info", { id: "f".repeat(40), type: "image/gif", bytes: "1" })),
      "open",
    ),
  );
  await a.iq(
    publishIq(
      METADATA,
      "u",
      x(
        "metadata",
        { xmlns: METADATA },
        x("info", { id: "e".repeat(40), url: "https://example.com/a.png", type: "image/png", bytes: "1" }),
      ),
      "open",
    ),
  );
  assert.equal((await readVcard(a)).toString(), kept.toString());
  await a.disconnect();
});

test("the vCard photo hash goes into the account's available presence, broadcast and directed", async () => {
  const [alice, bob, carol] = await accounts("alice", "bob", "carol");
  await befriend(alice!, bob!);
  const b = await h.connect(bob!, "r");
  await b.sendStanza(x("presence"));
  const a = await h.connect(alice!, "r");
  const fromAlice = (el: XmlElement) =>
    el.name === "presence" && el.attrs.from === `${alice}@${D}/r` && !el.attrs.type;
  const photoIn = (el: XmlElement) => el.getChild("x", UPDATE)?.getChild("photo")?.text();

  // No avatar yet: an empty photo says so (XEP-0153 §3.2).
  await a.sendStanza(x("presence"));
  assert.equal(photoIn(await b.nextMatching(fromAlice)), "");

  assert.equal((await a.iq(vcardSet(card("Alice", { bytes: PNG, type: "image/png" })))).attrs.type, "result");
  await a.sendStanza(x("presence", null, x("show", null, "away")));
  const away = await b.nextMatching(fromAlice);
  assert.equal(away.getChildText("show"), "away");
  assert.equal(photoIn(away), sha1(PNG));
  assert.equal(away.getChildren("x").length, 1);

  // An <x/> without <photo/> gets one; a <photo/> the client set is left alone.
  await a.sendStanza(x("presence", null, x("x", { xmlns: UPDATE })));
  assert.equal(photoIn(await b.nextMatching(fromAlice)), sha1(PNG));
  await a.sendStanza(x("presence", null, x("x", { xmlns: UPDATE }, x("photo"))));
  assert.equal(photoIn(await b.nextMatching(fromAlice)), "");

  // Directed presence (a group chat join is one) carries it too.
  const c = await h.connect(carol!, "r");
  await a.sendStanza(x("presence", { to: `${carol}@${D}/r` }));
  const directed = await c.nextMatching(
    (el) => el.name === "presence" && el.attrs.from === `${alice}@${D}/r`,
  );
  assert.equal(photoIn(directed), sha1(PNG));

  // After a PEP avatar replaced it, the next presence has the new hash.
  await publishAvatar(a, GIF, "image/gif", "open");
  await a.sendStanza(x("presence"));
  assert.equal(photoIn(await b.nextMatching(fromAlice)), sha1(GIF));
  for (const s of [a, b, c]) await s.disconnect();
});

test("a presence whose photo hash cannot be read goes out with an empty update element", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  const b = await h.connect(bob!, "r");
  await b.sendStanza(x("presence"));
  const a = await h.connect(alice!, "r");
  const hashes = h.server.services.storage.keyValue("avatar-conversion");
  const read = hashes.get;
  hashes.get = () => Promise.reject(new Error("the database cannot be reached"));
  try {
    await a.sendStanza(x("presence"));
    const p = await b.nextMatching((el) => el.name === "presence" && el.attrs.from === `${alice}@${D}/r`);
    const update = p.getChild("x", UPDATE);
    assert.ok(update, `the update element: ${p}`);
    assert.equal(update.getChild("photo"), undefined, "no hash: not ready to advertise an image");
  } finally {
    hashes.get = read;
  }
  for (const s of [a, b]) await s.disconnect();
});

test("an account's vCard from before the conversion gives its hash on first presence", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  await h.server.services.storage
    .keyValue("vcard")
    .set(alice!, "vcard", card("Old", { bytes: GIF, type: "image/gif" }).toString());
  const b = await h.connect(bob!, "r");
  await b.sendStanza(x("presence"));
  const a = await h.connect(alice!, "r");
  await a.sendStanza(x("presence"));
  const p = await b.nextMatching((el) => el.name === "presence" && el.attrs.from === `${alice}@${D}/r`);
  assert.equal(p.getChild("x", UPDATE)?.getChildText("photo"), sha1(GIF));
  await a.disconnect();
  await b.disconnect();
});
