/**
 * Group chat (XEP-0045) with a real client: slixmpp's xep_0045 plugin at its defaults.
 * Two users join a room (the first creates and configures it persistent), exchange groupchat
 * messages carrying the room's stanza-ids, one changes nick and leaves; the room survives a
 * restart of the server with its configuration and history, and slixmpp's xep_0313 plugin
 * reads the room's archive on the room JID before and after the restart. An occupant whose
 * connection drops leaves the room.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, NS, parseXml } from "../helpers/stanza.js";

const USER = "http://jabber.org/protocol/muc#user";
const SID = "urn:xmpp:sid:0";
const ROOM = "lounge@conference.localhost";
const PW = { alice: "alice-muc-pw", bob: "bob-muc-pw" };

interface Joined {
  presence: string;
  subject: string;
  occupants: string[];
  history: string[];
  roster: string[];
}

const codes = (el: Element) =>
  (el.getChild("x", USER)?.getChildren("status") ?? []).map((s) => Number(s.attrs.code));

async function joinRoom(peer: SlixPeer, nick: string, maxstanzas?: number): Promise<Joined> {
  const out = await peer.command("muc_join", {
    room: ROOM,
    nick,
    ...(maxstanzas !== undefined ? { maxstanzas } : {}),
  });
  return JSON.parse(out!) as Joined;
}

async function roomArchive(peer: SlixPeer): Promise<[string, string][]> {
  return JSON.parse((await peer.command("mam", { archive: ROOM, max: 10 }))!) as [string, string][];
}

describe("group chat with slixmpp", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: SlixPeer;
  let bob: SlixPeer;
  /** The room's stanza-ids of the messages, as delivered live. */
  const liveIds: string[] = [];

  before(async () => {
    server = await startServer({ name: "muc-slixmpp", users: PW, removeDataOnStop: true });
    alice = await connectSlix(server, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "phone" });
    await alice.command("presence");
    await bob.command("presence");
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    if (server?.running) await server.stop();
  });

  test("the first user creates the room and configures it; the second joins and sees the first", async () => {
    const created = await joinRoom(alice, "Alice");
    const self = parseXml(created.presence);
    assert.deepEqual(codes(self).sort(), [110, 170, 201], created.presence);
    assert.equal(self.getChild("x", USER)!.getChild("item")!.attrs.affiliation, "owner");
    assert.equal(created.subject, "");
    // slixmpp's usual configuration: fetch the form, change fields, submit it.
    await alice.command("muc_configure", {
      room: ROOM,
      fields: { "muc#roomconfig_persistentroom": true, "muc#roomconfig_roomname": "The lounge" },
    });
    const joined = await joinRoom(bob, "Bob");
    assert.deepEqual(joined.occupants.sort(), [`${ROOM}/Alice`, `${ROOM}/Bob`]);
    assert.ok(codes(parseXml(joined.presence)).includes(110));
    await alice.next((e) => e.name === "presence" && e.attrs.from === `${ROOM}/Bob`, "Bob joining");
    assert.deepEqual(JSON.parse((await alice.command("muc_roster", { room: ROOM }))!).sort(), [
      "Alice",
      "Bob",
    ]);
  });

  test("groupchat messages reach both, with the room's stanza-id", async () => {
    await alice.command("muc_message", { room: ROOM, body: "hello from alice" });
    const atBob = await bob.next(
      (e) =>
        e.name === "message" &&
        e.attrs.from === `${ROOM}/Alice` &&
        e.getChildText("body") === "hello from alice",
      "Alice's message at Bob",
    );
    const atAlice = await alice.next(
      (e) =>
        e.name === "message" &&
        e.attrs.from === `${ROOM}/Alice` &&
        e.getChildText("body") === "hello from alice",
      "Alice's message reflected to her",
    );
    const idOf = (m: Element) => m.getChildren("stanza-id", SID).find((s) => s.attrs.by === ROOM)?.attrs.id;
    assert.ok(idOf(atBob));
    assert.equal(idOf(atBob), idOf(atAlice));
    liveIds.push(idOf(atBob)!);
    await bob.command("muc_message", { room: ROOM, body: "hi alice" });
    const reply = await alice.next(
      (e) => e.name === "message" && e.attrs.from === `${ROOM}/Bob` && e.getChildText("body") === "hi alice",
      "Bob's message at Alice",
    );
    liveIds.push(idOf(reply)!);
  });

  test("a nick change (303) and leaving", async () => {
    await bob.command("presence", { to: `${ROOM}/Robert` });
    const old = await alice.next(
      (e) => e.name === "presence" && e.attrs.from === `${ROOM}/Bob` && e.attrs.type === "unavailable",
      "Bob's old nick going",
    );
    assert.deepEqual(codes(old), [303]);
    assert.equal(old.getChild("x", USER)!.getChild("item")!.attrs.nick, "Robert");
    await alice.next(
      (e) => e.name === "presence" && e.attrs.from === `${ROOM}/Robert` && !e.attrs.type,
      "Robert",
    );
    await bob.next(
      (e) => e.name === "presence" && e.attrs.from === `${ROOM}/Robert` && codes(e).includes(110),
      "Bob's own presence under the new nick",
    );
    assert.deepEqual(JSON.parse((await alice.command("muc_roster", { room: ROOM }))!).sort(), [
      "Alice",
      "Robert",
    ]);
    await bob.command("muc_leave", { room: ROOM, nick: "Robert" });
    await alice.next(
      (e) => e.name === "presence" && e.attrs.from === `${ROOM}/Robert` && e.attrs.type === "unavailable",
      "Robert leaving",
    );
    assert.deepEqual(JSON.parse((await alice.command("muc_roster", { room: ROOM }))!), ["Alice"]);
  });

  test("slixmpp's xep_0313 plugin reads the room archive with the ids seen live", async () => {
    const archived = await roomArchive(bob);
    assert.deepEqual(
      archived.map(([, body]) => body),
      ["hello from alice", "hi alice"],
    );
    assert.deepEqual(
      archived.map(([id]) => id),
      liveIds,
    );
  });

  test("the persistent room survives a restart with its configuration, history and archive", async () => {
    await alice.close();
    await bob.close();
    await server.stop({ keepData: true });
    server = await startServer({
      name: "muc-slixmpp-restart",
      dataDir: server.dataDir,
      removeDataOnStop: true,
    });
    alice = await connectSlix(server, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "phone" });
    await alice.command("presence");
    await bob.command("presence");
    const info = parseXml((await bob.command("disco_info", { to: ROOM }))!);
    const query = info.getChild("query", NS.discoInfo)!;
    const features = query.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(features.includes("muc_persistent"), `features: ${features}`);
    assert.equal(query.getChild("identity")!.attrs.name, "The lounge");
    // Not created again: no 201, and the history read back from the archive.
    const joined = await joinRoom(bob, "Bob", 10);
    assert.ok(!codes(parseXml(joined.presence)).includes(201));
    assert.deepEqual(joined.history, ["hello from alice", "hi alice"]);
    const owner = await joinRoom(alice, "Alice", 0);
    assert.equal(parseXml(owner.presence).getChild("x", USER)!.getChild("item")!.attrs.affiliation, "owner");
    assert.deepEqual(owner.history, []);
    await alice.command("muc_message", { room: ROOM, body: "after the restart" });
    await bob.next(
      (e) => e.name === "message" && e.getChildText("body") === "after the restart",
      "a message after the restart",
    );
    const archived = await roomArchive(bob);
    assert.deepEqual(
      archived.map(([, body]) => body),
      ["hello from alice", "hi alice", "after the restart"],
    );
  });

  test("self-ping (XEP-0410) through slixmpp", async () => {
    const joinedPing = parseXml((await bob.command("ping", { to: `${ROOM}/Bob` }))!);
    assert.equal(joinedPing.attrs.type, "result", joinedPing.toString());
    const stranger = parseXml((await bob.command("ping", { to: `${ROOM}/Nobody` }))!);
    // Not Bob's nick: the ping goes to that occupant, which is not there.
    assert.equal(stranger.attrs.type, "error");
  });

  test("an occupant whose connection drops leaves the room", async () => {
    bob.kill();
    const gone = await alice.next(
      (e) => e.name === "presence" && e.attrs.from === `${ROOM}/Bob` && e.attrs.type === "unavailable",
      "Bob's dropped connection ending his presence in the room",
    );
    assert.equal(gone.getChild("x", USER)!.getChild("item")!.attrs.role, "none");
    assert.deepEqual(JSON.parse((await alice.command("muc_roster", { room: ROOM }))!), ["Alice"]);
  });
});
