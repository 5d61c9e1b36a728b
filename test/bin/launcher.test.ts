/**
 * The `bin/switchboard` launcher: `start` runs the server on jemalloc when the library is
 * installed, on the system's malloc when it is not or when told so, and the server logs which
 * one it runs on; `SWITCHBOARD_ALLOCATOR=jemalloc` refuses to start without it. The server's
 * own process is checked (its memory map and environment), not only its log line.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { allocatorFrom, allocatorLogLine } from "../../src/bin/allocator.js";
import { SERVER_NODE_FLAGS } from "../../src/bin/node-flags.js";
import { REPO_ROOT } from "../helpers/server.js";
import { requirePeer } from "../helpers/services.js";

const LAUNCHER = path.join(REPO_ROOT, "bin", "switchboard");
const JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

const jemallocSkip = await requirePeer(`jemalloc (${JEMALLOC})`, () => {
  if (process.arch !== "x64") return "the test knows Debian's path on x86-64 only";
  try {
    accessSync(JEMALLOC, constants.R_OK);
    return true;
  } catch {
    return "install the Debian package libjemalloc2";
  }
});

interface Started {
  child: ChildProcess;
  /** The log line that says which allocator the server runs on. */
  line: Record<string, unknown>;
  maps: string;
  environ: string[];
  /** What the process wrote until it was serving (stdout and stderr). */
  output: string;
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Starts the server through the launcher with no listener, until it logs its allocator and has
 * printed its summary (its signal handlers are installed then).
 */
