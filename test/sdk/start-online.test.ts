/**
 * startOnline: @xmpp/client's start() can miss the server's stream header under load and
 * time out on a client that is online (no stream restart after SASL2 to recover).
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import type { Client, Jid } from "@xmpp/client";
import { startOnline } from "../../sdk/start-online.js";

const jid = { toString: () => "alice@example.net/r1" } as Jid;

function fakeClient(start: (c: EventEmitter) => Promise<Jid>): Client {
  const c = new EventEmitter() as unknown as Client;
  c.start = () => start(c as unknown as EventEmitter);
  return c;
}

test("resolves when the client goes online, even if start() is still waiting", {
  timeout: 5000,
}, async () => {
  let rejectStart: (err: Error) => void = () => undefined;
  const client = fakeClient(
    (c) =>
      new Promise<Jid>((_resolve, reject) => {
        rejectStart = reject;
        setImmediate(() => c.emit("online", jid));
      }),
  );
  assert.equal(await startOnline(client), jid);
  rejectStart(new Error("TimeoutError")); // the late rejection is absorbed
  assert.equal(client.listenerCount("online"), 0, "no listener left behind");
});

test("resolves with start()'s JID when start() resolves first", async () => {
  const client = fakeClient(async () => jid);
  assert.equal(await startOnline(client), jid);
  assert.equal(client.listenerCount("online"), 0);
});

test("rejects when start() fails before the client is online", async () => {
  const client = fakeClient(async () => {
    throw new Error("SASL: not-authorized");
  });
  await assert.rejects(startOnline(client), /not-authorized/);
  assert.equal(client.listenerCount("online"), 0);
});
