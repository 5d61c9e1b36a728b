/**
 * Personal eventing (XEP-0163): publishing with auto-create and publish-options, retrieval
 * under each access model, filtered notifications driven by verified entity capabilities,
 * the last item on presence, retraction, configuration, deletion, the nodes in disco#items
 * and the limits.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import { NS_CAPS, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS } from "../../src/core/xml/namespaces.js";
import disco from "../../src/modules/disco/index.js";
import message from "../../src/modules/message/index.js";
import { capsVer } from "../../src/modules/pep/caps.js";
import pep from "../../src/modules/pep/index.js";
import presence from "../../src/modules/presence/index.js";
import roster from "../../src/modules/roster/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const D = "example.test";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const OWNER = "http://jabber.org/protocol/pubsub#owner";
const ERRORS = "http://jabber.org/protocol/pubsub#errors";
const TUNE = "http://jabber.org/protocol/tune";
const NICK = "http://jabber.org/protocol/nick";

let h: Harness;
let seq = 0;

before(async () => {
  h = await startHarness({
    modules: [message, roster, presence, disco, pep] as ModuleDefinition<unknown>[],
    config: { modules: { pep: { maxNodes: 3, maxItems: 5, maxPayloadBytes: 65_536 } } },
  });
});
after(() => h.stop());

/** Fresh accounts; `contacts` pairs get a mutual ("both") subscription. */
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

/** A client's disco#info; each test's clients have their own name, so their capabilities are new to the server. */
const capsInfo = (notify: string[], name = `Test ${seq}`) =>
  x(
    "query",
    { xmlns: NS_DISCO_INFO },
    x("identity", { category: "client", type: "pc", name }),
    x("feature", { var: NS_DISCO_INFO }),
    ...notify.map((n) => x("feature", { var: `${n}+notify` })),
  );

/**
 * Sends available presence with capabilities and answers the server's disco#info about
 * them, as a client does. `answer: false` leaves the question unanswered.
 */
async function online(s: FakeSession, notify: string[], opts: { answer?: boolean; lie?: boolean } = {}) {
  const info = capsInfo(notify);
  const ver = opts.lie ? capsVer(capsInfo([]), "sha-1")! : capsVer(info, "sha-1")!;
  await s.sendStanza(
    x("presence", null, x("c", { xmlns: NS_CAPS, hash: "sha-1", node: "https://test", ver })),
  );
  if (opts.answer === false) return;
  const q = await s.nextMatching(
    (el) => el.name === "iq" && el.getChild("query", NS_DISCO_INFO) !== undefined,
  );
  assert.equal(q.getChild("query")!.attrs.node, `https://test#${ver}`);
  // Asked by a PEP service (an account's bare JID: its own, or a contact's that saw the
  // presence first), as XEP-0163 shows it, with the id Prosody uses.
  assert.match(q.attrs.from ?? "", /^[^@/]+@[^@/]+$/, `asked from ${q.attrs.from}`);
  assert.equal(q.attrs.id, "disco");
  await s.sendStanza(x("iq", { type: "result", id: q.attrs.id, to: q.attrs.from }, info));
}

/** A data form of `formType` (its hidden FORM_TYPE first) with the given fields; submitted unless `form.type` says otherwise (undefined: no type). */
function dataForm(
  formType: string,
  fields: Record<string, string | string[]>,
  form: { type: string | undefined } = { type: "submit" },
) {
  return x(
    "x",
    { xmlns: NS_DATA, type: form.type },
    x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", null, formType)),
    ...Object.entries(fields).map(([k, v]) =>
      x("field", { var: k }, ...(Array.isArray(v) ? v : [v]).map((one) => x("value", null, one))),
    ),
  );
}

const publishIq = (node: string, payload: XmlElement, id?: string, options?: Record<string, string>) =>
  x(
    "iq",
    { type: "set" },
    x(
      "pubsub",
      { xmlns: PUBSUB },
      x("publish", { node }, x("item", { id }, payload)),
      options &&
        x("publish-options", null, dataForm("http://jabber.org/protocol/pubsub#publish-options", options)),
    ),
  );

