/**
 * Graceful shutdown: on SIGTERM every open stream, authenticated or not,
 * receives <system-shutdown/> (RFC 6120 §4.9.3.20) and the process exits with
 * code 0; what was stored (accounts, offline messages) is there after a restart.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import { is, NS, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-shutdown-pw", bob: "bob-shutdown-pw", carol: "carol-shutdown-pw" };

describe("graceful shutdown", { skip: slixSkip }, () => {
  let server: TestServer | undefined;
  let dataDir: string;

  after(async () => {
    if (server?.running) await server.stop();
  });

  test("SIGTERM: <system-shutdown/> to every client, exit code 0", async () => {
    server = await startServer({ name: "shutdown", users: PW });
    dataDir = server.dataDir;
    const alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "home" });
    const bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "work" });
    const raw = await RawConnection.open(server, { label: "unauthenticated raw connection" });
    await raw.openStream(server.domain);
    await alice.send(xml("presence"));
    // Something to find after the restart.
    await alice.send(
      xml("message", { to: "carol@localhost", type: "chat" }, xml("body", {}, "before the restart")),
    );
    await alice.sync();

    const stopping = server.stop({ keepData: true });
    const [a, b, r] = await Promise.all([
      alice.streamErrors.next(() => true, "a stream error at shutdown"),
      bob.streamErrors.next(() => true, "a stream error at shutdown"),
      raw.streamError("at shutdown"),
    ]);
    assert.deepEqual([a, b, r], ["system-shutdown", "system-shutdown", "system-shutdown"]);
    await raw.waitClosed("after <system-shutdown/>");
    await stopping;
    await Promise.all([alice.ended, bob.ended]);
    await bob.close();
  });

  test("after a restart on the same data, accounts and offline messages are still there", async () => {
    server = await startServer({ name: "shutdown", dataDir, removeDataOnStop: true });
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "c" });
    try {
      await carol.send(xml("presence"));
      const m = await carol.next(
        is.message({ body: "before the restart" }),
        "the offline message stored before the restart",
      );
      assert.ok(m.getChild("delay", NS.delay), `no <delay/> on ${m}`);
    } finally {
      await carol.close();
    }
  });
});
