import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { NS_STANZAS } from "../../src/core/errors.js";
import { parseJid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import type { RosterItem } from "../../src/core/storage/types.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import presence from "../../src/modules/presence/index.js";
import roster, { NS_ROSTER, NS_ROSTERVER, type RosterApi } from "../../src/modules/roster/index.js";
import { type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const REMOTE = "remote.test";
let h: Harness;
/** Stanzas the server routed to the remote domain, as a server-to-server link would carry them. */
const routed: XmlElement[] = [];
let userSeq = 0;

before(async () => {
  h = await startHarness({
    modules: [roster, presence] as ModuleDefinition<unknown>[],
    config: { modules: { roster: { maxItems: 3, maxNameBytes: 20, maxGroupBytes: 10, maxGroups: 3 } } },
  });
  h.server.services.router.addRemoteRoute({
    kind: "test",
    priority: 0,
    canRoute: (d) => d === REMOTE,
    send: (stanza) => {
      routed.push(stanza.clone());
    },
  });
});
after(() => h.stop());

/** A new account for each test, so tests never see each other's rosters. */
async function newUser(prefix = "user"): Promise<string> {
  const name = `${prefix}${++userSeq}`;
  await h.createUser(name);
  return name;
}

/** Consumes and returns everything a session has received so far. */
async function take(s: FakeSession): Promise<XmlElement[]> {
  const got = s.pending();
  for (let i = 0; i < got.length; i++) await s.next();
  return got;
}

function errorCondition(el: XmlElement): string | undefined {
  return el
    .getChild("error")
    ?.elements()
    .find((c) => c.attrs.xmlns === NS_STANZAS)?.name;
}

const rosterGet = (ver?: string) => x("iq", { type: "get" }, x("query", { xmlns: NS_ROSTER, ver }));
const rosterSet = (...items: XmlElement[]) =>
  x("iq", { type: "set" }, x("query", { xmlns: NS_ROSTER }, ...items));
const item = (jid: string, attrs: Record<string, string> = {}, ...groups: string[]) =>
  x("item", { jid, ...attrs }, ...groups.map((g) => x("group", null, g)));

/** Sends a roster set; returns the reply and the pushes the sender got before it. */
async function set(
  s: FakeSession,
  ...items: XmlElement[]
): Promise<{ reply: XmlElement; pushes: XmlElement[] }> {
  await take(s);
  const stanza = rosterSet(...items);
  stanza.attrs.id = `set${Math.random().toString(36).slice(2)}`;
  await s.sendStanza(stanza);
  const got = await take(s);
  const reply = got.find((el) => el.attrs.id === stanza.attrs.id);
  assert.ok(reply, "no reply to the roster set");
  return { reply, pushes: got.filter((el) => el !== reply && el.name === "iq" && el.attrs.type === "set") };
}

async function interested(username: string, resource: string): Promise<FakeSession> {
  const s = await h.connect(username, resource);
  const reply = await s.iq(rosterGet());
  assert.equal(reply.attrs.type, "result");
  return s;
}

/** The attributes a client would see (unset ones are not serialised). */
function attrsOf(el: XmlElement): Record<string, string> {
  return Object.fromEntries(Object.entries(el.attrs).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
}

function pushedItem(push: XmlElement): XmlElement {
  const query = push.getChild("query", NS_ROSTER);
  assert.ok(query, "a push carries a roster query");
  const items = query.getChildren("item");
  assert.equal(items.length, 1, "a push carries exactly one item");
  return items[0]!;
}

test("the stream features after authentication advertise roster versioning", async () => {
  const s = await h.connect(await newUser());
  const offered = [];
  for (const p of h.server.services.streamFeatures.forStage("post-auth")) {
    const o = await p.offer(s);
    if (o) offered.push(...(Array.isArray(o) ? o : [o]));
  }
  assert.ok(offered.some((el) => el.name === "ver" && el.attrs.xmlns === NS_ROSTERVER));
  await s.disconnect();
});

test("a roster get returns the items with the current version and makes the resource interested", async () => {
  const u = await newUser();
  const s = await h.connect(u, "desk");
  assert.equal(s.rosterRequested, false);
  const empty = await s.iq(rosterGet());
  assert.equal(empty.attrs.type, "result");
  const q = empty.getChild("query", NS_ROSTER)!;
  assert.equal(q.attrs.ver, "0");
  assert.equal(q.elements().length, 0);
  assert.equal(s.rosterRequested, true);

  await set(s, item("nurse@example.test", { name: "Nurse" }, "Servants"));
  const full = await s.iq(rosterGet());
  const items = full.getChild("query", NS_ROSTER)!.getChildren("item");
  assert.equal(items.length, 1);
  assert.deepEqual(attrsOf(items[0]!), { jid: "nurse@example.test", name: "Nurse", subscription: "none" });
  assert.deepEqual(
    items[0]!.getChildren("group").map((g) => g.text()),
    ["Servants"],
  );
  await s.disconnect();
});

test("roster versioning: same version → empty result; older or unknown version → the full roster", async () => {
  const u = await newUser();
  const s = await interested(u, "desk");
  const { pushes } = await set(s, item("a@example.test"));
  const ver1 = pushes[0]!.getChild("query", NS_ROSTER)!.attrs.ver!;
  const current = await s.iq(rosterGet(ver1));
  assert.equal(current.attrs.type, "result");
  assert.equal(current.children.length, 0, "no query element when nothing changed");

  const second = await set(s, item("b@example.test"));
  const ver2 = second.pushes[0]!.getChild("query")!.attrs.ver!;
  assert.notEqual(ver2, ver1);
  const stale = await s.iq(rosterGet(ver1));
  const q = stale.getChild("query", NS_ROSTER)!;
  assert.equal(q.attrs.ver, ver2);
  assert.deepEqual(
    q.getChildren("item").map((i) => i.attrs.jid),
    ["a@example.test", "b@example.test"],
  );
  const unknown = await s.iq(rosterGet("not-a-version"));
  assert.equal(unknown.getChild("query", NS_ROSTER)!.getChildren("item").length, 2);
  // An empty ver attribute asks for the whole roster too (RFC 6121 §2.6.2).
  assert.equal((await s.iq(rosterGet(""))).getChild("query", NS_ROSTER)!.getChildren("item").length, 2);
  await s.disconnect();
});

test("a roster set is pushed, with the new version, to interested resources only", async () => {
  const u = await newUser();
  const a = await interested(u, "a");
  const b = await interested(u, "b");
  const quiet = await h.connect(u, "quiet"); // never asked for the roster
  await take(b);
  const { reply, pushes } = await set(a, item("romeo@example.test", { name: "Romeo" }, "Friends", "Lovers"));
  assert.equal(reply.attrs.type, "result");
  assert.equal(pushes.length, 1);
  const ver = (await h.server.services.storage.roster.get(u)).version;
  for (const push of [pushes[0]!, ...(await take(b))]) {
    assert.equal(push.attrs.type, "set");
    assert.equal(push.attrs.from, undefined, "pushes come from the account itself (no 'from')");
    const q = push.getChild("query", NS_ROSTER)!;
    assert.equal(q.attrs.ver, String(ver));
    const it = pushedItem(push);
    assert.equal(it.attrs.jid, "romeo@example.test");
    assert.equal(it.attrs.subscription, "none");
    assert.deepEqual(
      it.getChildren("group").map((g) => g.text()),
      ["Friends", "Lovers"],
    );
  }
  assert.equal(quiet.pending().length, 0);
  for (const s of [a, b, quiet]) await s.disconnect();
});

test("the result of a roster set reaches its sender before the push, for an addition and a removal", async () => {
  const s = await interested(await newUser(), "desk");
  for (const change of [item("nurse@example.test"), item("nurse@example.test", { subscription: "remove" })]) {
    await take(s);
    const stanza = rosterSet(change);
    stanza.attrs.id = `order${Math.random().toString(36).slice(2)}`;
    await s.sendStanza(stanza);
    const got = await take(s);
    assert.deepEqual(
      got.map((el) =>
        el.attrs.id === stanza.attrs.id ? `result:${el.attrs.type}` : `push:${el.attrs.type}`,
      ),
      ["result:result", "push:set"],
    );
  }
  await s.disconnect();
});

test("updating an item replaces its name and groups and keeps its subscription state", async () => {
  const u = await newUser();
  await h.server.services.storage.roster.setItem(u, {
    jid: "mercutio@example.test",
    name: "Mercutio",
    subscription: "from",
    ask: true,
    approved: false,
    groups: ["Friends"],
  });
  const s = await interested(u, "desk");
  const { pushes } = await set(s, item("mercutio@example.test", { subscription: "both" }, "Enemies"));
  const it = pushedItem(pushes[0]!);
  assert.deepEqual(attrsOf(it), { jid: "mercutio@example.test", subscription: "from", ask: "subscribe" });
  assert.deepEqual(
    it.getChildren("group").map((g) => g.text()),
    ["Enemies"],
  );
  const stored = await h.server.services.storage.roster.getItem(u, "mercutio@example.test");
  assert.equal(stored?.name, undefined);
  assert.equal(
    stored?.subscription,
    "from",
    "a subscription attribute in a roster set is ignored (RFC 6121 §2.1.2.5)",
  );
  await s.disconnect();
});

test("JIDs in roster sets are normalised and must be bare", async () => {
  const u = await newUser();
  const s = await interested(u, "desk");
  const { pushes } = await set(s, item("Juliet@EXAMPLE.test"));
  assert.equal(pushedItem(pushes[0]!).attrs.jid, "juliet@example.test");
  const full = await set(s, item("juliet@example.test/balcony"));
  assert.equal(errorCondition(full.reply), "bad-request");
  assert.equal(full.pushes.length, 0);
  await s.disconnect();
});

const invalidSets: { name: string; items: () => XmlElement[]; condition: string }[] = [
  { name: "no item", items: () => [], condition: "bad-request" },
  {
    name: "two items",
    items: () => [item("a@example.test"), item("b@example.test")],
    condition: "bad-request",
  },
  {
    name: "an element other than item",
    items: () => [x("thing", { jid: "a@example.test" })],
    condition: "bad-request",
  },
  { name: "an item without jid", items: () => [x("item", { name: "x" })], condition: "bad-request" },
  { name: "an invalid jid", items: () => [item("a@b@example.test")], condition: "bad-request" },
  { name: "an empty-localpart jid", items: () => [item("@example.test")], condition: "bad-request" },
  {
    name: "an unknown subscription value",
    items: () => [item("a@example.test", { subscription: "all" })],
    condition: "bad-request",
  },
  {
    name: "a duplicate group",
    items: () => [item("a@example.test", {}, "G", "G")],
    condition: "bad-request",
  },
  { name: "an empty group", items: () => [item("a@example.test", {}, "")], condition: "not-acceptable" },
  {
    name: "a group over the size limit",
    items: () => [item("a@example.test", {}, "x".repeat(11))],
    condition: "not-acceptable",
  },
  {
    name: "too many groups",
    items: () => [item("a@example.test", {}, "a", "b", "c", "d")],
    condition: "not-acceptable",
  },
  {
    name: "a name over the size limit",
    items: () => [item("a@example.test", { name: "n".repeat(21) })],
    condition: "not-acceptable",
  },
  {
    name: "a multi-byte name over the byte limit",
    items: () => [item("a@example.test", { name: "é".repeat(11) })],
    condition: "not-acceptable",
  },
];

for (const c of invalidSets) {
  test(`a roster set with ${c.name} is refused with ${c.condition} and changes nothing`, async () => {
    const u = await newUser();
    const s = await interested(u, "desk");
    const { reply, pushes } = await set(s, ...c.items());
    assert.equal(reply.attrs.type, "error");
    assert.equal(errorCondition(reply), c.condition);
    assert.equal(pushes.length, 0);
    const stored = await h.server.services.storage.roster.get(u);
    assert.equal(stored.items.length, 0);
    assert.equal(stored.version, 0);
    await s.disconnect();
  });
}

test("limits are inclusive: a name and a group exactly at the limit are accepted", async () => {
  const u = await newUser();
  const s = await interested(u, "desk");
  const { reply } = await set(s, item("a@example.test", { name: "n".repeat(20) }, "g".repeat(10), "b", "c"));
  assert.equal(reply.attrs.type, "result");
  await s.disconnect();
});

test("an account cannot put itself in its roster", async () => {
  const u = await newUser();
  const s = await interested(u, "desk");
  const { reply } = await set(s, item(`${u}@example.test`));
  assert.equal(errorCondition(reply), "not-allowed");
  await s.disconnect();
});

test("another account's roster: get is service-unavailable, set is forbidden", async () => {
  const owner = await newUser();
  const other = await newUser();
  await h.server.services.storage.roster.setItem(owner, {
    jid: "secret@example.test",
    subscription: "both",
    ask: false,
    approved: false,
    groups: [],
  });
  const s = await h.connect(other, "nosy");
  const get = await s.iq(
    x("iq", { type: "get", to: `${owner}@example.test` }, x("query", { xmlns: NS_ROSTER })),
  );
  assert.equal(errorCondition(get), "service-unavailable");
  assert.equal(get.toString().includes("secret"), false);
  const put = await s.iq(
    x(
      "iq",
      { type: "set", to: `${owner}@example.test` },
      x("query", { xmlns: NS_ROSTER }, item("evil@example.test")),
    ),
  );
  assert.equal(errorCondition(put), "forbidden");
  assert.equal((await h.server.services.storage.roster.get(owner)).items.length, 1);
  assert.equal(s.rosterRequested, false);
  await s.disconnect();
});

test("the roster namespace on the server's own JID is not a roster", async () => {
  const s = await h.connect(await newUser(), "desk");
  const reply = await s.iq(x("iq", { type: "get", to: "example.test" }, x("query", { xmlns: NS_ROSTER })));
  assert.equal(errorCondition(reply), "service-unavailable");
  await s.disconnect();
});

test("removing an item that is not in the roster is item-not-found", async () => {
  const s = await interested(await newUser(), "desk");
  const { reply, pushes } = await set(s, item("ghost@example.test", { subscription: "remove" }));
  assert.equal(errorCondition(reply), "item-not-found");
  assert.equal(pushes.length, 0);
  await s.disconnect();
});

/** Sets up an item for a remote contact, removes it, and returns what was routed to the contact. */
async function removeRemote(state: Partial<RosterItem>, pendingIn = false): Promise<XmlElement[]> {
  const u = await newUser();
  const contact = `romeo${userSeq}@${REMOTE}`;
  await h.server.services.storage.roster.setItem(u, {
    jid: contact,
    subscription: "none",
    ask: false,
    approved: false,
    groups: [],
    ...state,
  });
  if (pendingIn) {
    await h.server.services.storage.roster.addPending(u, {
      from: contact,
      stanza: `<presence type="subscribe" from="${contact}" to="${u}@example.test"/>`,
    });
  }
  const a = await interested(u, "a");
  const b = await interested(u, "b");
  await a.sendStanza(x("presence"));
  await take(a);
  await take(b);
  routed.length = 0;
  const { reply, pushes } = await set(a, item(contact, { subscription: "remove" }));
  assert.equal(reply.attrs.type, "result");
  for (const push of [pushes[0], ...(await take(b)).filter((el) => el.name === "iq")]) {
    assert.ok(push);
    assert.deepEqual(attrsOf(pushedItem(push)), { jid: contact, subscription: "remove" });
  }
  assert.equal(await h.server.services.storage.roster.getItem(u, contact), undefined);
  assert.equal((await h.server.services.storage.roster.getPending(u)).length, 0);
  const out = routed.splice(0);
  for (const el of out) {
    assert.equal(el.attrs.to, contact);
    if (el.attrs.type !== "unavailable")
      assert.equal(el.attrs.from, `${u}@example.test`, "stamped with the bare JID");
  }
  await a.disconnect();
  await b.disconnect();
  return out;
}

const removals: { state: Partial<RosterItem>; pendingIn?: boolean; sent: (string | undefined)[] }[] = [
  { state: { subscription: "both" }, sent: ["unsubscribe", "unsubscribed", "unavailable"] },
  { state: { subscription: "to" }, sent: ["unsubscribe"] },
  { state: { subscription: "from" }, sent: ["unsubscribed", "unavailable"] },
  { state: { subscription: "none", ask: true }, sent: ["unsubscribe"] },
  { state: { subscription: "none" }, pendingIn: true, sent: ["unsubscribed"] },
  { state: { subscription: "none" }, sent: [] },
  { state: { subscription: "none", approved: true }, sent: [] },
];

for (const r of removals) {
  const label = `${r.state.subscription}${r.state.ask ? " + ask" : ""}${r.pendingIn ? " + pending in" : ""}${r.state.approved ? " (pre-approved)" : ""}`;
  test(`removing a contact in state ${label} cancels the subscriptions: ${r.sent.join(", ") || "nothing sent"}`, async () => {
    const out = await removeRemote(r.state, r.pendingIn);
    assert.deepEqual(
      out.map((el) => el.attrs.type),
      r.sent,
    );
  });
}

test("the roster size limit refuses new items but still allows updates", async () => {
  const u = await newUser();
  const s = await interested(u, "desk");
  for (const c of ["a", "b", "c"])
    assert.equal((await set(s, item(`${c}@example.test`))).reply.attrs.type, "result");
  const full = await set(s, item("d@example.test"));
  assert.equal(errorCondition(full.reply), "not-allowed");
  assert.equal(full.pushes.length, 0);
  assert.equal((await set(s, item("a@example.test", { name: "Still fine" }))).reply.attrs.type, "result");
  // Subscribing to a new contact would add an item too.
  await take(s);
  await s.sendStanza(x("presence", { type: "subscribe", to: "d@example.test", id: "sub1" }));
  const [bounce] = await take(s);
  assert.equal(bounce?.name, "presence");
  assert.equal(bounce?.attrs.type, "error");
  assert.equal(errorCondition(bounce!), "not-allowed");
  assert.equal(await h.server.services.storage.roster.getItem(u, "d@example.test"), undefined);
  assert.equal((await set(s, item("a@example.test", { subscription: "remove" }))).reply.attrs.type, "result");
  assert.equal((await set(s, item("d@example.test"))).reply.attrs.type, "result");
  await s.disconnect();
});

test("the roster API is published for other modules", async () => {
  const api = h.server.services.apis.get("roster") as RosterApi;
  assert.equal(api.maxItems, 3);
  const u = await newUser();
  const s = await interested(u, "desk");
  await take(s);
  const version = await api.exclusive(u, () =>
    api.store(u, { jid: "api@example.test", subscription: "to", ask: false, approved: false, groups: ["G"] }),
  );
  const [push] = await take(s);
  assert.equal(push?.getChild("query")?.attrs.ver, String(version));
  assert.equal(pushedItem(push!).attrs.subscription, "to");
  assert.equal(await api.removeContact(u, parseJid("api@example.test")), true);
  assert.equal(await api.removeContact(u, parseJid("api@example.test")), false);
  await s.disconnect();
});

test("roster changes of one account are serialised: concurrent additions cannot pass the size limit", async () => {
  const u = await newUser();
  const s = await interested(u, "desk");
  for (const c of ["a", "b"]) await set(s, item(`${c}@example.test`));
  await take(s);
  await Promise.all(
    ["x", "y", "z"].map((c) => {
      const stanza = rosterSet(item(`${c}@example.test`, { name: c }));
      stanza.attrs.id = `concurrent-${c}`;
      return s.sendStanza(stanza);
    }),
  );
  const replies = (await take(s)).filter((el) => el.attrs.id?.startsWith("concurrent-"));
  assert.deepEqual(replies.map((r) => r.attrs.type).sort(), ["error", "error", "result"]);
  const stored = await h.server.services.storage.roster.get(u);
  assert.equal(stored.items.length, 3);
  await s.disconnect();
});