const itemsIq = (to: string, node: string, attrs: Record<string, string> = {}) =>
  x("iq", { type: "get", to }, x("pubsub", { xmlns: PUBSUB }, x("items", { node, ...attrs })));

const tune = (title: string) => x("tune", { xmlns: TUNE }, x("title", null, title));
const titles = (reply: XmlElement) =>
  reply
    .getChild("pubsub", PUBSUB)!
    .getChild("items")!
    .getChildren("item")
    .map((i) => i.getChild("tune", TUNE)?.getChildText("title"));
const appCondition = (el: XmlElement) =>
  el
    .getChild("error")
    ?.elements()
    .find((e) => e.attrs.xmlns === ERRORS)?.name;
const isEvent = (el: XmlElement) => el.name === "message" && el.getChild("event", EVENT) !== undefined;

test("the account advertises a PEP service", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  const info = await a.iq(
    x("iq", { type: "get", to: `${alice}@${D}` }, x("query", { xmlns: NS_DISCO_INFO })),
  );
  const q = info.getChild("query", NS_DISCO_INFO)!;
  assert.ok(q.getChildren("identity").some((i) => i.attrs.category === "pubsub" && i.attrs.type === "pep"));
  const features = q.getChildren("feature").map((f) => f.attrs.var);
  for (const f of [
    "",
    "#publish",
    "#publish-options",
    "#auto-create",
    "#filtered-notifications",
    "#access-whitelist",
  ])
    assert.ok(features.includes(`${PUBSUB}${f}`), `${PUBSUB}${f}`);
  await a.disconnect();
});

test("publishing creates the node; the owner and a contact retrieve the item, a stranger may not", async () => {
  const [alice, bob, eve] = await accounts("alice", "bob", "eve");
  await befriend(alice!, bob!);
  const a = await h.connect(alice!, "r");
  const published = await a.iq(publishIq(TUNE, tune("Song one"), "current"));
  assert.equal(published.attrs.type, "result", published.toString());
  assert.equal(published.getChild("pubsub")!.getChild("publish")!.getChild("item")!.attrs.id, "current");
  const own = await a.iq(itemsIq(`${alice}@${D}`, TUNE));
  assert.deepEqual(titles(own), ["Song one"]);

  const b = await h.connect(bob!, "r");
  assert.deepEqual(titles(await b.iq(itemsIq(`${alice}@${D}`, TUNE))), ["Song one"]);
  const e = await h.connect(eve!, "r");
  const refused = await e.iq(itemsIq(`${alice}@${D}`, TUNE));
  assert.equal(errorCondition(refused), "not-authorized");
  assert.equal(appCondition(refused), "presence-subscription-required");
  const missing = await b.iq(itemsIq(`${alice}@${D}`, "urn:nothing"));
  assert.equal(errorCondition(missing), "item-not-found");
  const forged = await b.iq(
    x("iq", { type: "set", to: `${alice}@${D}` }, publishIq(TUNE, tune("x")).getChild("pubsub")!),
  );
  assert.equal(errorCondition(forged), "forbidden");
  for (const s of [a, b, e]) await s.disconnect();
});

