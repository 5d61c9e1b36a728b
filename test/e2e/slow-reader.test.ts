/**
 * A client that stops reading its stream (a frozen app, or a second login made on
 * purpose to eat the server's memory) while another one sends to it as fast as it can.
 * The server must drop it once, cleanly, past `limits.maxSendBufferBytes` (its default), free what was
 * queued for it, and keep serving — whatever keeps arriving for it afterwards.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";

/** Well past what the default send buffer limit (8 MiB) and the kernel's buffers hold. */
const MESSAGES = 6000;
const BODY = "x".repeat(4000);
const PW = { alice: "alice-frozen-pw", bob: "bob-flood-pw" };

/** Resident memory of a process, in bytes (Linux). */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

function countLines(file: string, re: RegExp): number {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => re.test(l)).length;
}

describe("a client that does not read its stream", () => {
  let server: TestServer;
  const opened: RawConnection[] = [];

  before(async () => {
    server = await startServer({
      name: "slow-reader",
      users: PW,
      // The sender is not the subject here: no inbound rate limit slows the flood down.
      extraArgs: ["--log-level", "info"],
      config: { limits: { bytesPerSecond: 0 } },
    });
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await server.stop();
  });

  test("is disconnected once, its queued output freed, and the server keeps serving", async (t) => {
    const pid = server.proc.pid!;
    const frozen = await RawConnection.open(server, { label: "alice (frozen)" });
    opened.push(frozen);
    await frozen.login(server, "alice", PW.alice, "frozen");
    frozen.write("<presence/>");
    const bob = await RawConnection.open(server, { label: "bob (sender)" });
    opened.push(bob);
    await bob.login(server, "bob", PW.bob, "flood");
    await new Promise((r) => setTimeout(r, 300));
    frozen.stopReading();
    const before = rssBytes(pid);

    let peak = before;
    for (let i = 0; i < MESSAGES; i++) {
      bob.write(
        `<message to='alice@localhost/frozen' type='chat' id='m${i}'><body>${i} ${BODY}</body></message>`,
      );
      // Let the sender's own socket drain now and then, as a real client's would.
      if (i % 200 === 199) {
        while (bob.unsentBytes > 256 * 1024) await new Promise((r) => setTimeout(r, 5));
        peak = Math.max(peak, rssBytes(pid));
      }
    }
    // The server answers an IQ only after everything before it was handled.
    bob.write("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await bob.waitFor(/<iq[^>]*id=['"]sync['"]/, "the answer to a ping sent after the flood", 60_000);
    peak = Math.max(peak, rssBytes(pid));

    const drops = countLines(server.logFile, /client does not read its stream/);
    assert.equal(drops, 1, `the frozen client is disconnected exactly once (log lines: ${drops})`);
    assert.doesNotMatch(readFileSync(server.logFile, "utf8"), /Maximum call stack/, "no runaway recursion");

    // Its session is gone: an IQ to its full JID is answered by the server with an error.
    bob.write("<iq type='get' id='gone' to='alice@localhost/frozen'><ping xmlns='urn:xmpp:ping'/></iq>");
    await bob.waitFor(
      /<iq[^>]*(id=['"]gone['"][^>]*type=['"]error['"]|type=['"]error['"][^>]*id=['"]gone['"])/,
      "an error for an IQ to the dropped session",
    );

    const growth = (peak - before) / 1024 / 1024;
    t.diagnostic(`server RSS grew by ${growth.toFixed(1)} MiB during the flood`);
    // Before the fix the server grew by ~250 KB per message to the frozen client (3,150 messages took
    // it from ~110 MB to ~900 MB) and kept the session: this flood would need well over 1 GiB. A healthy
    // server grows by 35-50 MiB here, and by up to ~110 MiB on a machine whose cores are busy (the
    // collector runs later; nothing is retained), so the bound sits well clear of both.
    assert.ok(growth < 256, `the server's memory grew by ${growth.toFixed(0)} MiB during the flood`);
    assert.ok(server.running, `the server exited; log:\n${server.logTail()}`);
  });
});
