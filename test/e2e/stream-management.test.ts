/**
 * Stream management (XEP-0198) against the real server, with a client that speaks it by
 * hand (exact `h` values, <failed/> conditions, a connection cut at a chosen moment):
 * negotiation and its errors, acknowledgements and their accounting, resumption after a
 * cut (what was sent meanwhile arrives exactly once), the old stream replaced with
 * `conflict`, and what becomes of unacknowledged stanzas when a session ends without
 * resumption: messages to another resource or to offline storage with the stamp of their
 * first delivery, IQ requests answered with an error. Offline messages leave storage only
 * when acknowledged; without stream management the same drop loses them (measured).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { attributes, SmRaw } from "../helpers/sm-raw.js";

const PW = { alice: "alice-sm-pw", bob: "bob-sm-pw", carol: "carol-sm-pw", dave: "dave-sm-pw" };

function chat(to: string, body: string, id = body): string {
  return `<message to='${to}' type='chat' id='${id}'><body>${body}</body></message>`;
}

/** Waits until `cond` holds (polling), or fails with `what`. */
async function eventually(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The delay stamp of the message carrying `body` in `text`, in ms. */
function delayStampOf(text: string, body: string): { from: string; stamp: number } | undefined {
  const m = new RegExp(
    `<message\\b[^>]*>(?:(?!</message>)[\\s\\S])*?<body>${body}</body>[\\s\\S]*?</message>`,
  ).exec(text);
  if (!m) return undefined;
  const d = /<delay\b[^>]*>/.exec(m[0]);
  if (!d) return undefined;
  const a = attributes(d[0]);
  return { from: a.from ?? "", stamp: Date.parse(a.stamp ?? "") };
}

describe("stream management (XEP-0198), raw client", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: "stream-management", users: PW });
  });
  after(async () => {
    await server?.stop();
  });

  test("<sm/> is offered after authentication; <enable/> before binding and a second <enable/> fail with unexpected-request", async () => {
    const c = await SmRaw.authenticate(server, "alice", PW.alice);
    try {
      assert.match(c.features, /<sm xmlns=["']urn:xmpp:sm:3["']\/>/);
      c.raw.write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
      const early = await c.raw.waitFor(/<failed\b[\s\S]*?<\/failed>/, "<failed/> before binding");
      assert.match(early[0], /<unexpected-request xmlns=["']urn:ietf:params:xml:ns:xmpp-stanzas["']/);
      await c.bind("negotiation");
      const enabled = await c.enable({ resume: true });
      assert.equal(enabled.resume, "true");
      assert.ok(enabled.id && enabled.id.length >= 16, `an opaque resumption id: ${enabled.id}`);
      assert.equal(enabled.max, "300", "the server's resumption timeout (default 300 s)");
      c.raw.write("<enable xmlns='urn:xmpp:sm:3'/>");
      const twice = await c.raw.waitFor(/<failed\b[\s\S]*?<\/failed>/, "<failed/> on a second <enable/>");
      assert.match(twice[0], /<unexpected-request /);
      // The stream is still usable.
      assert.equal(await c.askAck(), 0);
    } finally {
      c.cut();
    }
  });

  test("a client's smaller 'max' is honoured; <enable/> without resume gets no id", async () => {
    const a = await SmRaw.login(server, "alice", PW.alice, "max", { presence: false });
    const b = await SmRaw.login(server, "bob", PW.bob, "noresume", { presence: false });
    try {
      const enabled = await a.enable({ resume: true, max: 42 });
      assert.equal(enabled.max, "42");
      const plain = await b.enable();
      assert.equal(plain.id, undefined);
      assert.equal(plain.resume, undefined);
    } finally {
      a.cut();
      b.cut();
    }
  });

  test("h counts the client's stanzas; the server asks for acks and rejects an h higher than what it sent", async () => {
    const c = await SmRaw.login(server, "alice", PW.alice, "counting", { presence: false });
    try {
      await c.enable();
      for (let i = 1; i <= 3; i++)
        c.raw.write(`<iq type='get' id='ping${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      assert.equal(await c.askAck(), 3, "three IQs received");
      // The three results are stanzas too: the server wants them acknowledged.
      await c.request();
      await eventually(() => c.handled === 3, "three results counted by the client");
      c.ack(3);
      c.ack(4);
      const condition = await c.raw.streamError("h above what was sent");
      assert.equal(condition, "undefined-condition");
      assert.match(
        c.raw.received,
        /<handled-count-too-high xmlns=["']urn:xmpp:sm:3["'] h=["']4["'] send-count=["']3["']\/>/,
      );
    } finally {
      c.cut();
    }
  });

  test("an h behind one already acknowledged is ignored: the stream stays and counting goes on", async () => {
    const c = await SmRaw.login(server, "alice", PW.alice, "stale-h", { presence: false });
    try {
      await c.enable();
      for (let i = 1; i <= 2; i++)
        c.raw.write(`<iq type='get' id='stale${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await eventually(() => c.handled === 2, "two results counted by the client");
      // @xmpp/client's order when results came with <enabled/>: its count restarts after them.
      c.ack(2);
      c.ack(0);
      c.raw.write(`<iq type='get' id='stale3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      assert.equal(await c.askAck(), 3, "the stream is still open and counts the third IQ");
      await eventually(() => c.handled === 3, "the third result");
      c.ack(3);
      assert.equal(await c.askAck(), 3);
      assert.doesNotMatch(c.raw.received, /stream:error/);
    } finally {
      c.cut();
    }
  });

  test("an <a/> sent after the client's closing (answering an <r/> that crossed it) gets a clean close", async () => {
    const c = await SmRaw.login(server, "alice", PW.alice, "late-a", { presence: false });
    try {
      await c.enable();
      c.raw.write(`<iq type='get' id='late1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await eventually(() => c.handled === 1, "the result counted by the client");
      c.raw.write(`</stream:stream><a xmlns='urn:xmpp:sm:3' h='1'/>`);
      await c.raw.waitFor(/<\/stream:stream>/, "the server's closing");
      await c.raw.waitClosed("the connection closed");
      assert.doesNotMatch(c.raw.received, /stream:error/);
    } finally {
      c.cut();
    }
  });

  test("resuming an unknown id fails with item-not-found, and the client can still bind", async () => {
    const c = await SmRaw.authenticate(server, "alice", PW.alice);
    try {
      const r = await c.resume("no-such-session", 0);
      assert.match(r.failed ?? "", /<item-not-found xmlns=["']urn:ietf:params:xml:ns:xmpp-stanzas["']/);
      assert.doesNotMatch(r.failed ?? "", /\bh=/, "no h for an id the server never gave");
      assert.equal(await c.bind("after-failed-resume"), "alice@localhost/after-failed-resume");
    } finally {
      c.cut();
    }
  });

  test("after a cut, <resume/> within the timeout restores the session; a message sent meanwhile arrives exactly once", async () => {
    const alice = await SmRaw.login(server, "alice", PW.alice, "phone");
    const bob = await SmRaw.login(server, "bob", PW.bob, "desk");
    try {
      const { id } = await alice.enable({ resume: true });
      bob.raw.write(chat("alice@localhost/phone", "before-the-cut"));
      await alice.raw.waitFor(/before-the-cut/, "the first message");
      alice.ack();
      const hBeforeCut = alice.handled;
      // One more, not acknowledged: the server must send it again after the resumption.
      bob.raw.write(chat("alice@localhost/phone", "read-not-acked"));
      await alice.raw.waitFor(/read-not-acked/, "the second message");
      // Sent three stanzas since <enable/>: the server's h must say so after the resumption.
      alice.raw.write("<iq type='get' id='before-cut' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await alice.raw.waitFor(/id=["']before-cut["']/, "the ping result");
      alice.cut();
      bob.raw.write(chat("alice@localhost/phone", "while-away"));
      // bob's own stream: make sure his message was routed before alice comes back.
      await bob.sync();

      const back = await SmRaw.authenticate(server, "alice", PW.alice, "alice/phone again");
      try {
        // The client tells what it handled: only the first message.
        const r = await back.resume(id!, hBeforeCut);
        assert.ok(r.resumed, `resumed: ${r.failed}`);
        assert.equal(r.resumed.previd, id);
        assert.equal(r.resumed.h, "1", "the server received one stanza (the ping) since <enable/>");
        await back.raw.waitFor(/while-away/, "the message sent while the connection was down");
        await new Promise((res) => setTimeout(res, 300));
        assert.equal(back.count("<body>while-away</body>"), 1, "exactly once");
        assert.equal(back.count("<body>read-not-acked</body>"), 1, "the unacknowledged one, sent again");
        assert.equal(back.count("<body>before-the-cut</body>"), 0, "the acknowledged one is not sent again");
        // Still the same session: its resource and presence are kept, stanzas flow.
        back.raw.write("<iq type='get' id='after-resume' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await back.raw.waitFor(/id=["']after-resume["']/, "a ping on the resumed stream");
        bob.raw.write(chat("alice@localhost", "to-the-bare-jid"));
        await back.raw.waitFor(/to-the-bare-jid/, "bare-JID delivery still reaches the resumed session");
        back.ack();
      } finally {
        await back.closeCleanly();
      }
    } finally {
      alice.cut();
      bob.cut();
    }
  });

  test("resuming while the old connection is still open closes it with conflict", async () => {
    const first = await SmRaw.login(server, "carol", PW.carol, "tablet");
    try {
      const { id } = await first.enable({ resume: true });
      const second = await SmRaw.authenticate(server, "carol", PW.carol);
      try {
        const r = await second.resume(id!, 0);
        assert.ok(r.resumed, `resumed: ${r.failed}`);
        assert.equal(await first.raw.streamError("replaced by the resumed stream"), "conflict");
        assert.equal(await second.askAck(), 0);
      } finally {
        await second.closeCleanly();
      }
    } finally {
      first.cut();
    }
  });

  test("another account cannot resume a session; an id that ended answers with the h it reached", async () => {
    const carol = await SmRaw.login(server, "carol", PW.carol, "laptop", { presence: false });
    const { id } = await carol.enable({ resume: true });
    carol.raw.write("<iq type='get' id='c1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert.equal(await carol.askAck(), 1);
    const thief = await SmRaw.authenticate(server, "dave", PW.dave);
    try {
      const r = await thief.resume(id!, 0);
      assert.match(r.failed ?? "", /<item-not-found /);
      assert.doesNotMatch(r.failed ?? "", /\bh=/, "nothing about another account's session");
    } finally {
      thief.cut();
    }
    await carol.closeCleanly();
    const again = await SmRaw.authenticate(server, "carol", PW.carol);
    try {
      const r = await again.resume(id!, 0);
      assert.match(r.failed ?? "", /<item-not-found /);
      assert.equal(
        attributes(/<failed\b[^>]*>/.exec(r.failed!)![0]).h,
        "1",
        "the h the ended session reached",
      );
    } finally {
      again.cut();
    }
  });

  test("a clean close with unacknowledged messages puts them in offline storage, stamped with their first delivery", async () => {
    const alice = await SmRaw.login(server, "alice", PW.alice, "closing");
    const bob = await SmRaw.login(server, "bob", PW.bob, "sender-1");
    try {
      await alice.enable({ resume: true });
      const sentAt = Date.now();
      bob.raw.write(chat("alice@localhost/closing", "unacked-at-close"));
      await alice.raw.waitFor(/unacked-at-close/, "the message");
      // Long enough that the stamp of the first delivery differs from the time it was stored.
      await new Promise((r) => setTimeout(r, 2200));
      await alice.closeCleanly();
      const later = await SmRaw.login(server, "alice", PW.alice, "later");
      try {
        await later.raw.waitFor(/unacked-at-close/, "the message from offline storage");
        const delay = delayStampOf(later.raw.received, "unacked-at-close");
        assert.ok(delay, "it carries a delay");
        assert.equal(delay.from, "localhost");
        assert.ok(
          delay.stamp <= sentAt + 1000 && delay.stamp >= sentAt - 1000,
          `stamped with the first delivery (${new Date(delay.stamp).toISOString()}), not the close (${new Date(sentAt + 2200).toISOString()})`,
        );
        assert.equal(later.count("<body>unacked-at-close</body>"), 1);
      } finally {
        await later.closeCleanly();
      }
    } finally {
      alice.cut();
      bob.cut();
    }
  });

  test("a session that is not resumed in time hands its unacknowledged messages to the account's other resource", async () => {
    const desk = await SmRaw.login(server, "dave", PW.dave, "desk");
    const phone = await SmRaw.login(server, "dave", PW.dave, "phone");
    const bob = await SmRaw.login(server, "bob", PW.bob, "sender-2");
    try {
      await phone.enable({ resume: true, max: 1 });
      bob.raw.write(chat("dave@localhost/phone", "for-the-phone"));
      await phone.raw.waitFor(/for-the-phone/, "the message on the phone");
      phone.cut();
      await desk.raw.waitFor(/for-the-phone/, "the message re-routed to the desk after the timeout", 15_000);
      const delay = delayStampOf(desk.raw.received, "for-the-phone");
      assert.equal(delay?.from, "localhost", "marked as delayed by the server (not a silent duplicate)");
      assert.equal(desk.count("<body>for-the-phone</body>"), 1);
    } finally {
      desk.cut();
      phone.cut();
      bob.cut();
    }
  });

  test("an unacknowledged IQ request is answered with an error when the session ends", async () => {
    const alice = await SmRaw.login(server, "alice", PW.alice, "iq-target");
    const bob = await SmRaw.login(server, "bob", PW.bob, "iq-sender");
    try {
      await alice.enable();
      bob.raw.write(
        "<iq type='get' id='v1' to='alice@localhost/iq-target'><query xmlns='jabber:iq:version'/></iq>",
      );
      await alice.raw.waitFor(/id=["']v1["']/, "the request");
      await alice.closeCleanly();
      const reply = await bob.raw.stanzaWithId("iq", "v1", "an error for the unanswered request");
      assert.equal(reply.attrs.type, "error");
      assert.ok(reply.getChild("error")?.getChild("service-unavailable"), reply.toString());
    } finally {
      alice.cut();
      bob.cut();
    }
  });

  test("offline messages leave storage only when acknowledged: a drop before the ack loses nothing (without stream management all are lost)", async () => {
    const N = 5;
    const sender = await SmRaw.login(server, "bob", PW.bob, "flood");
    try {
      // Baseline: no stream management. The messages are written, the client drops before reading.
      for (let i = 0; i < N; i++) sender.raw.write(chat("carol@localhost", `plain-${i}`));
      await sender.sync();
      const plain = await SmRaw.login(server, "carol", PW.carol, "plain");
      await plain.raw.waitFor(new RegExp(`plain-${N - 1}`), "the offline messages");
      plain.cut();
      const afterPlain = await SmRaw.login(server, "carol", PW.carol, "check-1");
      afterPlain.raw.write("<iq type='get' id='sync1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await afterPlain.raw.waitFor(/id=["']sync1["']/, "a round trip after the flush");
      const redeliveredPlain = Array.from({ length: N }, (_, i) => afterPlain.count(`plain-${i}<`)).filter(
        (n) => n > 0,
      ).length;
      await afterPlain.closeCleanly();

      // With stream management: enabled before the initial presence, dropped before any ack.
      for (let i = 0; i < N; i++) sender.raw.write(chat("carol@localhost", `sm-${i}`));
      await sender.sync();
      const sm = await SmRaw.login(server, "carol", PW.carol, "sm", { presence: false });
      await sm.enable();
      sm.raw.write("<presence/>");
      await sm.raw.waitFor(new RegExp(`sm-${N - 1}`), "the offline messages");
      sm.cut();
      const afterSm = await SmRaw.login(server, "carol", PW.carol, "check-2", { presence: false });
      await afterSm.enable();
      afterSm.raw.write("<presence/>");
      await afterSm.raw.waitFor(new RegExp(`sm-${N - 1}`), "the offline messages, again");
      const redeliveredSm = Array.from({ length: N }, (_, i) => afterSm.count(`sm-${i}<`)).filter(
        (n) => n > 0,
      ).length;
      console.log(
        `# offline flush, client dropped before acknowledging: without SM ${N - redeliveredPlain}/${N} lost, with SM ${N - redeliveredSm}/${N} lost`,
      );
      assert.equal(
        redeliveredPlain,
        0,
        "without stream management, written means delivered: none comes back",
      );
      assert.equal(redeliveredSm, N, "with stream management, every unacknowledged message comes back");
      // Acknowledged this time: storage is empty afterwards.
      afterSm.ack();
      assert.equal(await afterSm.askAck(), 1, "the server received the presence");
      await new Promise((r) => setTimeout(r, 300));
      await afterSm.closeCleanly();
      const last = await SmRaw.login(server, "carol", PW.carol, "check-3");
      last.raw.write("<iq type='get' id='sync3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await last.raw.waitFor(/id=["']sync3["']/, "a round trip after the flush");
      assert.equal(last.count("<body>sm-"), 0, "acknowledged messages left storage");
      await last.closeCleanly();
    } finally {
      sender.cut();
    }
  });
});

describe("stream management: a client that never acknowledges", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      name: "stream-management-limit",
      users: PW,
      config: { streamManagement: { maxUnackedStanzas: 10 } },
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("more unacknowledged stanzas than maxUnackedStanzas end the session with resource-constraint; its messages go to offline storage", async () => {
    const alice = await SmRaw.login(server, "alice", PW.alice, "silent", { presence: false });
    const bob = await RawConnection.open(server, { label: "bob (sender)" });
    try {
      await alice.enable({ resume: true });
      await bob.login(server, "bob", PW.bob, "sender");
      for (let i = 0; i < 11; i++) bob.write(chat("alice@localhost/silent", `flood-${i}`));
      assert.equal(await alice.raw.streamError("too many unacknowledged stanzas"), "resource-constraint");
      const later = await SmRaw.login(server, "alice", PW.alice, "later");
      await later.raw.waitFor(/flood-10</, "the last message from offline storage");
      for (let i = 0; i <= 10; i++) assert.equal(later.count(`<body>flood-${i}</body>`), 1, `flood-${i}`);
      await later.closeCleanly();
    } finally {
      alice.cut();
      bob.destroy();
    }
  });
});

describe("stream management (XEP-0198): a request left unanswered", () => {
  let server: TestServer;
  const ACK_TIMEOUT_S = 1;
  before(async () => {
    server = await startServer({
      name: "stream-management-ack-timeout",
      users: PW,
      config: { streamManagement: { ackTimeoutSeconds: ACK_TIMEOUT_S } },
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("no <a/> within ackTimeoutSeconds: the connection is dropped, the session hibernates and resumes with what it missed", async () => {
    const alice = await SmRaw.login(server, "alice", PW.alice, "tunnel");
    const bob = await SmRaw.login(server, "bob", PW.bob, "desk");
    try {
      const { id } = await alice.enable({ resume: true });
      bob.raw.write(chat("alice@localhost/tunnel", "into-the-tunnel"));
      await alice.raw.waitFor(/into-the-tunnel/, "the message");
      await alice.request();
      const requested = Date.now();
      // Alice's client reads nothing more and answers nothing (a dead network, as seen by the server).
      await alice.raw.waitClosed("the server drops the connection whose client does not answer <r/>");
      const after = alice.raw.closedTime - requested;
      assert.ok(after >= ACK_TIMEOUT_S * 1000 - 100, `dropped after the timeout, not before (${after} ms)`);
      assert.ok(after < ACK_TIMEOUT_S * 1000 + 3000, `dropped soon after the timeout (${after} ms)`);
      assert.doesNotMatch(alice.raw.received, /<stream:error/, "dropped, not closed with an error");
      // The session was kept: a message sent now waits for the resumption.
      bob.raw.write(chat("alice@localhost/tunnel", "while-dropped"));
      await bob.sync();
      const back = await SmRaw.authenticate(server, "alice", PW.alice, "alice back");
      try {
        const r = await back.resume(id!, 0);
        assert.ok(r.resumed, `resumed: ${r.failed}`);
        await back.raw.waitFor(/into-the-tunnel/, "the unacknowledged message, again");
        await back.raw.waitFor(/while-dropped/, "the message sent while the session hibernated");
        back.ack();
        assert.equal(back.count("<body>into-the-tunnel</body>"), 1);
        assert.equal(back.count("<body>while-dropped</body>"), 1);
      } finally {
        back.cut();
      }
    } finally {
      alice.cut();
      bob.cut();
    }
  });

  test("a client that answers <r/> stays connected past the timeout", async () => {
    const carol = await SmRaw.login(server, "carol", PW.carol, "steady");
    const dave = await SmRaw.login(server, "dave", PW.dave, "desk");
    try {
      await carol.enable({ resume: true });
      for (let i = 0; i < 3; i++) {
        dave.raw.write(chat("carol@localhost/steady", `steady-${i}`));
        await carol.raw.waitFor(new RegExp(`steady-${i}`), `message ${i}`);
        await carol.request();
        carol.ack();
        await new Promise((r) => setTimeout(r, ACK_TIMEOUT_S * 1000));
      }
      assert.equal(carol.raw.closed, false, "still connected");
      await carol.sync();
    } finally {
      carol.cut();
      dave.cut();
    }
  });
});