test("publish-options configure a new node and are preconditions on an existing one (XEP-0223)", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  const a = await h.connect(alice!, "r");
  const secret = x("storage", { xmlns: "storage:bookmarks" });
  const privateOptions = { "pubsub#persist_items": "true", "pubsub#access_model": "whitelist" };
  assert.equal(
    (await a.iq(publishIq("storage:bookmarks", secret, "current", privateOptions))).attrs.type,
    "result",
  );
  const b = await h.connect(bob!, "r");
  const closed = await b.iq(itemsIq(`${alice}@${D}`, "storage:bookmarks"));
  assert.equal(errorCondition(closed), "not-allowed");
  assert.equal(appCondition(closed), "closed-node");
  const clash = await a.iq(
    publishIq("storage:bookmarks", secret, "current", { "pubsub#access_model": "open" }),
  );
  assert.equal(errorCondition(clash), "conflict");
  assert.equal(appCondition(clash), "precondition-not-met");
  const config = await a.iq(
    x("iq", { type: "get" }, x("pubsub", { xmlns: OWNER }, x("configure", { node: "storage:bookmarks" }))),
  );
  const field = config
    .getChild("pubsub", OWNER)!
    .getChild("configure")!
    .getChild("x", NS_DATA)!
    .getChildren("field")
    .find((f) => f.attrs.var === "pubsub#access_model");
  assert.equal(field?.getChildText("value"), "whitelist");
  await a.disconnect();
  await b.disconnect();
});

test("a publish-options field the service does not know rejects the publication (XEP-0060 §7.1.5)", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  const options = { "pubsub#persist_items": "true", "pubsub#itemreply": "publisher" };
  const refused = await a.iq(publishIq(TUNE, tune("first"), "current", options));
  assert.equal(errorCondition(refused), "conflict");
  assert.equal(appCondition(refused), "precondition-not-met");
  assert.equal(
    errorCondition(await a.iq(itemsIq(`${alice}@${D}`, TUNE))),
    "item-not-found",
    "no node was made",
  );
  assert.equal((await a.iq(publishIq(TUNE, tune("first"), "current"))).attrs.type, "result");
  const again = await a.iq(publishIq(TUNE, tune("second"), "current", options));
  assert.equal(appCondition(again), "precondition-not-met", "on an existing node too");
  assert.deepEqual(titles(await a.iq(itemsIq(`${alice}@${D}`, TUNE))), ["first"]);
  await a.disconnect();
});

test("the account's disco#items list its nodes, each to those its access model lets retrieve it (XEP-0060 §5.2)", async () => {
  const [alice, bob, eve] = await accounts("alice", "bob", "eve");
  // Bob sees Alice's presence ("from" on her side) without her seeing his.
  await h.server.services.storage.roster.setItem(alice!, {
    jid: `${bob}@${D}`,
    subscription: "from",
    ask: false,
    approved: false,
    groups: [],
  });
  const a = await h.connect(alice!, "r");
  const open = { "pubsub#access_model": "open" };
  const closed = { "pubsub#access_model": "whitelist" };
  for (const [node, options] of [
    [TUNE, undefined],
    ["urn:open", open],
    ["urn:closed", closed],
  ] as const)
    assert.equal((await a.iq(publishIq(node, tune(node), "current", options))).attrs.type, "result");
  const nodesSeenBy = async (s: FakeSession) => {
    const reply = await s.iq(
      x("iq", { type: "get", to: `${alice}@${D}` }, x("query", { xmlns: NS_DISCO_ITEMS })),
    );
    assert.equal(reply.attrs.type, "result", reply.toString());
    const items = reply.getChild("query", NS_DISCO_ITEMS)!.getChildren("item");
    const nodeItems = items.filter((i) => i.attrs.node !== undefined);
    for (const i of nodeItems) assert.equal(i.attrs.jid, `${alice}@${D}`);
    return nodeItems.map((i) => i.attrs.node);
  };
  assert.deepEqual(await nodesSeenBy(a), [TUNE, "urn:closed", "urn:open"].sort(), "the owner sees all");
  const b = await h.connect(bob!, "r");
  assert.deepEqual(await nodesSeenBy(b), [TUNE, "urn:open"].sort(), "a contact: presence and open");
  const e = await h.connect(eve!, "r");
  assert.deepEqual(await nodesSeenBy(e), [], "a stranger is not told of the account (XEP-0030 §8)");
  for (const s of [a, b, e]) await s.disconnect();
});

