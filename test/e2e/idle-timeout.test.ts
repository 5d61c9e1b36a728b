/**
 * The idle timeout of client streams (`limits.idleTimeoutSeconds`): an authenticated stream
 * with no traffic either way for that long is dropped as a lost connection; whitespace
 * keepalives from the client keep it, and so does a stream the server keeps writing to
 * (Node's socket timeout counted both directions; the shared sweep that replaced it must too).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";

const IDLE_S = 2;
/** The sweep finds a quiet stream at most two one-second sweeps after its limit; and a margin for a busy machine. */
const LATEST_S = IDLE_S + 2 + 3;
const PW = { alice: "alice-idle-pw", bob: "bob-idle-pw", carol: "carol-idle-pw" };

describe("idle client streams", () => {
  let server: TestServer;
  const opened: RawConnection[] = [];

  before(async () => {
    server = await startServer({
      name: "idle-timeout",
      users: PW,
      config: { limits: { idleTimeoutSeconds: IDLE_S } },
    });
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await server?.stop();
  });

  async function login(user: keyof typeof PW, resource: string): Promise<RawConnection> {
    const c = await RawConnection.open(server, { label: `${user}/${resource}` });
    opened.push(c);
    await c.login(server, user, PW[user], resource);
    return c;
  }

  test("a silent stream is dropped after the limit, not before; keepalives and incoming traffic keep others", async () => {
    const silent = await login("alice", "silent");
    const keptAlive = await login("bob", "keepalive");
    const receiving = await login("carol", "receiving");
    const start = Date.now();
    // bob sends a whitespace keepalive and carol is sent a message, each every 500 ms; carol never writes.
    let n = 0;
    const traffic = setInterval(() => {
      keptAlive.write(" ");
      keptAlive.write(
        `<message to='carol@${server.domain}/receiving' type='chat' id='m${++n}'><body>${n}</body></message>`,
      );
    }, 500);
    try {
      await silent.waitClosed("a silent stream past the idle timeout", LATEST_S * 1000);
      const elapsed = (silent.closedTime - start) / 1000;
      assert.ok(
        elapsed >= IDLE_S - 0.2,
        `dropped after ${elapsed.toFixed(1)} s, before the ${IDLE_S} s limit`,
      );
      // Well past the limit for the other two.
      await new Promise((r) => setTimeout(r, (LATEST_S + 1) * 1000 - (Date.now() - start)));
      assert.equal(keptAlive.closed, false, "whitespace keepalives keep a stream");
      assert.equal(receiving.closed, false, "a stream the server writes to is not idle");
      await receiving.waitFor(new RegExp(`id=['"]m${n - 1}['"]`), "the latest messages");
    } finally {
      clearInterval(traffic);
    }
    await receiving.waitClosed("carol once nothing more is sent to her", LATEST_S * 1000);
    assert.equal(server.running, true);
  });
});