function startWith(env: Record<string, string>): Promise<Started> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-launcher-"));
  dirs.push(dir);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ["SWITCHBOARD_ALLOCATOR", "SWITCHBOARD_JEMALLOC", "MALLOC_CONF", "LD_PRELOAD"]) {
    if (!(k in env)) delete childEnv[k];
  }
  // biome-ignore format: option and value side by side
  const args = ["start", "--data-dir", dir, "--domain", "launcher.test", "--bind", "127.0.0.1",
    "--c2s-port", "0", "--c2s-tls-port", "0", "--http-port", "0", "--component-port", "0", "--log-level", "info"];
  const child = spawn(LAUNCHER, args, { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no allocator line within 30 s:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes('"allocator"'));
      if (!line || !out.includes("Switchboard is serving")) return;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      const pid = child.pid as number;
      resolve({
        child,
        line: JSON.parse(line) as Record<string, unknown>,
        maps: readFileSync(`/proc/${pid}/maps`, "utf8"),
        environ: readFileSync(`/proc/${pid}/environ`, "utf8").split("\0"),
        output: out,
      });
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before logging its allocator:\n${out}`));
    });
  });
}

/** True once the process catches SIGTERM (its handler is installed: SigCgt in /proc/PID/status). */
function catchesSigterm(pid: number): boolean {
  const mask = /^SigCgt:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0";
  return (BigInt(`0x${mask}`) & (1n << 14n)) !== 0n;
}

async function stop(s: Started): Promise<void> {
  const pid = s.child.pid as number;
  for (let i = 0; i < 200 && !catchesSigterm(pid); i++) await new Promise((r) => setTimeout(r, 50));
  const exited = new Promise<number | null>((r) => s.child.once("exit", (code) => r(code)));
  s.child.kill("SIGTERM");
  assert.equal(await exited, 0, "the server stops cleanly");
}

describe("the launcher picks the allocator", () => {
  test("jemalloc when it is installed, with its decay set to return freed pages at once", {
    skip: jemallocSkip,
  }, async () => {
    const s = await startWith({ SWITCHBOARD_JEMALLOC: JEMALLOC });
    try {
      assert.equal(s.line.allocator, "jemalloc");
      assert.equal(s.line.library, JEMALLOC);
      assert.equal(s.line.msg, `memory allocator: jemalloc (${JEMALLOC})`);
      assert.ok(s.maps.includes(JEMALLOC), "jemalloc is mapped into the server process");
      assert.ok(s.environ.includes(`LD_PRELOAD=${JEMALLOC}`));
      assert.ok(s.environ.includes("MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0"));
      // jemalloc reports settings it does not know on stderr ("<jemalloc>: Invalid conf pair").
      assert.doesNotMatch(s.output, /<jemalloc>/);
      // The launcher execs node with the server's flags: the pid is the server's own.
      const cmdline = readFileSync(`/proc/${s.child.pid}/cmdline`, "utf8").split("\0");
      for (const flag of SERVER_NODE_FLAGS) assert.ok(cmdline.includes(flag), `node runs with ${flag}`);
    } finally {
      await stop(s);
    }
  });

  test("an operator's own MALLOC_CONF is kept", { skip: jemallocSkip }, async () => {
    const s = await startWith({ SWITCHBOARD_JEMALLOC: JEMALLOC, MALLOC_CONF: "narenas:2" });
    try {
      assert.equal(s.line.allocator, "jemalloc");
      assert.ok(s.environ.includes("MALLOC_CONF=narenas:2"));
    } finally {
      await stop(s);
    }
  });

  test("the system's malloc when jemalloc is absent, and the log says why", async () => {
    const s = await startWith({ SWITCHBOARD_JEMALLOC: "/nonexistent/libjemalloc.so.2" });
    try {
      assert.equal(s.line.allocator, "system");
      assert.equal(s.line.reason, "no jemalloc library at: /nonexistent/libjemalloc.so.2");
      assert.doesNotMatch(s.maps, /libjemalloc/);
      assert.ok(!s.environ.some((e) => e.startsWith("LD_PRELOAD=")));
    } finally {
      await stop(s);
    }
  });

  test("SWITCHBOARD_ALLOCATOR=system turns jemalloc off", async () => {
    const s = await startWith({ SWITCHBOARD_ALLOCATOR: "system", SWITCHBOARD_JEMALLOC: JEMALLOC });
    try {
      assert.equal(s.line.allocator, "system");
      assert.equal(s.line.reason, "SWITCHBOARD_ALLOCATOR=system");
      assert.doesNotMatch(s.maps, /libjemalloc/);
    } finally {
      await stop(s);
    }
  });

  test("SWITCHBOARD_ALLOCATOR=jemalloc refuses to start without it; other values are refused", async () => {
    for (const [env, code, message] of [
      [
        { SWITCHBOARD_ALLOCATOR: "jemalloc", SWITCHBOARD_JEMALLOC: "/nonexistent.so" },
        1,
        /no jemalloc library/,
      ],
      [{ SWITCHBOARD_ALLOCATOR: "tcmalloc" }, 2, /auto, jemalloc or system/],
    ] as const) {
      const child = spawn(LAUNCHER, ["start", "--data-dir", "/nonexistent"], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (d: Buffer) => {
        err += d.toString();
      });
      const exit = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
      assert.equal(exit, code, err);
      assert.match(err, message);
    }
  });
});

describe("the allocator line", () => {
  test("is read from the memory map, whatever the launcher meant", () => {
    const maps = [
      "55d0c0a00000-55d0c2a00000 r-xp 00000000 08:01 123 /usr/bin/node",
      "7f1c00000000-7f1c00100000 r-xp 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
      "7f1c00200000-7f1c00300000 rw-p 00000000 00:00 0 ",
    ].join("\n");
    assert.deepEqual(allocatorFrom(maps, "preloaded /usr/lib/x86_64-linux-gnu/libjemalloc.so.2"), {
      allocator: "jemalloc",
      library: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    });
    const plain = "55d0c0a00000-55d0c2a00000 r-xp 00000000 08:01 123 /usr/bin/node";
    assert.deepEqual(allocatorFrom(plain, "preloaded /opt/libjemalloc.so.2"), {
      allocator: "system",
      reason: "preloaded /opt/libjemalloc.so.2 but not loaded",
    });
    assert.deepEqual(allocatorFrom(plain, undefined), {
      allocator: "system",
      reason: "not started by the switchboard launcher",
    });
    assert.equal(
      allocatorLogLine({ allocator: "system", reason: "SWITCHBOARD_ALLOCATOR=system" }),
      "memory allocator: the system's malloc (SWITCHBOARD_ALLOCATOR=system)",
    );
  });
});