test("a node keeps max_items items, newest last, and max_items/item ids select on retrieval", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  for (const n of [1, 2, 3, 4, 5, 6, 7])
    await a.iq(publishIq(TUNE, tune(`t${n}`), `i${n}`, { "pubsub#max_items": "max" }));
  assert.deepEqual(
    titles(await a.iq(itemsIq(`${alice}@${D}`, TUNE))),
    ["t3", "t4", "t5", "t6", "t7"],
    "capped at the server's 5",
  );
  assert.deepEqual(titles(await a.iq(itemsIq(`${alice}@${D}`, TUNE, { max_items: "2" }))), ["t6", "t7"]);
  const byId = await a.iq(
    x(
      "iq",
      { type: "get" },
      x("pubsub", { xmlns: PUBSUB }, x("items", { node: TUNE }, x("item", { id: "i4" }))),
    ),
  );
  assert.deepEqual(titles(byId), ["t4"]);
  await a.iq(publishIq(TUNE, tune("t4 again"), "i4"));
  assert.deepEqual(
    titles(await a.iq(itemsIq(`${alice}@${D}`, TUNE))),
    ["t3", "t5", "t6", "t7", "t4 again"],
    "same id replaces and moves last",
  );
  await a.disconnect();
});

test("a configuration form read back can be submitted back: max_items beyond a safe integer is not-acceptable", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  assert.equal((await a.iq(publishIq(TUNE, tune("one"), "current"))).attrs.type, "result");
  const submit = (maxItems: string) => a.iq(configureIq(TUNE, { "pubsub#max_items": maxItems }));
  assert.equal(errorCondition(await submit("1000000000000000000000000")), "not-acceptable");
  assert.equal((await submit("9007199254740991")).attrs.type, "result");
  const config = await a.iq(
    x("iq", { type: "get" }, x("pubsub", { xmlns: OWNER }, x("configure", { node: TUNE }))),
  );
  const shown = config
    .getChild("pubsub", OWNER)!
    .getChild("configure")!
    .getChild("x", NS_DATA)!
    .getChildren("field")
    .find((f) => f.attrs.var === "pubsub#max_items")!
    .getChildText("value")!;
  assert.equal(shown, "9007199254740991");
  assert.equal((await submit(shown)).attrs.type, "result", "the value shown is accepted back");
  await a.disconnect();
});

