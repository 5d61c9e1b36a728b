/**
 * Per-account data on a server with a virtual host: alice@example.test and alice@corp.test
 * (the same localpart on two served domains) have their own blocklists, private XML and
 * offline queues, and a block by one of them does not touch the other.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import blocking, { NS_BLOCKING } from "../../src/modules/blocking/index.js";
import message from "../../src/modules/message/index.js";
import offline from "../../src/modules/offline/index.js";
import presence from "../../src/modules/presence/index.js";
import privateStorage, { NS_PRIVATE } from "../../src/modules/private/index.js";
import roster from "../../src/modules/roster/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

const CORP = "corp.test";
let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [roster, presence, message, offline, blocking, privateStorage] as ModuleDefinition<unknown>[],
    config: { hosts: [CORP] },
  });
  for (const name of ["alice", `alice@${CORP}`, `bob@${CORP}`]) await h.createUser(name);
});
after(() => h.stop());

const chat = (to: string, body: string) => x("message", { to, type: "chat" }, x("body", null, body));
const blocklist = () => x("iq", { type: "get" }, x("blocklist", { xmlns: NS_BLOCKING }));

test("sessions of the corp.test account get JIDs there", async () => {
  const s = await h.connect(`alice@${CORP}`, "desk");
  assert.equal(s.jid?.toString(), `alice@${CORP}/desk`);
  await s.disconnect();
});

test("blocklists are per account: alice@corp.test blocks bob, alice@example.test still hears him", async () => {
  const corpAlice = await h.connect(`alice@${CORP}`, "b1");
  const alice = await h.connect("alice", "b1");
  const bob = await h.connect(`bob@${CORP}`, "b1");
  const block = x(
    "iq",
    { type: "set" },
    x("block", { xmlns: NS_BLOCKING }, x("item", { jid: `bob@${CORP}` })),
  );
  assert.equal((await corpAlice.iq(block)).attrs.type, "result");
  const list = (await corpAlice.iq(blocklist())).getChild("blocklist", NS_BLOCKING)!.getChildren("item");
  assert.deepEqual(
    list.map((i) => i.attrs.jid),
    [`bob@${CORP}`],
  );
  const primaryList = (await alice.iq(blocklist())).getChild("blocklist", NS_BLOCKING)!.getChildren("item");
  assert.deepEqual(primaryList, [], "alice@example.test's blocklist");

  await bob.sendStanza(chat(`alice@${CORP}/b1`, "to corp alice"));
  const bounced = await bob.nextMatching((el) => el.name === "message" && el.attrs.type === "error");
  assert.equal(errorCondition(bounced), "service-unavailable", "blocked: XEP-0191 §3.4");
  await bob.sendStanza(chat(`alice@${h.domain}/b1`, "to primary alice"));
  const got = await alice.nextMatching((el) => el.name === "message");
  assert.equal(got.getChildText("body"), "to primary alice");
  assert.equal(got.attrs.from, `bob@${CORP}/b1`);
  for (const s of [corpAlice, alice, bob]) await s.disconnect();
});

test("private XML is per account", async () => {
  const corpAlice = await h.connect(`alice@${CORP}`, "p1");
  const alice = await h.connect("alice", "p1");
  const prefs = x("prefs", { xmlns: "test:prefs" }, x("colour", null, "green"));
  const set = x("iq", { type: "set" }, x("query", { xmlns: NS_PRIVATE }, prefs));
  assert.equal((await corpAlice.iq(set)).attrs.type, "result");
  const get = () =>
    x("iq", { type: "get" }, x("query", { xmlns: NS_PRIVATE }, x("prefs", { xmlns: "test:prefs" })));
  const corpGot = (await corpAlice.iq(get())).getChild("query", NS_PRIVATE)!.elements()[0]!;
  assert.equal(corpGot.getChildText("colour"), "green");
  const primaryGot = (await alice.iq(get())).getChild("query", NS_PRIVATE)!.elements()[0]!;
  assert.equal(primaryGot.toString(), '<prefs xmlns="test:prefs"/>', "nothing stored for alice@example.test");
  await corpAlice.disconnect();
  await alice.disconnect();
});

test("offline messages wait in the right account's queue", async () => {
  const bob = await h.connect(`bob@${CORP}`, "o1");
  await bob.sendStanza(chat(`alice@${h.domain}`, "for the primary alice"));
  const storage = h.server.services.storage;
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    (await storage.offline.list("alice")).map((m) => /<body>([^<]*)</.exec(m.stanza)?.[1]),
    ["for the primary alice"],
  );
  assert.deepEqual(await storage.offline.list(`alice@${CORP}`), [], "alice@corp.test's queue");
  await bob.disconnect();
});
