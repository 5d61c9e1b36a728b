/**
 * Multi-user chat (XEP-0045) on the in-process harness: the service and room discovery,
 * creation (locked, instant, configured), joining with history, presence and status codes,
 * nick conflicts and changes, messages with stanza-ids, subjects, private messages,
 * moderation (kick, ban, voice, moderator), affiliation lists, members-only and password
 * rooms, destruction, invitations, the room archive (XEP-0313), self-ping (XEP-0410),
 * occupants whose session ends, limits and the creation policy, a remote occupant, and
 * what a persistent room stores.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Jid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import disco from "../../src/modules/disco/index.js";
import message from "../../src/modules/message/index.js";
import muc, { type MucApi } from "../../src/modules/muc/index.js";
import type { StoredRoom } from "../../src/modules/muc/room.js";
import presence from "../../src/modules/presence/index.js";
import roster from "../../src/modules/roster/index.js";
import stanzaId from "../../src/modules/stanza-id/index.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const MUC = "http://jabber.org/protocol/muc";
const USER = `${MUC}#user`;
const ADMIN = `${MUC}#admin`;
const OWNER = `${MUC}#owner`;
const DATA = "jabber:x:data";
const SID = "urn:xmpp:sid:0";
const MAM = "urn:xmpp:mam:2";
const REG = "jabber:iq:register";
const SVC = "conference.example.test";
const MODULES = [message, stanzaId, roster, presence, disco, muc] as ModuleDefinition<unknown>[];

const used = new WeakSet<XmlElement>();
/** The first stanza received (and not taken before) that matches; waits for it. */
async function waitFor(s: FakeSession, pred: (el: XmlElement) => boolean, what = "a stanza", ms = 2000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const el = s.received.find((e) => !used.has(e) && pred(e));
    if (el) {
      used.add(el);
      return el;
    }
    if (Date.now() > deadline) throw new Error(`${s.jid} did not receive ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let iqSeq = 0;
async function iq(s: FakeSession, stanza: XmlElement): Promise<XmlElement> {
  const id = `q${++iqSeq}`;
  stanza.attrs.id = id;
  await s.sendStanza(stanza);
  return waitFor(s, (e) => e.name === "iq" && e.attrs.id === id, `the answer to IQ ${id}`);
}

const codes = (el: XmlElement) =>
  (el.getChild("x", USER)?.getChildren("status") ?? []).map((c) => Number(c.attrs.code));
const itemOf = (el: XmlElement) => el.getChild("x", USER)?.getChild("item");
const presenceFrom = (jid: string, type?: string) => (e: XmlElement) =>
  e.name === "presence" && e.attrs.from === jid && e.attrs.type === type;
const groupchatFrom = (jid: string) => (e: XmlElement) =>
  e.name === "message" &&
  e.attrs.type === "groupchat" &&
  e.attrs.from === jid &&
  e.getChild("body") !== undefined;

let h: Harness;
let seq = 0;
const users: Record<string, FakeSession> = {};

/** A fresh room name per test. */
const newRoom = (base = "room") => `${base}${++seq}@${SVC}`;

async function user(name: string, resource = "r"): Promise<FakeSession> {
  const s = await h.connect(name, resource);
  s.presence = x("presence");
  return s;
}

/** A nick registration (§7.10) in `room`: the submitted muc#register form. */
function registration(room: string, nick: string) {
  return formIq(room, REG, `${MUC}#register`, { "muc#register_roomnick": nick });
}

function joinStanza(room: string, nick: string, ...children: XmlElement[]) {
  return x("presence", { to: `${room}/${nick}` }, x("x", { xmlns: MUC }, ...children));
}

/** Joins and waits for the self-presence (110) and the subject; returns the self-presence. */
async function join(s: FakeSession, room: string, nick: string, ...children: XmlElement[]) {
  await s.sendStanza(joinStanza(room, nick, ...children));
  const self = await waitFor(
    s,
    (e) => e.name === "presence" && e.attrs.from === `${room}/${nick}` && codes(e).includes(110),
    `its self-presence in ${room}`,
  );
  await waitFor(
    s,
    (e) => e.name === "message" && e.attrs.from?.startsWith(room) === true && !!e.getChild("subject"),
    "the subject",
  );
  return self;
}

/** Joins with an error: returns its condition. */
async function joinError(s: FakeSession, room: string, nick: string, ...children: XmlElement[]) {
  await s.sendStanza(joinStanza(room, nick, ...children));
  const err = await waitFor(s, presenceFrom(`${room}/${nick}`, "error"), "a presence error");
  return errorCondition(err);
}

function submit(room: string, fields: Record<string, string>) {
  return formIq(room, OWNER, `${MUC}#roomconfig`, fields);
}

/** An IQ set to `room` carrying a submitted data form of `formType` in a query of `xmlns`. */
function formIq(room: string, xmlns: string, formType: string, fields: Record<string, string>) {
  return x(
    "iq",
    { to: room, type: "set" },
    x(
      "query",
      { xmlns },
      x(
        "x",
        { xmlns: DATA, type: "submit" },
        x("field", { var: "FORM_TYPE" }, x("value", null, formType)),
        ...Object.entries(fields).map(([k, v]) => x("field", { var: k }, x("value", null, v))),
      ),
    ),
  );
}

/** Creates a room as `owner` with `nick` and configures it (an instant room when no fields are given). */
async function createRoom(
  owner: FakeSession,
  nick: string,
  fields: Record<string, string> = {},
  base?: string,
) {
  const room = newRoom(base);
  const self = await join(owner, room, nick);
  assert.ok(codes(self).includes(201), "a new room says so");
  const reply = await iq(owner, submit(room, fields));
  assert.equal(reply.attrs.type, "result", reply.toString());
  return room;
}

function adminSet(room: string, ...items: XmlElement[]) {
  return x("iq", { to: room, type: "set" }, x("query", { xmlns: ADMIN }, ...items));
}

before(async () => {
  h = await startHarness({
    modules: MODULES,
    config: { muc: { maxRoomsPerUser: 50, admins: ["root@example.test"] } },
  });
  for (const n of ["alice", "bob", "carol", "dave", "erin", "root"]) await h.createUser(n);
  for (const n of ["alice", "bob", "carol", "dave"]) users[n] = await user(n);
});

after(async () => {
  await h.stop();
});

describe("discovery", () => {
  test("the service is listed by the server and says it is a conference service", async () => {
    const { alice } = users as Record<string, FakeSession>;
    const items = await iq(
      alice!,
      x(
        "iq",
        { to: "example.test", type: "get" },
        x("query", { xmlns: "http://jabber.org/protocol/disco#items" }),
      ),
    );
    assert.ok(
      items
        .getChild("query")!
        .getChildren("item")
        .some((i) => i.attrs.jid === SVC),
    );
    const info = await iq(
      alice!,
      x("iq", { to: SVC, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
    );
    const q = info.getChild("query")!;
    assert.equal(q.getChild("identity")!.attrs.category, "conference");
    assert.ok(q.getChildren("feature").some((f) => f.attrs.var === MUC));
  });

  test("rooms list public configured rooms only, and a room's features follow its configuration", async () => {
    const alice = users.alice!;
    const open = await createRoom(alice, "A", { "muc#roomconfig_roomname": "Open talk" });
    const hidden = await createRoom(alice, "A", {
      "muc#roomconfig_publicroom": "0",
      "muc#roomconfig_membersonly": "1",
      "muc#roomconfig_persistentroom": "1",
      "muc#roomconfig_whois": "anyone",
      "muc#roomconfig_passwordprotectedroom": "1",
      "muc#roomconfig_roomsecret": "s3cret",
    });
    const items = await iq(
      alice,
      x("iq", { to: SVC, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#items" })),
    );
    const listed = items.getChild("query")!.getChildren("item");
    assert.ok(listed.some((i) => i.attrs.jid === open && i.attrs.name === "Open talk"));
    assert.ok(!listed.some((i) => i.attrs.jid === hidden));
    const features = async (room: string) => {
      const r = await iq(
        alice,
        x("iq", { to: room, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
      );
      return r
        .getChild("query")!
        .getChildren("feature")
        .map((f) => f.attrs.var);
    };
    const f1 = await features(open);
    for (const f of [
      "muc_temporary",
      "muc_open",
      "muc_public",
      "muc_semianonymous",
      "muc_unsecured",
      MAM,
      "http://jabber.org/protocol/muc#stable_id",
    ])
      assert.ok(f1.includes(f), `${f} in ${f1}`);
    const f2 = await features(hidden);
    for (const f of [
      "muc_persistent",
      "muc_membersonly",
      "muc_hidden",
      "muc_nonanonymous",
      "muc_passwordprotected",
    ])
      assert.ok(f2.includes(f), `${f} in ${f2}`);
    const missing = await iq(
      alice,
      x(
        "iq",
        { to: `nothere@${SVC}`, type: "get" },
        x("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      ),
    );
    assert.equal(errorCondition(missing), "item-not-found");
  });

  test("an IQ to the service or a room with two payloads is a bad request (RFC 6120 §8.2.3)", async () => {
    const alice = users.alice!;
    const room = await createRoom(alice, "A");
    for (const to of [SVC, room]) {
      const two = await iq(
        alice,
        x(
          "iq",
          { to, type: "get" },
          x("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
          x("ping", { xmlns: "urn:xmpp:ping" }),
        ),
      );
      assert.equal(errorCondition(two), "bad-request", to);
    }
  });
});

describe("a room's life", () => {
  test("creation locks the room until its owner configures it; the owner is owner and moderator", async () => {
    const { alice, bob } = users;
    const room = newRoom();
    const self = await join(alice!, room, "Alice");
    assert.deepEqual(codes(self).sort(), [110, 170, 201]);
    // Prosody's order, which scripted clients compare: the event's codes, the item, then 110.
    const userX = self.getChild("x", "http://jabber.org/protocol/muc#user")!;
    assert.deepEqual(
      userX.elements().map((c) => c.attrs.code ?? c.name),
      ["170", "201", "item", "110"],
    );
    assert.equal(itemOf(self)!.attrs.affiliation, "owner");
    assert.equal(itemOf(self)!.attrs.role, "moderator");
    const lockedFrom = bob!.received.length;
    const lockedErr = await joinError(bob!, room, "Bob").catch((e: Error) => {
      throw new Error(`${e.message}: ${bob!.received.slice(lockedFrom).join("\n")}`);
    });
    assert.equal(lockedErr, "item-not-found");
    const form = await iq(alice!, x("iq", { to: room, type: "get" }, x("query", { xmlns: OWNER })));
    assert.ok(
      form
        .getChild("query")!
        .getChild("x", DATA)!
        .getChildren("field")
        .some((f) => f.attrs.var === "muc#roomconfig_persistentroom"),
    );
    const notOwner = await iq(bob!, x("iq", { to: room, type: "get" }, x("query", { xmlns: OWNER })));
    assert.equal(errorCondition(notOwner), "forbidden");
    const done = await iq(alice!, submit(room, {}));
    assert.equal(done.attrs.type, "result");
    await join(bob!, room, "Bob");
    // Cancelling the configuration of a new room destroys it.
    const other = newRoom();
    await join(alice!, other, "Alice");
    await iq(
      alice!,
      x(
        "iq",
        { to: other, type: "set" },
        x("query", { xmlns: OWNER }, x("x", { xmlns: DATA, type: "cancel" })),
      ),
    );
    await waitFor(alice!, presenceFrom(`${other}/Alice`, "unavailable"), "the end of the cancelled room");
    const gone = await iq(
      bob!,
      x("iq", { to: other, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
    );
    assert.equal(errorCondition(gone), "item-not-found", "the cancelled room is gone");
  });

  test("joining: others' presence, own presence with 110, real JIDs to moderators only, then the subject", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    const start = bob!.received.length;
    await join(bob!, room, "Bob");
    const seen = bob!.received.slice(start);
    const aliceAt = seen.findIndex(presenceFrom(`${room}/Alice`));
    const selfAt = seen.findIndex((e) => presenceFrom(`${room}/Bob`)(e) && codes(e).includes(110));
    const subjectAt = seen.findIndex((e) => e.name === "message" && !!e.getChild("subject"));
    assert.ok(aliceAt >= 0 && aliceAt < selfAt && selfAt < subjectAt, "occupants, self, subject in order");
    assert.equal(
      itemOf(seen[aliceAt]!)!.attrs.jid,
      undefined,
      "semi-anonymous: no real JID to a participant",
    );
    assert.equal(itemOf(seen[selfAt]!)!.attrs.role, "participant");
    assert.equal(
      itemOf(seen[selfAt]!)!.attrs.jid,
      bob!.jid!.toString(),
      "its own real JID to the occupant itself",
    );
    const bobSeen = await waitFor(alice!, presenceFrom(`${room}/Bob`));
    assert.equal(itemOf(bobSeen)!.attrs.jid, bob!.jid!.toString(), "a moderator sees the real JID");
    assert.deepEqual(codes(bobSeen), []);
  });

  test("a nick held by someone else is a conflict (409); a nick change is 303 then the new nick", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    assert.equal(await joinError(carol!, room, "Bob"), "conflict");
    await join(carol!, room, "Carol");
    // Changing to a taken nick is a conflict too, and changes nothing.
    await bob!.sendStanza(x("presence", { to: `${room}/Carol` }));
    const refused = await waitFor(bob!, presenceFrom(`${room}/Carol`, "error"));
    assert.equal(errorCondition(refused), "conflict");
    await bob!.sendStanza(x("presence", { to: `${room}/Robert` }));
    const gone = await waitFor(carol!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(gone), [303]);
    assert.equal(itemOf(gone)!.attrs.nick, "Robert");
    await waitFor(carol!, presenceFrom(`${room}/Robert`));
    const selfGone = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(selfGone).sort(), [110, 303]);
    const selfNew = await waitFor(bob!, presenceFrom(`${room}/Robert`));
    assert.ok(codes(selfNew).includes(110));
    // The message from the new nick.
    await bob!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "renamed")));
    await waitFor(carol!, groupchatFrom(`${room}/Robert`));
  });

  test("an emoji nick with a variation selector joins as stringprep names it; the same nick without it is taken", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    // "❤️" as clients send it: U+2764 and the emoji presentation selector U+FE0F.
    await bob!.sendStanza(joinStanza(room, "\u2764\uFE0F"));
    const self = await waitFor(
      bob!,
      (e) => presenceFrom(`${room}/\u2764`)(e) && codes(e).includes(110),
      "its self-presence as the heart without the selector",
    );
    assert.equal(self.attrs.type, undefined);
    assert.ok(codes(self).includes(210), "status 210: the service changed the nick");
    await waitFor(alice!, presenceFrom(`${room}/\u2764`));
    assert.equal(await joinError(carol!, room, "\u2764"), "conflict");
  });

  test("groupchat messages reach every occupant with the room's stanza-id; non-occupants are refused", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await bob!.sendStanza(
      x(
        "message",
        { to: room, type: "groupchat", id: "m1" },
        x("body", null, "hello all"),
        x("stanza-id", { xmlns: SID, id: "forged", by: room }),
      ),
    );
    const got = await Promise.all([alice!, bob!].map((s) => waitFor(s, groupchatFrom(`${room}/Bob`))));
    const ids = got.map((m) => m.getChildren("stanza-id", SID).filter((s) => s.attrs.by === room));
    assert.equal(ids[0]!.length, 1, "one id by the room, the forged one gone");
    assert.notEqual(ids[0]![0]!.attrs.id, "forged");
    assert.equal(ids[0]![0]!.attrs.id, ids[1]![0]!.attrs.id, "the same id for everyone");
    assert.equal(got[0]!.attrs.id, "m1", "the sender's id is kept");
    await carol!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "let me in")));
    const err = await waitFor(
      carol!,
      (e) => e.name === "message" && e.attrs.type === "error" && e.attrs.from === room,
    );
    assert.equal(errorCondition(err), "not-acceptable");
  });

  test("the subject: moderators change it, participants may not unless allowed; joiners get it", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await alice!.sendStanza(
      x("message", { to: room, type: "groupchat" }, x("subject", null, "Today: tests")),
    );
    const s = await waitFor(
      bob!,
      (e) =>
        e.name === "message" &&
        e.attrs.from === `${room}/Alice` &&
        e.getChildText("subject") === "Today: tests",
    );
    assert.equal(s.getChild("body"), undefined);
    await bob!.sendStanza(x("message", { to: room, type: "groupchat" }, x("subject", null, "mine")));
    const err = await waitFor(bob!, (e) => e.attrs.type === "error" && e.attrs.from === room);
    assert.equal(errorCondition(err), "forbidden");
    await carol!.sendStanza(joinStanza(room, "Carol"));
    const subject = await waitFor(carol!, (e) => e.name === "message" && !!e.getChild("subject"));
    assert.equal(subject.getChildText("subject"), "Today: tests");
    assert.equal(subject.attrs.from, `${room}/Alice`);
  });

  test("a message with a subject and a body or a thread is a message, not a subject change (§8.1)", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await alice!.sendStanza(
      x(
        "message",
        { to: room, type: "groupchat" },
        x("subject", null, "Greetings"),
        x("body", null, "Hello"),
      ),
    );
    await alice!.sendStanza(
      x(
        "message",
        { to: room, type: "groupchat" },
        x("subject", null, "New thread"),
        x("thread", null, "t-1"),
      ),
    );
    for (const subject of ["Greetings", "New thread"])
      await waitFor(bob!, (e) => e.attrs.from === `${room}/Alice` && e.getChildText("subject") === subject);
    await carol!.sendStanza(joinStanza(room, "Carol"));
    // The subject comes after the history, which holds the message with a body.
    const current = await waitFor(
      carol!,
      (e) =>
        e.name === "message" &&
        e.attrs.from?.startsWith(room) === true &&
        !!e.getChild("subject") &&
        !e.getChild("body"),
    );
    assert.equal(current.getChildText("subject"), "", "the room's subject is still unset");
    assert.equal(current.attrs.from, room);
  });

  test("a join from a session already in the room gets the room again: others, itself, history, subject (§7.2.1)", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await waitFor(alice!, presenceFrom(`${room}/Bob`));
    await alice!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "before")));
    await waitFor(bob!, groupchatFrom(`${room}/Alice`));
    const start = bob!.received.length;
    await join(bob!, room, "Bob");
    const seen = bob!.received.slice(start);
    const aliceAt = seen.findIndex(presenceFrom(`${room}/Alice`));
    const selfAt = seen.findIndex((e) => presenceFrom(`${room}/Bob`)(e) && codes(e).includes(110));
    const historyAt = seen.findIndex(
      (e) => e.getChildText("body") === "before" && e.getChild("delay", "urn:xmpp:delay") !== undefined,
    );
    const subjectAt = seen.findIndex((e) => e.name === "message" && !!e.getChild("subject"));
    assert.ok(
      aliceAt >= 0 && aliceAt < selfAt && selfAt < historyAt && historyAt < subjectAt,
      `occupants, self, history, subject in order: ${[aliceAt, selfAt, historyAt, subjectAt]}`,
    );
    assert.ok(!codes(seen[selfAt]!).includes(201), "the room is not new");
    // The others see a presence update of the same occupant.
    const update = await waitFor(alice!, presenceFrom(`${room}/Bob`));
    assert.equal(itemOf(update)!.attrs.role, "participant");
    const list = await iq(
      alice!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { role: "participant" }))),
    );
    assert.deepEqual(
      list
        .getChild("query", ADMIN)!
        .getChildren("item")
        .map((i) => i.attrs.nick),
      ["Bob"],
    );
  });

  test("history keeps what an archive keeps: a body, or a store hint; not a no-store one, nor a subject change", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    const HINTS = "urn:xmpp:hints";
    const send = (...children: XmlElement[]) =>
      alice!.sendStanza(x("message", { to: room, type: "groupchat" }, ...children));
    await send(x("subject", null, "New thread"), x("thread", null, "t1"), x("store", { xmlns: HINTS }));
    await send(x("body", null, "kept"));
    await send(x("body", null, "not kept"), x("no-store", { xmlns: HINTS }));
    await send(x("active", { xmlns: "http://jabber.org/protocol/chatstates" }));
    await send(x("subject", null, "Topic"));
    const start = bob!.received.length;
    await join(bob!, room, "Bob");
    const history = bob!.received
      .slice(start)
      .filter(
        (e) =>
          e.name === "message" && e.attrs.from === `${room}/Alice` && e.getChild("delay", "urn:xmpp:delay"),
      );
    // The last is the room's subject, which a joiner gets after the history.
    assert.deepEqual(
      history.map((e) => e.getChildText("body") ?? e.getChildText("subject")),
      ["New thread", "kept", "Topic"],
    );
    assert.equal(history[2]!.getChild("stanza-id", SID), undefined);
    assert.ok(history[0]!.getChild("stanza-id", SID), "a kept message has the room's stanza-id");
  });

  test("history on join: maxstanzas, maxchars, seconds and since, with delay stamps", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    for (const body of ["one", "two", "three"]) {
      h.clock.advance(60_000);
      await alice!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, body)));
    }
    const history = async (...attrs: [string, string][]) => {
      const before = bob!.received.length;
      await join(bob!, room, "Bob", x("history", Object.fromEntries(attrs)));
      const got = bob!.received
        .slice(before)
        .filter((e) => e.name === "message" && e.getChild("body") && e.getChild("delay", "urn:xmpp:delay"));
      await bob!.sendStanza(x("presence", { to: `${room}/Bob`, type: "unavailable" }));
      await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
      return got;
    };
    const all = await history();
    assert.deepEqual(
      all.map((m) => m.getChildText("body")),
      ["one", "two", "three"],
    );
    assert.equal(all[0]!.getChild("delay", "urn:xmpp:delay")!.attrs.from, room);
    assert.deepEqual(
      (await history(["maxstanzas", "2"])).map((m) => m.getChildText("body")),
      ["two", "three"],
    );
    assert.deepEqual(await history(["maxstanzas", "0"]), []);
    assert.deepEqual(await history(["maxchars", "0"]), []);
    assert.deepEqual(
      (await history(["seconds", "30"])).map((m) => m.getChildText("body")),
      ["three"],
    );
    const since = new Date(h.clock.now() - 90_000).toISOString();
    assert.deepEqual(
      (await history(["since", since])).map((m) => m.getChildText("body")),
      ["two", "three"],
    );
    assert.equal(await joinError(bob!, room, "Bob", x("history", { maxstanzas: "many" })), "bad-request");
    // A bad request to a room that does not exist creates nothing.
    const never = newRoom();
    assert.equal(await joinError(bob!, never, "Bob", x("history", { since: "yesterday" })), "bad-request");
    const none = await iq(
      bob!,
      x("iq", { to: never, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
    );
    assert.equal(errorCondition(none), "item-not-found");
  });

  test("private messages go between occupants from their occupant JIDs", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await alice!.sendStanza(x("message", { to: `${room}/Bob`, type: "chat" }, x("body", null, "psst")));
    const pm = await waitFor(
      bob!,
      (e) => e.name === "message" && e.attrs.type === "chat" && e.attrs.from === `${room}/Alice`,
    );
    assert.equal(pm.getChildText("body"), "psst");
    assert.ok(pm.getChild("x", USER));
    await alice!.sendStanza(x("message", { to: `${room}/Nobody`, type: "chat" }, x("body", null, "?")));
    const err = await waitFor(alice!, (e) => e.attrs.type === "error" && e.attrs.from === `${room}/Nobody`);
    assert.equal(errorCondition(err), "item-not-found");
    await alice!.sendStanza(x("message", { to: `${room}/Bob`, type: "groupchat" }, x("body", null, "?")));
    const bad = await waitFor(alice!, (e) => e.attrs.type === "error" && e.attrs.from === `${room}/Bob`);
    assert.equal(errorCondition(bad), "bad-request");
  });

  test("leaving: everyone sees the unavailable presence; a temporary room ends with its last occupant", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await bob!.sendStanza(
      x("presence", { to: `${room}/Bob`, type: "unavailable" }, x("status", null, "bye")),
    );
    const seen = await waitFor(alice!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.equal(seen.getChildText("status"), "bye");
    assert.equal(itemOf(seen)!.attrs.role, "none");
    const self = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.ok(codes(self).includes(110));
    await alice!.sendStanza(x("presence", { to: `${room}/Alice`, type: "unavailable" }));
    await waitFor(alice!, presenceFrom(`${room}/Alice`, "unavailable"));
    const gone = await iq(
      bob!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
    );
    assert.equal(errorCondition(gone), "item-not-found");
  });

  test("one nick from two resources: an item per session to those who see real JIDs, newest first; one leaving updates the others", async () => {
    const alice = users.alice!;
    const bob = users.bob!;
    const room = await createRoom(alice, "Alice");
    const gina = await user("gina", "desk");
    const ginaPhone = await user("gina", "phone");
    await join(bob, room, "Bob");
    await join(gina, room, "Gina");
    await waitFor(alice, presenceFrom(`${room}/Gina`), "Gina's first presence");
    await join(ginaPhone, room, "Gina");
    const itemJids = (el: XmlElement) =>
      (el.getChild("x", USER)?.getChildren("item") ?? []).map((i) => i.attrs.jid);
    // The owner (a moderator of this semi-anonymous room) sees both sessions, the newest first.
    const both = await waitFor(
      alice,
      (e) => presenceFrom(`${room}/Gina`)(e) && itemJids(e).length === 2,
      "Gina's presence with both sessions",
    );
    assert.deepEqual(itemJids(both), ["gina@example.test/phone", "gina@example.test/desk"]);
    // A participant sees one item without a real JID.
    const anonymous = await waitFor(
      bob,
      (e) =>
        presenceFrom(`${room}/Gina`)(e) && (e.getChild("x", USER)?.getChildren("item").length ?? 0) === 1,
      "Gina's presence as a participant sees it",
    );
    assert.equal(itemOf(anonymous)!.attrs.jid, undefined);

    // The desk leaves: it is told, with its own item; the others see Gina still there, from the phone.
    await gina.sendStanza(x("presence", { to: `${room}/Gina`, type: "unavailable" }));
    const left = await waitFor(
      gina,
      presenceFrom(`${room}/Gina`, "unavailable"),
      "the desk's unavailable presence",
    );
    assert.ok(codes(left).includes(110));
    assert.deepEqual(itemJids(left), ["gina@example.test/desk"]);
    const remaining = await waitFor(
      alice,
      (e) => presenceFrom(`${room}/Gina`)(e) && itemJids(e).length === 1,
      "Gina's presence with the phone alone",
    );
    assert.deepEqual(itemJids(remaining), ["gina@example.test/phone"]);
    assert.equal(itemOf(remaining)!.attrs.role, "participant");
    assert.equal(
      alice.received.some((e) => presenceFrom(`${room}/Gina`, "unavailable")(e)),
      false,
      "nobody else is told Gina left",
    );
    await gina.disconnect();
    await ginaPhone.disconnect();
  });

  test("an occupant whose session ends leaves the room", async () => {
    const alice = users.alice!;
    const erin = await user("erin", "phone");
    const room = await createRoom(alice, "Alice");
    await join(erin, room, "Erin");
    await erin.disconnect();
    const gone = await waitFor(alice, presenceFrom(`${room}/Erin`, "unavailable"), "Erin leaving");
    assert.equal(itemOf(gone)!.attrs.role, "none");
    // The nick is free again.
    const erin2 = await user("erin", "laptop");
    await join(erin2, room, "Erin");
    await erin2.disconnect();
  });

  test("an error from an occupant's address that says it is gone removes it (333)", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await bob!.sendStanza(
      x(
        "message",
        { to: room, type: "error" },
        x(
          "error",
          { type: "cancel" },
          x("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }),
        ),
      ),
    );
    const gone = await waitFor(alice!, presenceFrom(`${room}/Bob`, "unavailable"), "Bob removed");
    assert.deepEqual(codes(gone), [333]);
    assert.equal(gone.getChildText("status"), "Kicked: service unavailable");
  });

  test("unavailable or error presence to the room's bare JID from an occupant: it leaves, or is gone (333)", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await join(carol!, room, "Carol");
    await bob!.sendStanza(x("presence", { to: room, type: "unavailable" }, x("status", null, "Farewell")));
    const left = await waitFor(alice!, presenceFrom(`${room}/Bob`, "unavailable"), "Bob leaving");
    assert.equal(left.getChildText("status"), "Farewell");
    assert.deepEqual(codes(left), []);
    await carol!.sendStanza(
      x(
        "presence",
        { to: room, type: "error" },
        x(
          "error",
          { type: "cancel" },
          x("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }),
          x("text", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }, "Test error"),
        ),
      ),
    );
    const gone = await waitFor(alice!, presenceFrom(`${room}/Carol`, "unavailable"), "Carol removed");
    assert.deepEqual(codes(gone), [333]);
    assert.equal(gone.getChildText("status"), "Kicked: service unavailable: Test error");
  });

  test("self-ping (XEP-0410): joined gets a result, not joined gets not-acceptable", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    const ok = await iq(
      alice!,
      x("iq", { to: `${room}/Alice`, type: "get" }, x("ping", { xmlns: "urn:xmpp:ping" })),
    );
    assert.equal(ok.attrs.type, "result");
    assert.equal(ok.attrs.from, `${room}/Alice`);
    const no = await iq(
      bob!,
      x("iq", { to: `${room}/Alice`, type: "get" }, x("ping", { xmlns: "urn:xmpp:ping" })),
    );
    assert.equal(errorCondition(no), "not-acceptable");
  });

  test("destroying a room sends every occupant away with the reason", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_persistentroom": "1" });
    await join(bob!, room, "Bob");
    const refused = await iq(
      bob!,
      x("iq", { to: room, type: "set" }, x("query", { xmlns: OWNER }, x("destroy"))),
    );
    assert.equal(errorCondition(refused), "forbidden");
    // An alternate venue that is no JID is refused, and the room stays with its occupants.
    const malformed = await iq(
      alice!,
      x("iq", { to: room, type: "set" }, x("query", { xmlns: OWNER }, x("destroy", { jid: "@@" }))),
    );
    assert.equal(errorCondition(malformed), "jid-malformed");
    assert.notEqual(await h.server.services.storage.documents("muc-rooms").get(room), undefined);
    const done = await iq(
      alice!,
      x(
        "iq",
        { to: room, type: "set" },
        x("query", { xmlns: OWNER }, x("destroy", { jid: `new@${SVC}` }, x("reason", null, "moving"))),
      ),
    );
    assert.equal(done.attrs.type, "result");
    const p = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(p), [110], "self-presence");
    assert.equal(
      itemOf(p)!.attrs.jid,
      bob!.jid!.toString(),
      "with one's own real JID, as every self-presence",
    );
    const d = p.getChild("x", USER)!.getChild("destroy")!;
    assert.equal(d.attrs.jid, `new@${SVC}`);
    assert.equal(d.getChildText("reason"), "moving");
    assert.equal(await h.server.services.storage.documents("muc-rooms").get(room), undefined);
  });
});

