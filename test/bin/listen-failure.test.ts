/**
 * `switchboard start` on a port another program holds (Debian's prosody and ejabberd packages
 * start a server on 5222 and 5269): one line saying which address, why, and what to do, exit
 * code 1, no stack trace.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { listenFailureMessage } from "../../src/bin/listen-failure.js";
import { REPO_ROOT } from "../helpers/server.js";

const LAUNCHER = path.join(REPO_ROOT, "bin", "switchboard");
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function occupiedPort(): Promise<{ port: number; close: () => void }> {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen({ port: 0, host: "127.0.0.1" }, r));
  return { port: (holder.address() as net.AddressInfo).port, close: () => holder.close() };
}

function start(listenerArgs: string[]): Promise<{ code: number | null; stderr: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-listen-"));
  dirs.push(dir);
  // biome-ignore format: option and value side by side
  const args = ["start", "--data-dir", dir, "--bind", "127.0.0.1", "--c2s-port", "0", "--c2s-tls-port", "0",
    "--http-port", "0", "--s2s-port", "0", "--component-port", "0", ...listenerArgs];
  const child = spawn(LAUNCHER, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

describe("a listener whose port is taken", () => {
  for (const option of ["--c2s-port", "--http-port", "--s2s-port"]) {
    test(`${option}: says which address and what to do, and exits with code 1`, async () => {
      const held = await occupiedPort();
      try {
        const { code, stderr } = await start([option, String(held.port)]);
        assert.equal(code, 1, stderr);
        assert.match(
          stderr,
          new RegExp(
            `switchboard: cannot listen on 127\\.0\\.0\\.1:${held.port}: another program already listens there`,
          ),
        );
        assert.match(stderr, /--c2s-port, --c2s-tls-port, --s2s-port, --component-port, --http-port/);
        assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
      } finally {
        held.close();
      }
    });
  }
});

describe("listenFailureMessage", () => {
  const listenError = (code: string, address: string, port: number) =>
    Object.assign(new Error(`listen ${code}: ${address}:${port}`), {
      code,
      syscall: "listen",
      address,
      port,
    });

  test("names an IPv6 address in brackets, and explains a privileged port", () => {
    assert.match(
      listenFailureMessage(listenError("EACCES", "::1", 80)) ?? "",
      /^cannot listen on \[::1\]:80: permission denied/,
    );
    assert.match(
      listenFailureMessage(listenError("EADDRNOTAVAIL", "127.9.9.9", 5222)) ?? "",
      /not one of this machine's\. Check --bind/,
    );
  });

  test("leaves other errors alone", () => {
    assert.equal(listenFailureMessage(new Error("something else")), undefined);
    assert.equal(
      listenFailureMessage(Object.assign(new Error("x"), { code: "ECONNREFUSED", syscall: "connect" })),
      undefined,
    );
  });
});
