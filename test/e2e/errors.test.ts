/**
 * Stanza errors the server owes its clients: unknown accounts (RFC 6121
 * §8.5.1), unavailable resources (§8.5.3.2), groupchat to a bare JID
 * (§8.5.2.1.1), malformed addresses (RFC 6120 §8.3.3.8), unsupported IQs
 * (RFC 6120 §8.4) and forged 'from' addresses (RFC 6120 §8.1.2.1).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, newId, stanzaError, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-errors-pw", bob: "bob-errors-pw", carol: "carol-errors-pw" };

function ping(to: string): Element {
  return xml("iq", { type: "get", to, id: newId("ping") }, xml("ping", { xmlns: NS.ping }));
}

function assertError(reply: Element, condition: string, type?: string): void {
  const err = stanzaError(reply);
  assert.ok(err, `expected a <${condition}/> error, got ${reply}`);
  assert.equal(err.condition, condition, `error condition in ${reply}`);
  if (type) assert.equal(err.type, type, `error type in ${reply}`);
}

describe("stanza errors", { skip: slixSkip }, () => {
  let server: TestServer;
  let alice: JsPeer;
  let bob: SlixPeer;

  before(async () => {
    server = await startServer({ name: "errors", users: PW });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "home" });
    bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work" });
    await alice.send(xml("presence"));
    await bob.command("presence");
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await server.stop();
  });

  test("message to an account that does not exist → service-unavailable (@xmpp/client)", async () => {
    const msg = xml(
      "message",
      { to: "nobody@localhost", type: "chat", id: newId("m") },
      xml("body", {}, "anyone?"),
    );
    await alice.send(msg);
    const reply = await alice.next(
      (el) => el.name === "message" && el.attrs.id === msg.attrs.id,
      "the error bounced for a message to nobody@localhost",
    );
    assertError(reply, "service-unavailable", "cancel");
    assert.equal(
      reply.attrs.from,
      "nobody@localhost",
      "the error comes from the address the message was sent to",
    );
  });

  test("message to an account that does not exist → service-unavailable (slixmpp)", async () => {
    await bob.command("message", { to: "ghost@localhost", body: "boo", msg_id: "ghost-1" });
    const reply = await bob.next(
      (el) => el.name === "message" && el.attrs.id === "ghost-1",
      "the error bounced for a message to ghost@localhost",
    );
    assertError(reply, "service-unavailable");
  });

  test("IQ to an account that does not exist → service-unavailable (bare and full JID)", async () => {
    assertError(await alice.iq(ping("nobody@localhost")), "service-unavailable", "cancel");
    assertError(await alice.iq(ping("nobody@localhost/res")), "service-unavailable", "cancel");
    assertError(await bob.iq(ping("nobody@localhost")), "service-unavailable");
  });

  test("IQ to an unavailable resource of an existing account → service-unavailable (RFC 6121 §8.5.3.2.3)", async () => {
    const reply = await bob.iq(ping("alice@localhost/not-connected"));
    assertError(reply, "service-unavailable");
    assert.equal(reply.attrs.from, "alice@localhost/not-connected");
  });

  test("presence to an account that does not exist is silently ignored (RFC 6121 §8.5.1)", async () => {
    await alice.send(xml("presence", { to: "nobody@localhost" }));
    await alice.none(
      (el) => el.attrs.type === "error" && el.attrs.from?.startsWith("nobody@") === true,
      "an error for directed presence to nobody@localhost",
    );
  });

  test("groupchat message to a bare JID → service-unavailable, not delivered (RFC 6121 §8.5.2.1.1)", async () => {
    const msg = xml(
      "message",
      { to: "bob@localhost", type: "groupchat", id: newId("gc") },
      xml("body", {}, "not a room"),
    );
    await alice.send(msg);
    const reply = await alice.next(
      (el) => el.name === "message" && el.attrs.id === msg.attrs.id,
      "the groupchat error",
    );
    assertError(reply, "service-unavailable");
    await bob.none(is.message({ body: "not a room" }), "the groupchat message");
  });

  // RFC 7622: empty localpart, empty domainpart, empty resourcepart, a prohibited character.
  for (const bad of ["@localhost", "alice@", "alice@localhost/", 'a"b@localhost']) {
    test(`malformed 'to' ${JSON.stringify(bad)} → jid-malformed (RFC 6120 §8.3.3.8)`, async () => {
      // A raw connection: @xmpp/client can neither build such stanzas nor parse replies that echo the address.
      const raw = await RawConnection.open(server, { label: `carol sending to ${JSON.stringify(bad)}` });
      try {
        await raw.login(server, "carol", PW.carol, "raw");
        const to = bad.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
        const iqId = newId("badiq");
        raw.write(`<iq type="get" to="${to}" id="${iqId}"><ping xmlns="${NS.ping}"/></iq>`);
        assertError(
          await raw.stanzaWithId("iq", iqId, `the error for an IQ to ${JSON.stringify(bad)}`),
          "jid-malformed",
          "modify",
        );
        const msgId = newId("badmsg");
        raw.write(`<message type="chat" to="${to}" id="${msgId}"><body>x</body></message>`);
        const msgReply = await raw.stanzaWithId(
          "message",
          msgId,
          `the error for a message to ${JSON.stringify(bad)}`,
        );
        assertError(msgReply, "jid-malformed", "modify");
      } finally {
        raw.destroy();
      }
    });
  }

  test("IQ to the server in an unsupported namespace → service-unavailable (RFC 6120 §8.4)", async () => {
    const reply = await alice.iq(
      xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "urn:example:nothing" })),
    );
    assertError(reply, "service-unavailable", "cancel");
  });

  test("IQ get with two payload elements → bad-request (RFC 6120 §8.2.3)", async () => {
    const reply = await alice.iq(
      xml(
        "iq",
        { type: "get", to: "localhost" },
        xml("ping", { xmlns: NS.ping }),
        xml("query", { xmlns: NS.version }),
      ),
    );
    assertError(reply, "bad-request", "modify");
  });

  test("a forged 'from' is never delivered as is (RFC 6120 §8.1.2.1)", async () => {
    const forged = xml(
      "message",
      { to: bob.jid, from: "mallory@localhost/evil", type: "chat" },
      xml("body", {}, "trust me"),
    );
    await alice.send(forged);
    // The server either rewrites 'from' to alice's full JID or closes alice's stream with <invalid-from/>.
    await bob.none(
      (el) => el.attrs.from?.startsWith("mallory@") === true,
      "a stanza from the forged address",
      1500,
    );
    const delivered = bob.stanzas.all().find((el) => el.getChildText("body") === "trust me");
    if (delivered) {
      assert.equal(delivered.attrs.from, alice.jid);
    } else {
      assert.deepEqual(
        alice.streamErrors.all(),
        ["invalid-from"],
        "the message was neither delivered with alice's address nor refused with <invalid-from/>",
      );
      alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "home" });
    }
  });
});