describe("moderation and affiliations", () => {
  test("kick (307) with actor (its real JID to moderators) and reason; participants may not kick", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await join(carol!, room, "Carol");
    const no = await iq(bob!, adminSet(room, x("item", { nick: "Carol", role: "none" })));
    assert.equal(errorCondition(no), "forbidden");
    const ok = await iq(
      alice!,
      adminSet(room, x("item", { nick: "Bob", role: "none" }, x("reason", null, "spam"))),
    );
    assert.equal(ok.attrs.type, "result");
    const kicked = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(kicked).sort(), [110, 307]);
    assert.equal(itemOf(kicked)!.getChild("actor")!.attrs.nick, "Alice");
    assert.equal(itemOf(kicked)!.getChildText("reason"), "spam");
    const seen = await waitFor(carol!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(seen), [307]);
    // The actor's real JID goes only to those who see real JIDs (a semi-anonymous room: moderators).
    assert.equal(itemOf(kicked)!.getChild("actor")!.attrs.jid, undefined);
    assert.equal(itemOf(seen)!.getChild("actor")!.attrs.jid, undefined);
    const moderatorView = await waitFor(alice!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.equal(itemOf(moderatorView)!.getChild("actor")!.attrs.nick, "Alice");
    assert.equal(itemOf(moderatorView)!.getChild("actor")!.attrs.jid, alice!.jid!.toString());
    const owner = await iq(alice!, adminSet(room, x("item", { nick: "Alice", role: "none" })));
    assert.equal(errorCondition(owner), "not-allowed");
  });

  test("the affiliation change of a user not in the room is told to the occupants who see real JIDs, before the result", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    const notice = (e: XmlElement) =>
      e.name === "message" && e.attrs.from === room && itemOf(e)?.attrs.jid === "dave@example.test";
    const reply = iq(alice!, adminSet(room, x("item", { jid: "dave@example.test", affiliation: "member" })));
    const told = await waitFor(alice!, notice, "the affiliation notice");
    assert.equal(itemOf(told)!.attrs.affiliation, "member");
    assert.notEqual(told.attrs.type, "groupchat");
    const result = await reply;
    assert.equal(result.attrs.type, "result");
    assert.ok(alice!.received.indexOf(told) < alice!.received.indexOf(result), "the notice comes first");
    assert.deepEqual(codes(told), []);
    const ban = iq(
      alice!,
      adminSet(
        room,
        x("item", { jid: "erin@example.test", affiliation: "outcast" }, x("reason", null, "rude")),
      ),
    );
    const banned = await waitFor(
      alice!,
      (e) => e.name === "message" && itemOf(e)?.attrs.jid === "erin@example.test",
      "the ban notice",
    );
    assert.deepEqual(codes(banned), [301]);
    assert.equal(itemOf(banned)!.getChildText("reason"), "rude");
    await ban;
    // Bob is no moderator of this semi-anonymous room: he is not told the JID.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(bob!.received.filter(notice).length, 0);
    // Carol in the room: her presence says it, no message.
    await join(carol!, room, "Carol");
    await iq(alice!, adminSet(room, x("item", { jid: carol!.jid!.bareString, affiliation: "member" })));
    await waitFor(
      alice!,
      (e) => presenceFrom(`${room}/Carol`)(e) && itemOf(e)?.attrs.affiliation === "member",
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      alice!.received.filter((e) => e.name === "message" && itemOf(e)?.attrs.jid === carol!.jid!.bareString)
        .length,
      0,
    );
  });

  test("ban (301): the banned user is removed, listed as outcast and cannot come back", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await iq(
      alice!,
      adminSet(
        room,
        x("item", { jid: bob!.jid!.bareString, affiliation: "outcast" }, x("reason", null, "out")),
      ),
    );
    const banned = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(banned).sort(), [110, 301]);
    assert.equal(itemOf(banned)!.attrs.affiliation, "outcast");
    assert.equal(await joinError(bob!, room, "Bob"), "forbidden");
    const list = await iq(
      alice!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { affiliation: "outcast" }))),
    );
    assert.deepEqual(
      list
        .getChild("query")!
        .getChildren("item")
        .map((i) => i.attrs.jid),
      [bob!.jid!.bareString],
    );
    // §9.2: the ban list says why.
    assert.equal(list.getChild("query")!.getChild("item")!.getChildText("reason"), "out");
    const notAdmin = await iq(
      bob!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { affiliation: "owner" }))),
    );
    assert.equal(errorCondition(notAdmin), "forbidden");
  });

  test("voice and moderator: a moderated room's visitor gets voice; an admin is a moderator", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_moderatedroom": "1" });
    const self = await join(bob!, room, "Bob");
    assert.equal(itemOf(self)!.attrs.role, "visitor");
    await bob!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "hi")));
    const err = await waitFor(bob!, (e) => e.attrs.type === "error" && e.attrs.from === room);
    assert.equal(errorCondition(err), "forbidden");
    await iq(alice!, adminSet(room, x("item", { nick: "Bob", role: "participant" })));
    const voiced = await waitFor(
      bob!,
      (e) => presenceFrom(`${room}/Bob`)(e) && itemOf(e)?.attrs.role === "participant",
    );
    assert.ok(codes(voiced).includes(110));
    await bob!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "now I speak")));
    await waitFor(alice!, groupchatFrom(`${room}/Bob`));
    await join(carol!, room, "Carol");
    await iq(alice!, adminSet(room, x("item", { jid: carol!.jid!.bareString, affiliation: "admin" })));
    const admin = await waitFor(
      carol!,
      (e) => presenceFrom(`${room}/Carol`)(e) && itemOf(e)?.attrs.affiliation === "admin",
    );
    assert.equal(itemOf(admin)!.attrs.role, "moderator");
    // As a moderator of a semi-anonymous room Carol now sees the others' real JIDs.
    const revealed = await waitFor(
      carol!,
      (e) => presenceFrom(`${room}/Bob`)(e) && itemOf(e)?.attrs.jid !== undefined,
    );
    assert.equal(itemOf(revealed)!.attrs.jid, bob!.jid!.toString());
    // An admin cannot take the owner's affiliation; the last owner cannot leave ownership.
    const noOwner = await iq(
      carol!,
      adminSet(room, x("item", { jid: alice!.jid!.bareString, affiliation: "member" })),
    );
    assert.equal(errorCondition(noOwner), "not-allowed");
    const lastOwner = await iq(
      alice!,
      adminSet(room, x("item", { jid: alice!.jid!.bareString, affiliation: "admin" })),
    );
    assert.equal(errorCondition(lastOwner), "conflict");
    const bad = await iq(alice!, adminSet(room, x("item", { nick: "Bob", role: "king" })));
    assert.equal(errorCondition(bad), "bad-request");
  });

  test("voice requests (§7.13): a visitor asks, moderators get the form, an approval gives voice", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_moderatedroom": "1" });
    await join(bob!, room, "Bob");
    const form = (fields: Record<string, string>) =>
      x(
        "x",
        { xmlns: DATA, type: "submit" },
        x("field", { var: "FORM_TYPE" }, x("value", null, `${MUC}#request`)),
        ...Object.entries(fields).map(([k, v]) => x("field", { var: k }, x("value", null, v))),
      );
    await bob!.sendStanza(x("message", { to: room }, form({ "muc#role": "participant" })));
    const request = await waitFor(
      alice!,
      (e) => e.name === "message" && e.attrs.from === room && !!e.getChild("x", DATA),
    );
    const fields = new Map(
      request
        .getChild("x", DATA)!
        .getChildren("field")
        .map((f) => [f.attrs.var, f.getChildText("value")]),
    );
    assert.equal(fields.get("muc#roomnick"), "Bob");
    assert.equal(fields.get("muc#jid"), bob!.jid!.toString());
    // A participant cannot approve; the moderator can.
    await bob!.sendStanza(
      x("message", { to: room }, form({ "muc#roomnick": "Bob", "muc#request_allow": "true" })),
    );
    const refused = await waitFor(bob!, (e) => e.attrs.type === "error" && e.attrs.from === room);
    assert.equal(errorCondition(refused), "forbidden");
    await alice!.sendStanza(
      x(
        "message",
        { to: room },
        form({
          "muc#role": "participant",
          "muc#roomnick": "Bob",
          "muc#request_allow": "true",
        }),
      ),
    );
    const voiced = await waitFor(
      bob!,
      (e) => presenceFrom(`${room}/Bob`)(e) && itemOf(e)?.attrs.role === "participant",
    );
    assert.equal(itemOf(voiced)!.getChild("actor")!.attrs.nick, "Alice");
  });

  test("nick registration (§7.10): the nick is reserved, the user a member; cancelling ends both", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    const form = await iq(bob!, x("iq", { to: room, type: "get" }, x("query", { xmlns: REG })));
    assert.ok(
      form
        .getChild("query")!
        .getChild("x", DATA)!
        .getChildren("field")
        .some((f) => f.attrs.var === "muc#register_roomnick"),
    );
    const register = (s: FakeSession, nick: string) => iq(s, registration(room, nick));
    assert.equal((await register(bob!, "Bobby")).attrs.type, "result");
    assert.equal(errorCondition(await register(carol!, "Bobby")), "conflict");
    assert.equal(await joinError(carol!, room, "Bobby"), "conflict", "a registered nick is its owner's");
    const again = await iq(bob!, x("iq", { to: room, type: "get" }, x("query", { xmlns: REG })));
    assert.ok(again.getChild("query")!.getChild("registered"));
    assert.equal(again.getChild("query")!.getChildText("username"), "Bobby");
    const reserved = await iq(
      bob!,
      x(
        "iq",
        { to: room, type: "get" },
        x("query", { xmlns: "http://jabber.org/protocol/disco#info", node: "x-roomuser-item" }),
      ),
    );
    assert.equal(reserved.getChild("query")!.getChild("identity")!.attrs.name, "Bobby");
    const self = await join(bob!, room, "Bobby");
    assert.equal(itemOf(self)!.attrs.affiliation, "member");
    const members = await iq(
      alice!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { affiliation: "member" }))),
    );
    assert.deepEqual(
      members
        .getChild("query")!
        .getChildren("item")
        .map((i) => [i.attrs.jid, i.attrs.nick]),
      [[bob!.jid!.bareString, "Bobby"]],
    );
    const cancel = await iq(
      bob!,
      x("iq", { to: room, type: "set" }, x("query", { xmlns: REG }, x("remove"))),
    );
    assert.equal(cancel.attrs.type, "result");
    const demoted = await waitFor(
      bob!,
      (e) => presenceFrom(`${room}/Bobby`)(e) && itemOf(e)?.attrs.affiliation === "none",
    );
    assert.ok(demoted);
    await join(carol!, room, "Carol");
    await carol!.sendStanza(x("presence", { to: `${room}/Bobby2` }));
    await waitFor(carol!, presenceFrom(`${room}/Bobby2`));
    const bad = await register(carol!, "");
    assert.equal(errorCondition(bad), "not-acceptable");
  });

  test("registration as the others see it: a member in the room registering is shown again; a member out of it, by a message; an admin's reservation removes another user holding the nick (307)", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    const register = (s: FakeSession, nick: string) => iq(s, registration(room, nick));
    const bobJid = bob!.jid!.bareString;
    // Bob, already a member and in the room, registers his nick: everyone sees his presence again.
    await iq(alice!, adminSet(room, x("item", { jid: bobJid, affiliation: "member" })));
    await join(bob!, room, "Bob");
    await waitFor(alice!, presenceFrom(`${room}/Bob`), "Bob joining");
    assert.equal((await register(bob!, "Bob")).attrs.type, "result");
    const shown = await waitFor(alice!, presenceFrom(`${room}/Bob`), "Bob's presence after his registration");
    assert.equal(itemOf(shown)!.attrs.affiliation, "member");
    // Out of the room, he cancels it: the occupants who see real JIDs are told by a message.
    await bob!.sendStanza(x("presence", { to: `${room}/Bob`, type: "unavailable" }));
    await waitFor(alice!, presenceFrom(`${room}/Bob`, "unavailable"), "Bob leaving");
    assert.equal(
      (await iq(bob!, x("iq", { to: room, type: "set" }, x("query", { xmlns: REG }, x("remove"))))).attrs
        .type,
      "result",
    );
    const told = await waitFor(
      alice!,
      (e) =>
        e.name === "message" &&
        e.attrs.from === room &&
        itemOf(e)?.attrs.jid === bobJid &&
        itemOf(e)?.attrs.affiliation === "none",
      "the membership's end",
    );
    assert.ok(told);
    // Carol takes the nick Bob no longer holds; the owner reserves it for Bob: Carol is removed.
    await join(carol!, room, "Bob");
    await waitFor(alice!, presenceFrom(`${room}/Bob`), "Carol joining as Bob");
    const reserved = await iq(
      alice!,
      adminSet(room, x("item", { jid: bobJid, affiliation: "member", nick: "Bob" })),
    );
    assert.equal(reserved.attrs.type, "result");
    const removed = await waitFor(carol!, presenceFrom(`${room}/Bob`, "unavailable"), "Carol removed");
    assert.deepEqual(codes(removed), [307, 110]);
    assert.equal(itemOf(removed)!.getChildText("reason"), "This nickname is reserved");
    assert.equal(await joinError(carol!, room, "Bob"), "conflict", "the nick is Bob's now");
    // An owner in the room keeps its nick: no admin may kick an owner.
    assert.equal(
      errorCondition(
        await iq(alice!, adminSet(room, x("item", { jid: bobJid, affiliation: "member", nick: "Alice" }))),
      ),
      "conflict",
    );
  });

  test("a member made by an admin, with no reserved nick, cancels the membership with <remove/>; a non-member cannot", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_membersonly": "1" });
    await iq(alice!, adminSet(room, x("item", { jid: bob!.jid!.bareString, affiliation: "member" })));
    await join(bob!, room, "Bob");
    const cancel = await iq(
      bob!,
      x("iq", { to: room, type: "set" }, x("query", { xmlns: REG }, x("remove"))),
    );
    assert.equal(cancel.attrs.type, "result", cancel.toString());
    const gone = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(gone).sort(), [110, 321]);
    assert.ok(bob!.received.indexOf(gone) < bob!.received.indexOf(cancel), "removed before the result");
    const none = await iq(
      carol!,
      x("iq", { to: room, type: "set" }, x("query", { xmlns: REG }, x("remove"))),
    );
    assert.equal(errorCondition(none), "item-not-found");
  });

  test("an admin reserves, changes and unsets a member's nick with the member list (§9.5)", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    const member = (jid: string, attrs: Record<string, string> = {}) =>
      x("item", { jid, affiliation: "member", ...attrs });
    const memberList = async () =>
      (
        await iq(
          alice!,
          x(
            "iq",
            { to: room, type: "get" },
            x("query", { xmlns: ADMIN }, x("item", { affiliation: "member" })),
          ),
        )
      )
        .getChild("query", ADMIN)!
        .getChildren("item")
        .map((i) => [i.attrs.jid, i.attrs.nick]);
    const bobJid = bob!.jid!.bareString;
    const carolJid = carol!.jid!.bareString;
    assert.equal((await iq(alice!, adminSet(room, member(bobJid, { nick: "Bobby" })))).attrs.type, "result");
    assert.deepEqual(await memberList(), [[bobJid, "Bobby"]]);
    assert.equal(await joinError(carol!, room, "Bobby"), "conflict", "the nick is reserved for bob");
    assert.equal(
      errorCondition(await iq(alice!, adminSet(room, member(carolJid, { nick: "Bobby" })))),
      "conflict",
      "someone else's nick",
    );
    assert.equal(
      errorCondition(
        await iq(
          alice!,
          adminSet(room, member(carolJid, { nick: "Twin" }), member(bobJid, { nick: "Twin" })),
        ),
      ),
      "conflict",
      "one nick for two in one request",
    );
    const nickOf = async (s: FakeSession) =>
      (
        await iq(
          s,
          x(
            "iq",
            { to: room, type: "get" },
            x("query", { xmlns: "http://jabber.org/protocol/disco#info", node: "x-roomuser-item" }),
          ),
        )
      )
        .getChild("query")!
        .getChild("identity")?.attrs.name;
    assert.equal(await nickOf(bob!), "Bobby");
    await iq(alice!, adminSet(room, member(bobJid, { nick: "Robert" })));
    assert.equal(await nickOf(bob!), "Robert");
    await join(carol!, room, "Bobby");
    await iq(alice!, adminSet(room, member(bobJid, { nick: "" })));
    assert.deepEqual(await memberList(), [[bobJid, undefined]], "unset, still a member");
    assert.equal(await nickOf(bob!), undefined);
  });

  test("the first configuration of a new room notifies the owner of what it changed (§10.2.1: 104, 172); an instant room gets no notice", async () => {
    const { alice } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_whois": "anyone" });
    const notice = await waitFor(
      alice!,
      (e) => e.name === "message" && e.attrs.from === room && codes(e).length > 0,
    );
    assert.deepEqual(codes(notice).sort(), [104, 172]);
    assert.equal(notice.attrs.type, "groupchat");
    const instant = await createRoom(alice!, "Alice");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      alice!.received.filter((e) => e.name === "message" && e.attrs.from === instant && codes(e).length > 0)
        .length,
      0,
    );
  });

  test("members-only: non-members are refused (registration-required) and removed when it is switched on (322, 321)", async () => {
    const { alice, bob, carol, dave } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    await join(carol!, room, "Carol");
    await iq(alice!, adminSet(room, x("item", { jid: carol!.jid!.bareString, affiliation: "member" })));
    const done = await iq(alice!, submit(room, { "muc#roomconfig_membersonly": "1" }));
    const change = await waitFor(
      carol!,
      (e) => e.name === "message" && e.attrs.from === room && codes(e).includes(104),
    );
    assert.ok(change);
    const ownCopy = await waitFor(
      alice!,
      (e) => e.name === "message" && e.attrs.from === room && codes(e).includes(104),
    );
    assert.ok(
      alice!.received.indexOf(done) < alice!.received.indexOf(ownCopy),
      "the result comes first (§10.2)",
    );
    const removed = await waitFor(bob!, presenceFrom(`${room}/Bob`, "unavailable"));
    assert.deepEqual(codes(removed).sort(), [110, 322]);
    assert.equal(await joinError(dave!, room, "Dave"), "registration-required");
    await iq(alice!, adminSet(room, x("item", { jid: dave!.jid!.bareString, affiliation: "member" })));
    await join(dave!, room, "Dave");
    const members = await iq(
      alice!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { affiliation: "member" }))),
    );
    assert.deepEqual(
      members
        .getChild("query")!
        .getChildren("item")
        .map((i) => i.attrs.jid)
        .sort(),
      [carol!.jid!.bareString, dave!.jid!.bareString].sort(),
    );
    await iq(alice!, adminSet(room, x("item", { jid: dave!.jid!.bareString, affiliation: "none" })));
    const out = await waitFor(dave!, presenceFrom(`${room}/Dave`, "unavailable"));
    assert.deepEqual(codes(out).sort(), [110, 321]);
  });

  test("the member list: members see it in a non-anonymous room, in it or not, and only there (§9.5)", async () => {
    const { alice, bob, carol } = users;
    const memberList = (s: FakeSession, room: string) =>
      iq(
        s,
        x(
          "iq",
          { to: room, type: "get" },
          x("query", { xmlns: ADMIN }, x("item", { affiliation: "member" })),
        ),
      );
    const open = await createRoom(alice!, "Alice", { "muc#roomconfig_whois": "anyone" });
    const semi = await createRoom(alice!, "Alice");
    for (const room of [open, semi])
      await iq(alice!, adminSet(room, x("item", { jid: bob!.jid!.bareString, affiliation: "member" })));
    const list = await memberList(bob!, open);
    assert.equal(list.attrs.type, "result", list.toString());
    assert.deepEqual(
      list
        .getChild("query", ADMIN)!
        .getChildren("item")
        .map((i) => [i.attrs.jid, i.attrs.affiliation]),
      [[bob!.jid!.bareString, "member"]],
    );
    assert.equal(errorCondition(await memberList(carol!, open)), "forbidden", "not a member");
    assert.equal(errorCondition(await memberList(bob!, semi)), "forbidden", "semi-anonymous");
    const outcasts = await iq(
      bob!,
      x("iq", { to: open, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { affiliation: "outcast" }))),
    );
    assert.equal(errorCondition(outcasts), "forbidden", "other lists stay with admins and owners");
  });

  test("administrative IQs to a room are answered in the order they arrived: a list asked for right after a change shows it", async () => {
    const { alice, carol } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_whois": "anyone" });
    const ownerListGet = x(
      "iq",
      { to: room, type: "get", id: "owners-1" },
      x("query", { xmlns: ADMIN }, x("item", { affiliation: "owner" })),
    );
    const grant = adminSet(room, x("item", { jid: carol!.jid!.bareString, affiliation: "member" }));
    grant.attrs.id = "grant-1";
    // Sent one after the other without waiting for the first answer, as two clients would.
    await Promise.all([alice!.sendStanza(grant), carol!.sendStanza(ownerListGet)]);
    const answer = await waitFor(carol!, (e) => e.name === "iq" && e.attrs.id === "owners-1");
    assert.equal(answer.attrs.type, "result", `carol is a member by then: ${answer.toString()}`);
  });

  test("the owner and admin lists: owners only in a semi-anonymous room, members too in a non-anonymous one (§10.5, §10.8)", async () => {
    const { alice, bob, carol } = users;
    const listOf = (s: FakeSession, room: string, affiliation: string) =>
      iq(s, x("iq", { to: room, type: "get" }, x("query", { xmlns: ADMIN }, x("item", { affiliation }))));
    const semi = await createRoom(alice!, "Alice");
    const open = await createRoom(alice!, "Alice", { "muc#roomconfig_whois": "anyone" });
    for (const room of [semi, open]) {
      await iq(alice!, adminSet(room, x("item", { jid: bob!.jid!.bareString, affiliation: "admin" })));
      await iq(alice!, adminSet(room, x("item", { jid: carol!.jid!.bareString, affiliation: "member" })));
    }
    for (const list of ["owner", "admin"]) {
      assert.equal(
        (await listOf(alice!, semi, list)).attrs.type,
        "result",
        `the owner sees the ${list} list`,
      );
      assert.equal(
        errorCondition(await listOf(bob!, semi, list)),
        "forbidden",
        `an admin, semi-anonymous: ${list}`,
      );
      assert.equal(
        errorCondition(await listOf(carol!, semi, list)),
        "forbidden",
        `a member, semi-anonymous: ${list}`,
      );
      const seen = await listOf(carol!, open, list);
      assert.equal(seen.attrs.type, "result", `a member, non-anonymous: ${list}`);
      const jids = seen
        .getChild("query", ADMIN)!
        .getChildren("item")
        .map((i) => i.attrs.jid);
      assert.deepEqual(jids, [list === "owner" ? alice!.jid!.bareString : bob!.jid!.bareString]);
    }
    // Admins keep the member and ban lists of any room.
    assert.equal((await listOf(bob!, semi, "member")).attrs.type, "result");
    assert.equal((await listOf(bob!, semi, "outcast")).attrs.type, "result");
  });

  test("a password-protected room wants the password", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice", {
      "muc#roomconfig_passwordprotectedroom": "1",
      "muc#roomconfig_roomsecret": "pass",
    });
    assert.equal(await joinError(bob!, room, "Bob"), "not-authorized");
    assert.equal(await joinError(bob!, room, "Bob", x("password", null, "wrong")), "not-authorized");
    await join(bob!, room, "Bob", x("password", null, "pass"));
  });

  test("errors a room returns name the room in 'by' (RFC 6120 §8.3.2, XEP-0045 examples)", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice", {
      "muc#roomconfig_passwordprotectedroom": "1",
      "muc#roomconfig_roomsecret": "pass",
    });
    await bob!.sendStanza(joinStanza(room, "Bob"));
    const joinErr = await waitFor(bob!, presenceFrom(`${room}/Bob`, "error"), "a presence error");
    assert.equal(errorCondition(joinErr), "not-authorized");
    assert.equal(joinErr.getChild("error")?.attrs.by, room);
    const pm = await iq(
      bob!,
      x("iq", { to: `${room}/Nobody`, type: "get" }, x("query", { xmlns: "jabber:iq:version" })),
    );
    assert.equal(pm.attrs.type, "error");
    assert.equal(pm.getChild("error")?.attrs.by, room);
    // The service's own errors are not the room's.
    const svc = await iq(
      bob!,
      x("iq", { to: SVC, type: "get" }, x("query", { xmlns: "urn:example:unknown" })),
    );
    assert.equal(errorCondition(svc), "service-unavailable");
    assert.equal(svc.getChild("error")?.attrs.by, undefined);
  });

  test("a non-anonymous room shows real JIDs to everyone (status 100)", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_whois": "anyone" });
    const start = bob!.received.length;
    const self = await join(bob!, room, "Bob");
    assert.ok(codes(self).includes(100));
    const alicePresence = bob!.received.slice(start).find(presenceFrom(`${room}/Alice`))!;
    assert.equal(itemOf(alicePresence)!.attrs.jid, alice!.jid!.toString());
  });

  test("bad configuration values are refused", async () => {
    const alice = users.alice!;
    const room = await createRoom(alice, "Alice");
    // XEP-0045 §10.1.3: options that cannot be processed are not-acceptable, as PEP's are (XEP-0004 §3.4 booleans).
    const r1 = await iq(alice, submit(room, { "muc#roomconfig_persistentroom": "maybe" }));
    assert.equal(errorCondition(r1), "not-acceptable");
    const r4 = await iq(alice, submit(room, { "muc#roomconfig_maxusers": "many" }));
    assert.equal(errorCondition(r4), "not-acceptable");
    const r2 = await iq(alice, submit(room, { "muc#roomconfig_maxusers": "100000" }));
    assert.equal(errorCondition(r2), "not-acceptable");
    const r3 = await iq(alice, submit(room, { "muc#roomconfig_passwordprotectedroom": "1" }));
    assert.equal(errorCondition(r3), "not-acceptable");
  });
});

