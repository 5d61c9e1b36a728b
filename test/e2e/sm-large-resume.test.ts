/**
 * A resumption (XEP-0198) whose unacknowledged queue is larger than the send buffer
 * (limits.maxSendBufferBytes, here 1 MiB): the queue is written again as fast as the client
 * reads it, whole and in order, a stanza sent meanwhile comes after it, and the resumed
 * client is not cut off as a client that does not read.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { SmRaw } from "../helpers/sm-raw.js";
import { xml } from "../helpers/stanza.js";

const PW = { alice: "alice-large-resume-pw", bob: "bob-large-resume-pw" };
const COUNT = 40;
/** 40 × 100 KB = 4 MB unacknowledged: four times the send buffer. */
const body = (i: number) => `big-${i} ${"z".repeat(100_000)}`;

describe("resuming with an unacknowledged queue larger than the send buffer", () => {
  let server: TestServer;
  let alice: JsPeer;

  before(async () => {
    server = await startServer({
      name: "sm-large-resume",
      users: PW,
      // Alice writes as fast as she can; a reader may have 1 MiB waiting.
      config: { limits: { bytesPerSecond: 0, maxSendBufferBytes: 1024 * 1024 } },
      extraArgs: ["--log-level", "info"],
    });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "desk" });
  });
  after(async () => {
    await alice?.close();
    await server?.stop();
  });

  test("the whole queue, in order, then what was sent meanwhile; the client stays connected", async () => {
    const first = await SmRaw.login(server, "bob", PW.bob, "phone");
    const enabled = await first.enable({ resume: true });
    await first.sync();
    const handled = first.handled;
    first.cut();
    // The server notices the cut and keeps the session; what comes now waits for the client.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < COUNT; i++)
      await alice.send(xml("message", { to: "bob@localhost/phone", type: "chat" }, xml("body", {}, body(i))));
    await alice.sync();

    const second = await SmRaw.authenticate(server, "bob", PW.bob);
    const { resumed } = await second.resume(enabled.id!, handled);
    assert.ok(resumed, "resumed");
    await alice.send(
      xml("message", { to: "bob@localhost/phone", type: "chat" }, xml("body", {}, "sent during the resend")),
    );
    await second.raw.waitFor(/sent during the resend/, "the message sent during the resend", 30_000);
    const text = second.raw.received;
    let at = -1;
    for (let i = 0; i < COUNT; i++) {
      const next = text.indexOf(`big-${i} `);
      assert.ok(next > at, `message ${i} again, after message ${i - 1}`);
      assert.equal(second.count(`big-${i} `), 1, `message ${i} once`);
      at = next;
    }
    assert.ok(text.indexOf("sent during the resend") > at, "the new message after the queue");
    assert.equal(second.raw.closed, false, "the resumed client is still connected");
    assert.doesNotMatch(server.logTail(200), /does not read its stream/);
    second.ack();
    await second.closeCleanly();
  });
});
