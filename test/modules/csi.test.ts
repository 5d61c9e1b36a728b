/**
 * Client state indication (XEP-0352) on the in-process harness: the stream feature, presence
 * held back for an inactive session (the last per sender), everything else passing at once
 * after the same sender's held presence, the flush on <active/>, the bound, and the return
 * to active when the session is resumed on another stream.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import csi from "../../src/modules/csi/index.js";
import message from "../../src/modules/message/index.js";
import { type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const NS = "urn:xmpp:csi:0";
let h: Harness;

before(async () => {
  h = await startHarness({
    modules: [message, csi] as ModuleDefinition<unknown>[],
    config: { modules: { csi: { maxHeldPresences: 3 } } },
  });
  await h.createUser("alice");
});
after(() => h.stop());

function say(s: FakeSession, state: "active" | "inactive"): void {
  const feature = h.server.services.streamFeatures.handlerFor("post-auth", NS);
  assert.ok(feature?.handle, "a post-auth feature handles urn:xmpp:csi:0");
  void feature.handle(s, x(state, { xmlns: NS }));
}

const presence = (from: string, show?: string, type?: string) =>
  x(
    "presence",
    { from, to: "alice@example.test/phone", ...(type ? { type } : {}) },
    ...(show ? [x("show", null, show)] : []),
  );
const chat = (from: string, body: string) =>
  x("message", { from, to: "alice@example.test/phone", type: "chat" }, x("body", null, body));
const describeAll = (els: XmlElement[]) =>
  els.map((e) =>
    `${e.name} ${e.attrs.from}${e.attrs.type ? ` ${e.attrs.type}` : ""} ${e.getChildText("show") ?? e.getChildText("body") ?? ""}`.trim(),
  );

function drain(s: FakeSession): string[] {
  const out = describeAll(s.pending());
  s.pending().length = 0;
  s.received.length = 0;
  return out;
}

async function phone(): Promise<FakeSession> {
  const s = await h.connect("alice", "phone");
  s.received.length = 0;
  return s;
}

test("the feature is offered after authentication", async () => {
  const s = await phone();
  const offers = await Promise.all(
    h.server.services.streamFeatures.forStage("post-auth").map((p) => p.offer(s)),
  );
  assert.ok(offers.flat().some((el) => el?.name === "csi" && el.attrs.xmlns === NS));
  await s.disconnect();
});

test("an inactive client gets the last presence per sender on <active/>; messages pass at once", async () => {
  const s = await phone();
  s.send(presence("bob@example.test/a", "away"));
  assert.deepEqual(drain(s), ["presence bob@example.test/a away"], "active by default");
  say(s, "inactive");
  s.send(presence("bob@example.test/a", "away"));
  s.send(presence("carol@example.test/x", "dnd"));
  s.send(presence("bob@example.test/a", "xa"));
  s.send(presence("dave@example.test/y", undefined, "unavailable"));
  assert.deepEqual(drain(s), [], "presence updates are held");
  s.send(chat("erin@example.test/z", "hello"));
  s.send(
    x(
      "iq",
      { from: "example.test", to: "alice@example.test/phone", type: "get", id: "p1" },
      x("ping", { xmlns: "urn:xmpp:ping" }),
    ),
  );
  assert.deepEqual(
    drain(s),
    ["message erin@example.test/z chat hello", "iq example.test get"],
    "messages and IQs are never held",
  );
  s.send(chat("bob@example.test/b", "from bob"));
  assert.deepEqual(
    drain(s),
    ["presence bob@example.test/a xa", "message bob@example.test/b chat from bob"],
    "the sender's held presence goes first, keeping its order; others stay held",
  );
  say(s, "active");
  assert.deepEqual(drain(s), [
    "presence carol@example.test/x dnd",
    "presence dave@example.test/y unavailable",
  ]);
  s.send(presence("carol@example.test/x"));
  assert.deepEqual(drain(s), ["presence carol@example.test/x"], "active again");
  await s.disconnect();
});

test("subscriptions, presence errors and a room's self-presence are never held", async () => {
  const s = await phone();
  say(s, "inactive");
  s.send(presence("bob@example.test", undefined, "subscribe"));
  s.send(presence("bob@example.test/a", undefined, "error"));
  s.send(
    x(
      "presence",
      { from: "room@muc.example.test/alice", to: "alice@example.test/phone" },
      x("x", { xmlns: "http://jabber.org/protocol/muc#user" }, x("status", { code: "110" })),
    ),
  );
  s.send(
    x(
      "presence",
      { from: "room@muc.example.test/bob", to: "alice@example.test/phone" },
      x("x", { xmlns: "http://jabber.org/protocol/muc#user" }),
    ),
  );
  assert.deepEqual(drain(s), [
    "presence bob@example.test subscribe",
    "presence bob@example.test/a error",
    "presence room@muc.example.test/alice",
  ]);
  say(s, "inactive"); // saying it twice loses nothing
  say(s, "active");
  assert.deepEqual(drain(s), ["presence room@muc.example.test/bob"]);
  await s.disconnect();
});

test("past maxHeldPresences everything held is written and holding goes on", async () => {
  const s = await phone();
  say(s, "inactive");
  for (const u of ["a", "b", "c"]) s.send(presence(`${u}@example.test/r`));
  assert.deepEqual(drain(s), []);
  s.send(presence("d@example.test/r"));
  assert.deepEqual(drain(s), [
    "presence a@example.test/r",
    "presence b@example.test/r",
    "presence c@example.test/r",
    "presence d@example.test/r",
  ]);
  s.send(presence("e@example.test/r"));
  assert.deepEqual(drain(s), [], "still inactive");
  await s.disconnect();
});

test("a session resumed on another stream is active again, what was held first", async () => {
  const s = await phone();
  say(s, "inactive");
  s.send(presence("bob@example.test/a", "away"));
  assert.deepEqual(drain(s), []);
  Object.defineProperty(s, "streamId", { value: "a-new-stream" });
  s.send(presence("carol@example.test/x", "chat"));
  assert.deepEqual(drain(s), ["presence bob@example.test/a away", "presence carol@example.test/x chat"]);
  s.send(presence("carol@example.test/x"));
  assert.deepEqual(drain(s), ["presence carol@example.test/x"]);
  await s.disconnect();
});

test("Bind 2 (XEP-0386): <inactive/> inside <bind/> starts the session inactive", async () => {
  const feature = h.server.services.streamFeatures.forStage("post-auth").find((p) => p.bind2?.var === NS);
  assert.ok(feature?.bind2, "listed for Bind 2 under urn:xmpp:csi:0");
  const s = await phone();
  await feature.bind2.enable(s, x("inactive", { xmlns: NS }));
  s.send(presence("bob@example.test/a", "away"));
  assert.deepEqual(drain(s), []);
  say(s, "active");
  assert.deepEqual(drain(s), ["presence bob@example.test/a away"]);
  await s.disconnect();
});