describe("presence probes (§17.3)", () => {
  test("an occupant probing an occupant JID gets its presence, or unavailable with the registered member's item; outsiders are refused", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_whois": "anyone" });
    await join(bob!, room, "Bob");
    const probe = (nick: string) =>
      x("presence", { to: `${room}/${nick}`, type: "probe" }, x("x", { xmlns: MUC }));
    const from = alice!.received.length;
    await alice!.sendStanza(probe("Bob"));
    const bobs = await waitFor(
      alice!,
      (e) => presenceFrom(`${room}/Bob`)(e) && alice!.received.indexOf(e) >= from,
    );
    assert.equal(itemOf(bobs)!.attrs.role, "participant");
    assert.equal(itemOf(bobs)!.attrs.jid, bob!.jid!.toString(), "a non-anonymous room shows the real JID");
    assert.deepEqual(codes(bobs), [], "not a self-presence");
    // A member who is away: unavailable, with the nick's holder.
    await iq(
      alice!,
      adminSet(room, x("item", { affiliation: "member", jid: carol!.jid!.bareString, nick: "Carol" })),
    );
    await alice!.sendStanza(probe("Carol"));
    const carols = await waitFor(alice!, presenceFrom(`${room}/Carol`, "unavailable"));
    assert.deepEqual(
      { ...itemOf(carols)!.attrs },
      { nick: "Carol", affiliation: "member", role: "none", jid: carol!.jid!.bareString },
    );
    // Not in the room: refused, whatever the nick.
    for (const nick of ["Alice", "Carol"]) {
      await carol!.sendStanza(probe(nick));
      const refused = await waitFor(carol!, presenceFrom(`${room}/${nick}`, "error"));
      assert.equal(errorCondition(refused), "not-acceptable");
      assert.equal(refused.getChild("error")!.attrs.type, "cancel", "no retry helps but joining");
    }
    // A probe never joins (§17.3).
    assert.ok(
      !carol!.received.some((e) => e.attrs.from?.startsWith(`${room}/`) && codes(e).includes(110)),
      "no self-presence from the room",
    );
  });
});

