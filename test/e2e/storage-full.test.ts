/**
 * A full disk under the server (a small tmpfs as its data directory, filled up by a file):
 * messages that must be stored (to an account with no session: offline storage) are refused
 * with resource-constraint of type wait and a text, none is lost without an error, logins and
 * live chat go on, the failure is logged once (not once per message) and counted in /metrics;
 * once space is freed the next message is stored, and the recipient gets exactly the stored
 * messages, in order.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { requirePeer } from "../helpers/services.js";
import { is, stanzaError, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-full-pw", bob: "bob-full-pw", carol: "carol-full-pw" };
const MOUNT_BYTES = 6 * 1024 * 1024;
const BODY = "x".repeat(1500);

const mountPoint = mkdtempSync(path.join(os.tmpdir(), "switchboard-full-"));
const mountSkip = await requirePeer("a small tmpfs (mount -t tmpfs, as root)", () => {
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${MOUNT_BYTES}`, "tmpfs", mountPoint]);
  return r.status === 0 ? true : `mount failed: ${(r.stderr?.toString() || r.error?.message || "").trim()}`;
});

/** Fills the file system with one file until it refuses more. */
function fill(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

/** Sends initial presence and returns the ids (first word of the body) of the next `count` offline messages. */
async function offlineIds(peer: JsPeer, count: number): Promise<string[]> {
  await peer.send(xml("presence"));
  const got: string[] = [];
  while (got.length < count) {
    const m = await peer.next(is.anyChat(), `offline message ${got.length + 1} of ${count}`);
    got.push(m.getChildText("body")!.split(" ")[0]!);
  }
  return got;
}

describe("a full disk", { skip: mountSkip }, () => {
  let server: TestServer;
  let alice: JsPeer;
  let httpPort: number;
  const filler = path.join(mountPoint, "filler");

  before(async () => {
    [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({
      extraArgs: ["--http-port", String(httpPort)],
      name: "storage-full",
      users: PW,
      dataDir: path.join(mountPoint, "data"),
      // The second test restarts on it; the mount goes at the end.
      removeDataOnStop: false,
    });
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "a" });
  });
  after(async () => {
    try {
      await alice?.close();
      await server?.stop();
    } finally {
      spawnSync("umount", [mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  test("messages that need storing are refused with resource-constraint, none lost; after space returns they are stored again", async () => {
    const since = Date.now();
    fill(filler);
    // SQLite reuses the room it already has (free pages, the log): send until writes fail.
    const sent: string[] = [];
    const refused = new Set<string>();
    const refusal = (el: ReturnType<JsPeer["stanzas"]["all"]>[number]) =>
      el.name === "message" && el.attrs.type === "error";
    for (let batch = 0; batch < 80 && refused.size < 30; batch++) {
      for (let i = 0; i < 50; i++) {
        const id = `m${sent.length}`;
        sent.push(id);
        await alice.send(
          xml("message", { to: "bob@localhost", type: "chat", id }, xml("body", {}, `${id} ${BODY}`)),
        );
      }
      await alice.sync();
      for (const el of alice.stanzas.all()) {
        if (!refusal(el)) continue;
        const e = stanzaError(el)!;
        assert.equal(e.condition, "resource-constraint", el.toString());
        assert.equal(e.type, "wait", el.toString());
        assert.match(e.text ?? "", /storage is full/);
        refused.add(el.attrs.id!);
      }
    }
    assert.ok(refused.size >= 30, `writes failed (${refused.size} refused of ${sent.length})`);

    // Logins and live chat go on meanwhile.
    const carol = await connectJs(server, { user: "carol", password: PW.carol, resource: "c" });
    try {
      await carol.send(xml("presence"));
      await alice.send(
        xml("message", { to: carol.jid, type: "chat", id: "live" }, xml("body", {}, "live while full")),
      );
      await carol.next(is.message({ body: "live while full" }), "a live message while the disk is full");
    } finally {
      await carol.close();
    }

    // Logged once for the whole flood, and counted.
    // The log file is appended to by every run: this run's lines only.
    const log = readFileSync(server.logFile, "utf8")
      .split("\n")
      .filter((line) => Number(/"time":(\d+)/.exec(line)?.[1]) >= since)
      .join("\n");
    assert.equal(log.match(/the storage is full/g)?.length, 1, "one log line for the flood");
    assert.doesNotMatch(log, /stanza handler failed/);
    const metrics = await (await fetch(`http://${server.host}:${httpPort}/metrics`)).text();
    const counted = Number(/switchboard_storage_full_refusals_total (\d+)/.exec(metrics)?.[1]);
    assert.ok(counted >= refused.size, `metric ${counted} against ${refused.size} refused`);

    rmSync(filler);
    const last = `m${sent.length}`;
    sent.push(last);
    await alice.send(
      xml("message", { to: "bob@localhost", type: "chat", id: last }, xml("body", {}, `${last} ${BODY}`)),
    );
    await alice.sync();
    assert.ok(!refused.has(last), "stored once there is room");

    const stored = sent.filter((id) => !refused.has(id));
    const bob = await connectJs(server, { user: "bob", password: PW.bob, resource: "b" });
    try {
      assert.deepEqual(await offlineIds(bob, stored.length), stored, "every message not refused, in order");
      await bob.none(is.anyChat(), "a message that was refused");
    } finally {
      await bob.close();
    }
  });

  test("a server stopped while the disk is full exits cleanly, and what it stored is there after a restart", async () => {
    fill(filler);
    const sent: string[] = [];
    const refused = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const id = `late${i}`;
      sent.push(id);
      await alice.send(
        xml("message", { to: "bob@localhost", type: "chat", id }, xml("body", {}, `${id} ${BODY}`)),
      );
    }
    await alice.sync();
    for (const el of alice.stanzas.all())
      if (el.name === "message" && el.attrs.type === "error" && el.attrs.id?.startsWith("late"))
        refused.add(el.attrs.id);
    await alice.close();
    await server.stop(); // asserts a clean exit (code 0)
    rmSync(filler);
    server = await startServer({
      name: "storage-full-restart",
      dataDir: path.join(mountPoint, "data"),
      removeDataOnStop: true,
    });
    const stored = sent.filter((id) => !refused.has(id));
    const bob = await connectJs(server, { user: "bob", password: PW.bob, resource: "b2" });
    try {
      assert.deepEqual(await offlineIds(bob, stored.length), stored);
    } finally {
      await bob.close();
    }
  });
});
