/**
 * Another process holds the SQLite file's write lock (a shell, a backup tool, a long command)
 * under a running server. The server's main thread must not stop for it: a ping is answered
 * at once, live chat goes on and is archived once the lock is released, and a write that
 * cannot wait (a message for an offline account) is refused as a temporary error.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { is, NS, xml } from "../helpers/stanza.js";

const PW = "sqlite-lock-pw";
const MAM = "urn:xmpp:mam:2";
const FORWARD = "urn:xmpp:forward:0";
const LOCK_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the SQLite file locked by another process under a running server", () => {
  let server: TestServer;
  const peers: JsPeer[] = [];

  before(async () => {
    server = await startServer({ name: "sqlite-lock" });
    for (const user of ["alice", "bob", "carol"]) await server.addUser(user, PW);
  });
  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    await server?.stop();
  });

  test("pings are answered, live chat goes on and is archived, an offline message is refused (wait)", async () => {
    const alice = await connectJs(server, { user: "alice", password: PW, resource: "desk" });
    const bob = await connectJs(server, { user: "bob", password: PW, resource: "phone" });
    peers.push(alice, bob);
    await bob.send(xml("presence"));
    await alice.send(xml("presence"));

    const blocker = new Database(path.join(server.dataDir, "switchboard.sqlite"));
    blocker.exec("BEGIN IMMEDIATE");
    let locked = true;
    try {
      const lockedAt = Date.now();
      let worstPingMs = 0;
      let n = 0;
      while (Date.now() - lockedAt < LOCK_MS - 500) {
        n++;
        // Chat between online users needs no write but the archive's, which waits.
        await alice.send(
          xml(
            "message",
            { to: "bob@localhost", type: "chat", id: `live-${n}` },
            xml("body", {}, `live ${n}`),
          ),
        );
        await bob.next(is.message({ body: `live ${n}` }), `live message ${n} during the lock`);
        const t0 = Date.now();
        const pong = await alice.iq(
          xml("iq", { type: "get", to: "localhost", id: `ping-${n}` }, xml("ping", { xmlns: NS.ping })),
        );
        worstPingMs = Math.max(worstPingMs, Date.now() - t0);
        assert.equal(pong.attrs.type, "result");
        await sleep(100);
      }
      // The first write that meets the lock waits storage.busyTimeoutMs (250 ms), no more.
      assert.ok(worstPingMs < 1500, `a ping took ${worstPingMs} ms while the file was locked`);

      await alice.send(
        xml("message", { to: "carol@localhost", type: "chat", id: "offline" }, xml("body", {}, "for carol")),
      );
      const refused = await alice.next(
        (el) => el.name === "message" && el.attrs.id === "offline" && el.attrs.type === "error",
        "the offline message refused",
      );
      const error = refused.getChild("error");
      assert.equal(error?.attrs.type, "wait");
      assert.ok(error?.getChild("internal-server-error", NS.stanzas), refused.toString());

      blocker.exec("COMMIT");
      locked = false;

      // Every live message sent during the lock reaches bob's archive, in order, once the
      // lock is gone (the rows held back are tried again within 2 s).
      const sent = Array.from({ length: n }, (_, i) => `live ${i + 1}`);
      let bodies: string[] = [];
      for (let tries = 0; tries < 40 && bodies.length < n; tries++) {
        await sleep(250);
        const queryid = `q${tries}`;
        const reply = await bob.iq(xml("iq", { type: "set" }, xml("query", { xmlns: MAM, queryid })));
        assert.equal(reply.attrs.type, "result", reply.toString());
        bodies = bob.stanzas
          .all()
          .filter((m) => m.name === "message" && m.getChild("result", MAM)?.attrs.queryid === queryid)
          .map(
            (m) =>
              m
                .getChild("result", MAM)!
                .getChild("forwarded", FORWARD)!
                .getChild("message")!
                .getChildText("body")!,
          );
      }
      assert.deepEqual(bodies, sent, "bob's archive holds the messages sent while the file was locked");
    } finally {
      if (locked) blocker.exec("ROLLBACK");
      blocker.close();
    }
  });
});