test("a configuration is a submitted form whose booleans are 0, 1, false or true (XEP-0004 §3.1, §3.3)", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  assert.equal((await a.iq(publishIq(TUNE, tune("one"), "current"))).attrs.type, "result");
  const form = (type: string | undefined, fields: Record<string, string[]>) =>
    dataForm("http://jabber.org/protocol/pubsub#node_config", fields, { type });
  const configure = (type: string | undefined, fields: Record<string, string[]>) =>
    a.iq(
      x(
        "iq",
        { type: "set" },
        x("pubsub", { xmlns: OWNER }, x("configure", { node: TUNE }, form(type, fields))),
      ),
    );
  const shown = async (name: string) => {
    const config = await a.iq(
      x("iq", { type: "get" }, x("pubsub", { xmlns: OWNER }, x("configure", { node: TUNE }))),
    );
    return config
      .getChild("pubsub", OWNER)!
      .getChild("configure")!
      .getChild("x", NS_DATA)!
      .getChildren("field")
      .find((f) => f.attrs.var === name)!
      .getChildText("value");
  };
  const off = { "pubsub#notify_retract": ["0"] };
  for (const type of ["result", "form"])
    assert.equal(errorCondition(await configure(type, off)), "bad-request", `a form of type ${type}`);
  for (const values of [[""], ["yes"], [], ["0", "1"]])
    assert.equal(
      errorCondition(await configure("submit", { "pubsub#notify_retract": values })),
      "not-acceptable",
      `boolean values ${JSON.stringify(values)}`,
    );
  assert.equal(await shown("pubsub#notify_retract"), "1", "nothing refused was applied");
  assert.equal((await configure("cancel", off)).attrs.type, "result");
  assert.equal(await shown("pubsub#notify_retract"), "1", "a cancelled form changes nothing");
  assert.equal((await configure("submit", { "pubsub#notify_retract": ["false"] })).attrs.type, "result");
  assert.equal(await shown("pubsub#notify_retract"), "0");
  assert.equal((await configure("submit", { "pubsub#notify_retract": [" true "] })).attrs.type, "result");
  assert.equal(await shown("pubsub#notify_retract"), "1");
  // A form without a type is read as submitted: some clients leave it out.
  assert.equal((await configure(undefined, off)).attrs.type, "result");
  assert.equal(await shown("pubsub#notify_retract"), "0");

  const unsubmitted = publishIq(NICK, x("nick", { xmlns: NICK }, "A"), "current", {
    "pubsub#persist_items": "1",
  });
  unsubmitted.getChild("pubsub")!.getChild("publish-options")!.getChild("x", NS_DATA)!.attrs.type = "form";
  assert.equal(errorCondition(await a.iq(unsubmitted)), "bad-request", "publish-options are submitted too");
  const emptyBool = publishIq(NICK, x("nick", { xmlns: NICK }, "A"), "current", {
    "pubsub#persist_items": "",
  });
  assert.equal(errorCondition(await a.iq(emptyBool)), "not-acceptable");
  const createWithResult = x(
    "iq",
    { type: "set" },
    x("pubsub", { xmlns: PUBSUB }, x("create", { node: NICK }), x("configure", null, form("result", off))),
  );
  assert.equal(errorCondition(await a.iq(createWithResult)), "bad-request", "create-and-configure too");
  assert.equal(
    errorCondition(await a.iq(itemsIq(`${alice}@${D}`, NICK))),
    "item-not-found",
    "no node was made",
  );
  await a.disconnect();
});

test("notifications go to contacts whose capabilities ask for the node, and the last item arrives with their presence", async () => {
  const [alice, bob, carol] = await accounts("alice", "bob", "carol");
  await befriend(alice!, bob!);
  await befriend(alice!, carol!);
  const a = await h.connect(alice!, "r");
  await a.iq(publishIq(TUNE, tune("Before")));
  await online(a, []);
  const b = await h.connect(bob!, "phone");
  await online(b, [TUNE]);
  const last = await b.nextMatching(isEvent);
  assert.equal(last.attrs.from, `${alice}@${D}`);
  assert.equal(last.attrs.type, "headline");
  assert.equal(last.getChild("event", EVENT)!.getChild("items")!.attrs.node, TUNE);
  const c = await h.connect(carol!, "desk");
  await online(c, [NICK]);

  await a.iq(publishIq(TUNE, tune("Now playing"), "current"));
  const event = await b.nextMatching(isEvent);
  const item = event.getChild("event", EVENT)!.getChild("items")!.getChild("item")!;
  assert.equal(item.attrs.id, "current");
  assert.equal(item.getChild("tune", TUNE)!.getChildText("title"), "Now playing");
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!c.pending().some(isEvent), "carol did not ask for tunes");
  assert.ok(!a.pending().some(isEvent), "alice's own resource did not ask for tunes");

  await a.iq(
    x(
      "iq",
      { type: "set" },
      x(
        "pubsub",
        { xmlns: PUBSUB },
        x("retract", { node: TUNE, notify: "true" }, x("item", { id: "current" })),
      ),
    ),
  );
  const retraction = await b.nextMatching(isEvent);
  assert.equal(
    retraction.getChild("event", EVENT)!.getChild("items")!.getChild("retract")!.attrs.id,
    "current",
  );

  await b.sendStanza(x("presence", { type: "unavailable" }));
  await new Promise((r) => setTimeout(r, 50));
  const before = b.pending().filter(isEvent).length;
  await a.iq(publishIq(TUNE, tune("After bob left")));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(b.pending().filter(isEvent).length, before, "no notifications after unavailable");
  for (const s of [a, b, c]) await s.disconnect();
});

