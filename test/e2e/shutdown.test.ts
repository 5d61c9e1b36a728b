/**
 * Graceful shutdown: on SIGTERM every open stream, authenticated or not,
 * receives <system-shutdown/> (RFC 6120 §4.9.3.20) and the process exits with
 * code 0; what was stored (accounts, offline messages) is there after a restart.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { RawConnection } from "../helpers/raw-client.js";
import { CLI, NO_LISTENERS, REPO_ROOT, startServer, type TestServer } from "../helpers/server.js";
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

describe("a stop requested while the server starts", () => {
  test("SIGTERM during startup: the server finishes starting, stops gracefully, exit code 0", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-e2e-early-stop-"));
    try {
      // A fresh data directory: the server logs its self-signed certificate part-way through
      // its start, before the listeners and modules are up.
      const proc = spawn(
        process.execPath,
        [CLI, "start", "--data-dir", dataDir, "--bind", "127.0.0.1", "--log-level", "info", ...NO_LISTENERS],
        { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        proc.once("exit", (code, signal) => resolve({ code, signal })),
      );
      proc.stderr.on("data", (d: Buffer) => {
        output += d;
      });
      proc.stdout.on("data", (d: Buffer) => {
        output += d;
        if (output.includes("generated a self-signed certificate")) proc.kill("SIGTERM");
      });
      const status = await Promise.race([
        exited,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000).unref()),
      ]);
      if (!status) proc.kill("SIGKILL");
      assert.deepEqual(status, { code: 0, signal: null }, `the server's output:\n${output}`);
      assert.match(output, /"signal":"SIGTERM".*"msg":"shutting down"/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("signals that mean nothing to the server", () => {
  test("SIGUSR1 and SIGUSR2 are logged and ignored: no debugger opens, the server goes on and stops cleanly", async () => {
    const server = await startServer({ name: "signals", users: { alice: PW.alice } });
    try {
      server.proc.kill("SIGUSR1");
      server.proc.kill("SIGUSR2");
      const deadline = Date.now() + 10_000;
      while (!/SIGUSR2 ignored/.test(server.logTail(50)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const log = server.logTail(50);
      assert.match(log, /"signal":"SIGUSR1".*"msg":"SIGUSR1 ignored/);
      assert.match(log, /"signal":"SIGUSR2".*"msg":"SIGUSR2 ignored/);
      // Node prints this when SIGUSR1 opens its inspector.
      assert.doesNotMatch(log, /Debugger listening/);
      assert.ok(server.running);
      const alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "after-signals" });
      await alice.close();
    } finally {
      await server.stop();
    }
  });
});