describe("invitations", () => {
  test("mediated invitations come from the room; in a members-only room they make the invitee a member", async () => {
    const { alice, bob, dave } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_membersonly": "1" });
    await alice!.sendStanza(
      x(
        "message",
        { to: room, id: "invite-1" },
        x("x", { xmlns: USER }, x("invite", { to: dave!.jid!.bareString }, x("reason", null, "join us"))),
      ),
    );
    const inv = await waitFor(
      dave!,
      (e) => e.name === "message" && e.attrs.from === room && !!e.getChild("x", USER)?.getChild("invite"),
    );
    const invite = inv.getChild("x", USER)!.getChild("invite")!;
    // From the inviter's occupant JID: the room does not show real JIDs to everyone.
    assert.equal(invite.attrs.from, `${room}/Alice`);
    assert.equal(invite.getChildText("reason"), "join us");
    assert.equal(inv.getChild("x", "jabber:x:conference")!.attrs.jid, room);
    assert.equal(inv.attrs.id, "invite-1", "the inviter's id, as in XEP-0045's examples");
    // For clients that know no invitations.
    assert.equal(inv.getChildText("body"), `${room}/Alice invited you to the room ${room}: join us`);
    await join(dave!, room, "Dave");
    await dave!.sendStanza(
      x(
        "message",
        { to: room },
        x("x", { xmlns: USER }, x("decline", { to: alice!.jid!.bareString }, x("reason", null, "busy"))),
      ),
    );
    const decline = await waitFor(
      alice!,
      (e) => e.name === "message" && !!e.getChild("x", USER)?.getChild("decline"),
    );
    assert.equal(decline.attrs.from, room);
    assert.equal(decline.getChild("x", USER)!.getChild("decline")!.attrs.from, dave!.jid!.bareString);
    // A non-occupant cannot invite.
    await bob!.sendStanza(
      x("message", { to: room }, x("x", { xmlns: USER }, x("invite", { to: "x@example.test" }))),
    );
    const err = await waitFor(bob!, (e) => e.attrs.type === "error" && e.attrs.from === room);
    assert.equal(errorCondition(err), "not-acceptable");
  });

  test("direct invitations (XEP-0249) go from user to user as they are", async () => {
    const { alice, bob } = users;
    const room = `somewhere@${SVC}`;
    await alice!.sendStanza(
      x(
        "message",
        { to: bob!.jid!.bareString },
        x("x", { xmlns: "jabber:x:conference", jid: room, reason: "come", password: "pw" }),
      ),
    );
    const got = await waitFor(bob!, (e) => e.name === "message" && !!e.getChild("x", "jabber:x:conference"));
    assert.equal(got.attrs.from, alice!.jid!.toString());
    const xc = got.getChild("x", "jabber:x:conference")!;
    assert.deepEqual([xc.attrs.jid, xc.attrs.reason, xc.attrs.password], [room, "come", "pw"]);
  });
});