test("a contact's first presence without capabilities, then one asking for the node: the last item comes with the second", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  const a = await h.connect(alice!, "r");
  await a.iq(publishIq(TUNE, tune("Playing")));
  await online(a, []);
  const b = await h.connect(bob!, "phone");
  await b.sendStanza(x("presence"));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!b.pending().some(isEvent), "no capabilities, no notifications");
  await online(b, [TUNE]);
  const last = await b.nextMatching(isEvent);
  assert.equal(last.getChild("event", EVENT)!.getChild("items")!.attrs.node, TUNE);
  await a.iq(publishIq(TUNE, tune("Next")));
  await b.nextMatching(isEvent);
  for (const s of [a, b]) await s.disconnect();
});

test("capabilities whose hash does not match are used for that entity only, never cached for others", async () => {
  const [alice, bob, dave] = await accounts("alice", "bob", "dave");
  await befriend(alice!, bob!);
  await befriend(alice!, dave!);
  const a = await h.connect(alice!, "r");
  const b = await h.connect(bob!, "r");
  // Bob claims the verification string of an empty feature set but answers with tune+notify.
  await online(b, [TUNE], { lie: true });
  const d = await h.connect(dave!, "r");
  const ver = capsVer(capsInfo([]), "sha-1")!;
  await d.sendStanza(
    x("presence", null, x("c", { xmlns: NS_CAPS, hash: "sha-1", node: "https://test", ver })),
  );
  const asked = await d.nextMatching(
    (el) => el.name === "iq" && el.getChild("query", NS_DISCO_INFO) !== undefined,
  );
  assert.ok(asked, "the unverified answer was not cached: dave is asked himself");
  await d.sendStanza(x("iq", { type: "result", id: asked.attrs.id, to: asked.attrs.from }, capsInfo([])));
  await a.iq(publishIq(TUNE, tune("x")));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!d.pending().some(isEvent));
  for (const s of [a, b, d]) await s.disconnect();
});

test("deleting a node notifies and removes it; node limits and payload rules are enforced", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await befriend(alice!, bob!);
  const a = await h.connect(alice!, "r");
  const b = await h.connect(bob!, "r");
  await online(b, [TUNE]);
  await a.iq(publishIq(TUNE, tune("x")));
  await b.nextMatching(isEvent);
  const del = await a.iq(
    x("iq", { type: "set" }, x("pubsub", { xmlns: OWNER }, x("delete", { node: TUNE }))),
  );
  assert.equal(del.attrs.type, "result");
  const deleted = await b.nextMatching(isEvent);
  assert.equal(deleted.getChild("event", EVENT)!.getChild("delete")!.attrs.node, TUNE);
  assert.equal(errorCondition(await a.iq(itemsIq(`${alice}@${D}`, TUNE))), "item-not-found");

  for (const n of ["n1", "n2", "n3"]) assert.equal((await a.iq(publishIq(n, tune(n)))).attrs.type, "result");
  assert.equal(errorCondition(await a.iq(publishIq("n4", tune("n4")))), "resource-constraint");
  const empty = await a.iq(
    x("iq", { type: "set" }, x("pubsub", { xmlns: PUBSUB }, x("publish", { node: "n1" }, x("item")))),
  );
  assert.equal(appCondition(empty), "payload-required");
  const noNode = await a.iq(
    x("iq", { type: "set" }, x("pubsub", { xmlns: PUBSUB }, x("publish", {}, x("item", {}, tune("x"))))),
  );
  assert.equal(appCondition(noNode), "nodeid-required");
  const big = await a.iq(publishIq("n1", x("blob", { xmlns: "urn:big" }, "x".repeat(70_000))));
  assert.equal(appCondition(big), "payload-too-big");

  await h.server.services.hooks.fireAsync("account/deleted", { username: alice! });
  assert.deepEqual(await h.server.services.storage.keyValue("pep").keys(alice!), []);
  await a.disconnect();
  await b.disconnect();
});

