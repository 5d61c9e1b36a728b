/**
 * Stable stanza ids (XEP-0359): spoofed ids claiming an account are stripped on the way in
 * and out (§3 rule 2), ids of other entities and origin-ids pass (§3 rule 3), offline
 * storage keeps messages with the account's id, and the helpers keep one id per 'by'.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { timeOrderedId } from "../../src/core/time-ordered-id.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import message from "../../src/modules/message/index.js";
import offline from "../../src/modules/offline/index.js";
import { assignStanzaId, newStanzaId, stanzaIdOf, stripStanzaIds } from "../../src/modules/stanza-id/api.js";
import stanzaId from "../../src/modules/stanza-id/index.js";
import { type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const SID = "urn:xmpp:sid:0";
let h: Harness;

before(async () => {
  h = await startHarness({ modules: [message, stanzaId, offline] as ModuleDefinition<unknown>[] });
  for (const u of ["alice", "bob"]) await h.createUser(u);
});
after(() => h.stop());

async function online(user: string, resource: string): Promise<FakeSession> {
  const s = await h.connect(user, resource);
  s.presence = x("presence");
  await h.server.services.hooks.fireAsync("session/available", { session: s });
  return s;
}

const ids = (m: XmlElement) => m.getChildren("stanza-id", SID).map((e) => `${e.attrs.by}=${e.attrs.id}`);

test("the account JID advertises urn:xmpp:sid:0", () => {
  assert.ok(h.server.services.disco.getFeatures("account").includes(SID));
});

test("ids claiming the recipient or the sender are stripped; others and origin-id pass", async () => {
  const a = await online("alice", "one");
  const b = await online("bob", "one");
  await a.sendStanza(
    x(
      "message",
      { to: "bob@example.test", type: "chat" },
      x("body", null, "spoof"),
      x("stanza-id", { xmlns: SID, by: "bob@example.test", id: "forged-for-bob" }),
      x("stanza-id", { xmlns: SID, by: "BOB@Example.Test", id: "forged-unnormalised" }),
      x("stanza-id", { xmlns: SID, by: "alice@example.test", id: "forged-for-alice" }),
      x("stanza-id", { xmlns: SID, by: "room@muc.example.test", id: "room-id" }),
      x("origin-id", { xmlns: SID, id: "origin-1" }),
    ),
  );
  const got = await b.next();
  assert.deepEqual(ids(got), ["room@muc.example.test=room-id"]);
  assert.equal(got.getChild("origin-id", SID)?.attrs.id, "origin-1");
  await a.disconnect();
  await b.disconnect();
});

test("a message from another server loses ids claiming the local recipient", async () => {
  const b = await online("bob", "one");
  const { parseJid } = await import("../../src/core/jid.js");
  await h.server.services.router.deliver(
    x(
      "message",
      { from: "eve@remote.test/x", to: "bob@example.test", type: "chat" },
      x("body", null, "remote spoof"),
      x("stanza-id", { xmlns: SID, by: "bob@example.test", id: "forged" }),
      x("stanza-id", { xmlns: SID, by: "eve@remote.test", id: "theirs" }),
    ),
    parseJid("eve@remote.test/x"),
    parseJid("bob@example.test"),
  );
  assert.deepEqual(ids(await b.next()), ["eve@remote.test=theirs"]);
  await b.disconnect();
});

test("offline messages are stored and delivered with the account's stanza-id, not a forged one", async () => {
  const a = await online("alice", "one");
  await a.sendStanza(
    x(
      "message",
      { to: "bob@example.test", type: "chat" },
      x("body", null, "for later"),
      x("stanza-id", { xmlns: SID, by: "bob@example.test", id: "forged" }),
    ),
  );
  const stored = await h.server.services.storage.offline.list("bob");
  assert.equal(stored.length, 1);
  const b = await online("bob", "two");
  const got = await b.nextMatching((m) => m.getChildText("body") === "for later");
  const id = stanzaIdOf(got, "bob@example.test");
  assert.ok(id && id !== "forged", `a server id on the stored message: ${got}`);
  assert.match(
    id,
    /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    "a UUID version 7",
  );
  assert.equal(ids(got).length, 1);
  await a.disconnect();
  await b.disconnect();
});

test("new ids are UUIDs version 7: the time they were made leads, in order, and the rest differs", () => {
  const before = Date.now();
  const made = Array.from({ length: 600 }, () => newStanzaId());
  const after = Date.now();
  assert.equal(new Set(made).size, made.length, "no id repeats (more than one pool of random bytes)");
  for (const id of made) {
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    assert.ok(ms >= before && ms <= after, `${id}: made at ${ms}, not within ${before}…${after}`);
  }
  assert.equal(timeOrderedId(0x0123_4567_89ab).slice(0, 13), "01234567-89ab");
  const later = timeOrderedId(Date.now() + 1000);
  assert.ok(
    made.every((id) => id < later),
    "an id made later sorts after",
  );
});

test("assign keeps one id per 'by' and returns it; strip removes only that 'by'", () => {
  const m = x("message", null, x("stanza-id", { xmlns: SID, by: "other@example.test", id: "o" }));
  const first = assignStanzaId(m, "alice@example.test");
  const second = assignStanzaId(m, "alice@example.test");
  assert.notEqual(first, second);
  assert.deepEqual(ids(m), ["other@example.test=o", `alice@example.test=${second}`]);
  assert.equal(stanzaIdOf(m, "alice@example.test"), second);
  assert.equal(stripStanzaIds(m, "alice@example.test"), true);
  assert.deepEqual(ids(m), ["other@example.test=o"]);
  assert.equal(stripStanzaIds(m, "alice@example.test"), false);
});