describe("the room archive (XEP-0313)", () => {
  test("while the archive's store is full, room messages wait for room, then go on in the order they came", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    const archive = h.server.services.storage.messages("muc", { ownedByAccounts: false });
    // The store says it is full, as a slow database's queue of appends does, until opened.
    let open!: () => void;
    const roomToAppend = new Promise<void>((resolve) => {
      open = resolve;
    });
    let asked = 0;
    archive.roomToAppend = () => {
      asked++;
      return roomToAppend;
    };
    try {
      const before = bob!.received.length;
      const sent = [
        alice!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "one"))),
        bob!.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "two"))),
      ];
      const settled = [false, false];
      sent.forEach((p, i) => void p.then(() => (settled[i] = true)));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(settled, [false, false], "the senders are held");
      assert.equal(
        bob!.received.slice(before).filter((e) => e.name === "message").length,
        0,
        "nothing is delivered while the store is full",
      );
      assert.equal(asked, 2);
      open();
      await Promise.all(sent);
    } finally {
      delete archive.roomToAppend;
    }
    const one = await waitFor(bob!, groupchatFrom(`${room}/Alice`));
    const two = await waitFor(bob!, groupchatFrom(`${room}/Bob`));
    assert.ok(bob!.received.indexOf(one) < bob!.received.indexOf(two), "delivered in the order they came");
    const archived = (await archive.query({ owner: room })).messages;
    assert.deepEqual(
      archived.map((m) => [m.text, m.id]),
      [
        ["one", one.getChild("stanza-id", SID)!.attrs.id],
        ["two", two.getChild("stanza-id", SID)!.attrs.id],
      ],
    );
  });

  test("occupants query the room's messages by the room JID, with the stanza-ids they saw", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice");
    await join(bob!, room, "Bob");
    const ids: string[] = [];
    for (const [s, nick, body] of [
      [alice!, "Alice", "first"],
      [bob!, "Bob", "second"],
      [alice!, "Alice", "third"],
    ] as const) {
      h.clock.advance(1000);
      await s.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, body)));
      const m = await waitFor(bob!, groupchatFrom(`${room}/${nick}`));
      ids.push(m.getChild("stanza-id", SID)!.attrs.id!);
    }
    const queryTo = (to: string, ...fields: [string, string][]) =>
      x(
        "iq",
        { to, type: "set" },
        x(
          "query",
          { xmlns: MAM, queryid: "q1" },
          x(
            "x",
            { xmlns: DATA, type: "submit" },
            x("field", { var: "FORM_TYPE" }, x("value", null, MAM)),
            ...fields.map(([k, v]) => x("field", { var: k }, x("value", null, v))),
          ),
        ),
      );
    const query = (...fields: [string, string][]) => queryTo(room, ...fields);
    const run = async (s: FakeSession, q: XmlElement) => {
      const before = s.received.length;
      const fin = await iq(s, q);
      const results = s.received
        .slice(before)
        .filter((e) => e.name === "message" && e.getChild("result", MAM))
        .map((e) => {
          assert.equal(e.attrs.from, room);
          const r = e.getChild("result", MAM)!;
          const inner = r.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!;
          return { id: r.attrs.id, body: inner.getChildText("body"), from: inner.attrs.from };
        });
      return { fin, results };
    };
    const all = await run(carol!, query());
    assert.equal(all.fin.attrs.type, "result");
    assert.deepEqual(
      all.results.map((r) => r.id),
      ids,
    );
    assert.deepEqual(
      all.results.map((r) => r.from),
      [`${room}/Alice`, `${room}/Bob`, `${room}/Alice`],
    );
    assert.equal(all.fin.getChild("fin", MAM)!.attrs.complete, "true");
    const byBob = await run(alice!, query(["with", `${room}/Bob`]));
    assert.deepEqual(
      byBob.results.map((r) => r.body),
      ["second"],
    );
    const after = await run(alice!, query(["after-id", ids[0]!]));
    assert.deepEqual(
      after.results.map((r) => r.body),
      ["second", "third"],
    );
    const bad = await iq(alice!, query(["start", "yesterday"]));
    assert.equal(errorCondition(bad), "bad-request");
    // A members-only room's archive is for its members.
    const closed = await createRoom(alice!, "Alice", { "muc#roomconfig_membersonly": "1" });
    const refused = await iq(carol!, queryTo(closed));
    assert.equal(errorCondition(refused), "forbidden");
  });
});