test("the XEP-0115 verification string of the specification's simple example", () => {
  const info = x(
    "query",
    { xmlns: NS_DISCO_INFO },
    x("identity", { category: "client", type: "pc", name: "Exodus 0.9.1" }),
    x("feature", { var: "http://jabber.org/protocol/caps" }),
    x("feature", { var: "http://jabber.org/protocol/disco#info" }),
    x("feature", { var: "http://jabber.org/protocol/disco#items" }),
    x("feature", { var: "http://jabber.org/protocol/muc" }),
  );
  assert.equal(capsVer(info, "sha-1"), "QgayPKawpkPSDYmwT/WM94uAlu0=");
});

test("pubsub#title and pubsub#description: configured, read back, preconditions, and the title names the node in disco#items", async () => {
  const [alice] = await accounts("alice");
  const a = await h.connect(alice!, "r");
  assert.equal((await a.iq(publishIq(TUNE, tune("x"), "current"))).attrs.type, "result");
  const readForm = async () => {
    const reply = await a.iq(
      x("iq", { type: "get" }, x("pubsub", { xmlns: OWNER }, x("configure", { node: TUNE }))),
    );
    const fields = reply.getChild("pubsub", OWNER)!.getChild("configure")!.getChild("x", NS_DATA)!;
    const value = (v: string) =>
      fields
        .getChildren("field")
        .find((f) => f.attrs.var === v)
        ?.getChildText("value");
    return [value("pubsub#title"), value("pubsub#description")];
  };
  const listedName = async () => {
    const reply = await a.iq(
      x("iq", { type: "get", to: `${alice}@${D}` }, x("query", { xmlns: NS_DISCO_ITEMS })),
    );
    return reply
      .getChild("query", NS_DISCO_ITEMS)!
      .getChildren("item")
      .find((i) => i.attrs.node === TUNE)?.attrs.name;
  };
  assert.deepEqual(await readForm(), [undefined, undefined], "unset: fields without a value");
  assert.equal(await listedName(), undefined);

  const set = await a.iq(
    configureIq(TUNE, { "pubsub#title": "Nice tunes", "pubsub#description": "What I hear" }),
  );
  assert.equal(set.attrs.type, "result", set.toString());
  assert.deepEqual(await readForm(), ["Nice tunes", "What I hear"]);
  assert.equal(await listedName(), "Nice tunes");

  // A publish-options title is a precondition on an existing node like any other option.
  const other = await a.iq(publishIq(TUNE, tune("y"), "current", { "pubsub#title": "Other" }));
  assert.equal(appCondition(other), "precondition-not-met");
  const same = await a.iq(publishIq(TUNE, tune("y"), "current", { "pubsub#title": "Nice tunes" }));
  assert.equal(same.attrs.type, "result", same.toString());

  assert.equal(
    errorCondition(await a.iq(configureIq(TUNE, { "pubsub#title": "t".repeat(1025) }))),
    "not-acceptable",
  );
  assert.equal((await a.iq(configureIq(TUNE, { "pubsub#title": "" }))).attrs.type, "result");
  assert.deepEqual(await readForm(), [undefined, "What I hear"], "an empty title clears it");
  assert.equal(await listedName(), undefined);
  await a.disconnect();
});

/** A node configuration form submitted for `node` (XEP-0060 §8.2.4), FORM_TYPE and the given fields. */
function configureIq(node: string, fields: Record<string, string>) {
  return x(
    "iq",
    { type: "set" },
    x(
      "pubsub",
      { xmlns: OWNER },
      x("configure", { node }, dataForm("http://jabber.org/protocol/pubsub#node_config", fields)),
    ),
  );
}
