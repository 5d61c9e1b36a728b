/**
 * Group chat across federation: two Switchboard servers on loopback (a.test and b.test, each
 * finding the other, and b.test finding conference.a.test, through `--s2s-route`). A user of
 * b.test joins a room of a.test's group chat service over server-to-server links (Server
 * Dialback, self-signed certificates), exchanges groupchat and private messages with a local
 * occupant, changes nick and leaves; the local occupant sees all of it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LINK_WAIT_MS } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { type Element, is, xml } from "../helpers/stanza.js";

const NET = 100 + Math.floor(Math.random() * 150);
const HOST_A = `127.78.${NET}.1`;
const HOST_B = `127.78.${NET}.2`;
const PW = { alice: "alice-mucfed-pw", bob: "bob-mucfed-pw" };
const MUC = "http://jabber.org/protocol/muc";
const USER = `${MUC}#user`;
const ROOM = "federated@conference.a.test";

const codes = (el: Element) =>
  (el.getChild("x", USER)?.getChildren("status") ?? []).map((s) => Number(s.attrs.code));
const fromRoom = (nick: string, type?: string) =>
  is.presence({ from: `${ROOM}/${nick}`, ...(type ? { type } : {}) });

describe("a remote user in a room over federation", () => {
  let a: TestServer;
  let b: TestServer;
  let alice: JsPeer;
  let bob: JsPeer;

  before(async () => {
    const [s2sA, s2sB] = (await freePorts(2)) as [number, number];
    const common = (s2s: number) => ["--s2s-port", String(s2s), "--log-level", "info"];
    a = await startServer({
      name: "muc-federation-a",
      domain: "a.test",
      host: HOST_A,
      users: { alice: PW.alice },
      config: { http: { tls: "off" } },
      extraArgs: [...common(s2sA), "--s2s-route", `b.test=${HOST_B}:${s2sB}`],
    });
    b = await startServer({
      name: "muc-federation-b",
      domain: "b.test",
      host: HOST_B,
      users: { bob: PW.bob },
      config: { http: { tls: "off" } },
      extraArgs: [
        ...common(s2sB),
        "--s2s-route",
        `a.test=${HOST_A}:${s2sA}`,
        "--s2s-route",
        `conference.a.test=${HOST_A}:${s2sA}`,
      ],
    });
    alice = await connectJs(a, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectJs(b, { user: "bob", password: PW.bob, resource: "phone" });
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await a?.stop();
    await b?.stop();
  });

  test("the local owner creates the room; the remote user joins, talks, changes nick and leaves", async () => {
    await alice.send(xml("presence", { to: `${ROOM}/Alice` }, xml("x", { xmlns: MUC })));
    const created = await alice.next(
      (e) => fromRoom("Alice")(e) && codes(e).includes(110),
      "Alice in the room",
    );
    assert.ok(codes(created).includes(201));
    const configured = await alice.iq(
      xml(
        "iq",
        { to: ROOM, type: "set" },
        xml("query", { xmlns: `${MUC}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" })),
      ),
    );
    assert.equal(configured.attrs.type, "result");

    // Remote users may not create rooms here (local accounts only by default).
    await bob.send(xml("presence", { to: "elsewhere@conference.a.test/Bob" }, xml("x", { xmlns: MUC })));
    const refused = await bob.next(
      is.presence({ from: "elsewhere@conference.a.test/Bob", type: "error" }),
      "the refusal to create a room",
      LINK_WAIT_MS,
    );
    assert.ok(refused.getChild("error")?.getChild("not-allowed"), refused.toString());

    await bob.send(xml("presence", { to: `${ROOM}/Bob` }, xml("x", { xmlns: MUC })));
    await bob.next(fromRoom("Alice"), "Alice's presence, over federation", LINK_WAIT_MS);
    const self = await bob.next((e) => fromRoom("Bob")(e) && codes(e).includes(110), "Bob's own presence");
    assert.equal(self.getChild("x", USER)!.getChild("item")!.attrs.role, "participant");
    await bob.next(
      (e) => e.name === "message" && e.attrs.from === ROOM && !!e.getChild("subject"),
      "the subject",
    );
    const seen = await alice.next(fromRoom("Bob"), "Bob joining");
    assert.equal(
      seen.getChild("x", USER)!.getChild("item")!.attrs.jid,
      "bob@b.test/phone",
      "a moderator sees the real JID",
    );

    await bob.send(xml("message", { to: ROOM, type: "groupchat" }, xml("body", {}, "hello from b.test")));
    await alice.next(
      is.message({ from: `${ROOM}/Bob`, body: "hello from b.test", type: "groupchat" }),
      "Bob's message",
    );
    await bob.next(
      is.message({ from: `${ROOM}/Bob`, body: "hello from b.test", type: "groupchat" }),
      "its reflection",
    );
    await alice.send(xml("message", { to: ROOM, type: "groupchat" }, xml("body", {}, "welcome")));
    await bob.next(
      is.message({ from: `${ROOM}/Alice`, body: "welcome", type: "groupchat" }),
      "Alice's message",
      LINK_WAIT_MS,
    );
    await alice.send(xml("message", { to: `${ROOM}/Bob`, type: "chat" }, xml("body", {}, "just for you")));
    await bob.next(
      is.message({ from: `${ROOM}/Alice`, body: "just for you", type: "chat" }),
      "a private message",
    );

    await bob.send(xml("presence", { to: `${ROOM}/Robert` }));
    const renamed = await alice.next(fromRoom("Bob", "unavailable"), "Bob's nick change");
    assert.deepEqual(codes(renamed), [303]);
    await alice.next(fromRoom("Robert"), "Robert");
    await bob.send(xml("presence", { to: `${ROOM}/Robert`, type: "unavailable" }));
    await alice.next(fromRoom("Robert", "unavailable"), "Robert leaving");
    await bob.next(fromRoom("Robert", "unavailable"), "Robert's own unavailable presence", LINK_WAIT_MS);
  });
});