describe("limits and policy", () => {
  test("a room's occupant limit: the next one gets service-unavailable", async () => {
    const { alice, bob, carol } = users;
    const room = await createRoom(alice!, "Alice", { "muc#roomconfig_maxusers": "2" });
    await join(bob!, room, "Bob");
    assert.equal(await joinError(carol!, room, "Carol"), "service-unavailable");
  });

  test("persistent rooms are stored with configuration, affiliations and subject", async () => {
    const { alice, bob } = users;
    const room = await createRoom(alice!, "Alice", {
      "muc#roomconfig_persistentroom": "1",
      "muc#roomconfig_roomname": "Kept",
    });
    await iq(alice!, adminSet(room, x("item", { jid: bob!.jid!.bareString, affiliation: "member" })));
    await iq(
      bob!,
      x(
        "iq",
        { to: room, type: "set" },
        x(
          "query",
          { xmlns: "jabber:iq:register" },
          x(
            "x",
            { xmlns: DATA, type: "submit" },
            x("field", { var: "FORM_TYPE" }, x("value", null, `${MUC}#register`)),
            x("field", { var: "muc#register_roomnick" }, x("value", null, "Bee")),
          ),
        ),
      ),
    );
    await alice!.sendStanza(x("message", { to: room, type: "groupchat" }, x("subject", null, "stays")));
    await waitFor(alice!, (e) => e.name === "message" && e.getChildText("subject") === "stays");
    await new Promise((r) => setTimeout(r, 50));
    const stored = (await h.server.services.storage.documents<StoredRoom>("muc-rooms").get(room))!;
    assert.equal(stored.config.name, "Kept");
    assert.equal(stored.affiliations[bob!.jid!.bareString], "member");
    assert.equal(stored.affiliations[alice!.jid!.bareString], "owner");
    assert.equal(stored.subject!.text, "stays");
    assert.deepEqual(stored.nicks, { [bob!.jid!.bareString]: "Bee" });
    // Still there when everyone left.
    await alice!.sendStanza(x("presence", { to: `${room}/Alice`, type: "unavailable" }));
    await waitFor(alice!, presenceFrom(`${room}/Alice`, "unavailable"));
    const info = await iq(
      bob!,
      x("iq", { to: room, type: "get" }, x("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
    );
    assert.equal(info.attrs.type, "result");
  });

  test("a remote user can join and receives the room's stanzas through the remote route", async () => {
    const alice = users.alice!;
    const room = await createRoom(alice, "Alice");
    const sent: { stanza: XmlElement; to: Jid }[] = [];
    const router = h.server.services.router;
    const remove = router.addRemoteRoute({
      kind: "test",
      priority: 1000,
      canRoute: (d) => d === "remote.example",
      send: (stanza, to) => sent.push({ stanza: stanza.clone(), to }),
    });
    try {
      const { parseJid } = await import("../../src/core/jid.js");
      const remote = parseJid("zed@remote.example/res");
      await router.deliver(joinStanza(room, "Zed"), remote, parseJid(`${room}/Zed`));
      assert.ok(
        sent.some(
          (s) =>
            s.stanza.name === "presence" &&
            s.stanza.attrs.from === `${room}/Zed` &&
            codes(s.stanza).includes(110),
        ),
      );
      assert.ok(sent.some((s) => s.stanza.name === "message" && s.stanza.getChild("subject")));
      await waitFor(alice, presenceFrom(`${room}/Zed`));
      await router.deliver(
        x("message", { to: room, type: "groupchat", from: remote.toString() }, x("body", null, "from afar")),
        remote,
        parseJid(room),
      );
      await waitFor(alice, groupchatFrom(`${room}/Zed`));
      // Remote users may not create rooms under the default policy (local accounts only).
      await router.deliver(joinStanza(`new${++seq}@${SVC}`, "Zed"), remote, parseJid(`new${seq}@${SVC}/Zed`));
      const refusal = sent.find(
        (s) => s.stanza.attrs.type === "error" && s.stanza.attrs.from === `new${seq}@${SVC}/Zed`,
      );
      assert.equal(refusal && errorCondition(refusal.stanza), "not-allowed");
    } finally {
      remove();
    }
  });
});

describe("creation policy and room limits per user", () => {
  let h2: Harness;
  before(async () => {
    h2 = await startHarness({
      modules: MODULES,
      config: { muc: { roomCreation: "admins", admins: ["boss@example.test"], maxRoomsPerUser: 1 } },
    });
    await h2.createUser("boss");
    await h2.createUser("staff");
  });
  after(async () => {
    await h2.stop();
  });

  test("only admins create rooms; a server admin role counts too", async () => {
    const staff = await h2.connect("staff", "r");
    const boss = await h2.connect("boss", "r");
    assert.equal(await joinError(staff, `a@${SVC}`, "S"), "not-allowed");
    await join(boss, `a@${SVC}`, "B");
    await join(boss, `b@${SVC}`, "B"); // admins have no room limit
    await h2.server.services.storage
      .documents("admin-roles")
      .put("staff", { grantedAt: 0, grantedBy: "test" });
    await join(staff, `c@${SVC}`, "S");
  });

  test("room messages expire with archive.retentionDays", async () => {
    const h4 = await startHarness({ modules: MODULES, config: { archive: { retentionDays: 1 } } });
    try {
      await h4.createUser("u");
      const u = await h4.connect("u", "r");
      const room = `kept@${SVC}`;
      await join(u, room, "U");
      await iq(u, submit(room, {}));
      await u.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "old")));
      await waitFor(u, groupchatFrom(`${room}/U`));
      h4.clock.advance(2 * 86_400_000);
      await u.sendStanza(x("message", { to: room, type: "groupchat" }, x("body", null, "new")));
      await waitFor(u, (e) => groupchatFrom(`${room}/U`)(e) && e.getChildText("body") === "new");
      const api = h4.server.services.apis.get("muc") as MucApi;
      assert.equal(await api.pruneExpired(), 1);
      const archive = h4.server.services.storage.messages("muc", { ownedByAccounts: false });
      const left = await archive.query({ owner: room });
      assert.deepEqual(
        left.messages.map((m) => m.text),
        ["new"],
      );
    } finally {
      await h4.stop();
    }
  });

  test("a shutdown tells every occupant it left (332)", async () => {
    const h5 = await startHarness({ modules: MODULES });
    await h5.createUser("u");
    const u = await h5.connect("u", "r");
    const room = `closing@${SVC}`;
    await join(u, room, "U");
    await h5.stop();
    const gone = u.received.find(presenceFrom(`${room}/U`, "unavailable"));
    assert.ok(gone, "an unavailable presence before the stream closed");
    assert.deepEqual(codes(gone).sort(), [110, 332]);
  });

  test("max rooms per user", async () => {
    const h3 = await startHarness({ modules: MODULES, config: { muc: { maxRoomsPerUser: 1 } } });
    try {
      await h3.createUser("u");
      const u = await h3.connect("u", "r");
      await join(u, `one@${SVC}`, "U");
      assert.equal(await joinError(u, `two@${SVC}`, "U"), "resource-constraint");
    } finally {
      await h3.stop();
    }
  });
});
