/**
 * The documentation runs as printed: every block marked runnable in README.md and docs/*.md
 * (see snippets.ts for the markers) runs against a server started the way `npm start` starts
 * it — `switchboard start` with the defaults, its data in ./data of a fresh directory, on the
 * default ports of both loopbacks — one server per document, in a network namespace of its
 * own so the default ports are free. Shell blocks run with bash (errexit, pipefail) and a
 * Debian user's PATH, on which `switchboard` is the installed command (a checkout's
 * bin/switchboard) and `python3` is Debian's, with python3-slixmpp.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { NetworkNamespace } from "../helpers/netns.js";
import { REPO_ROOT } from "../helpers/server.js";
import { requirePeer } from "../helpers/services.js";
import { type RunnableBlock, runnableBlocks } from "./snippets.js";

const ARTIFACTS = path.join(REPO_ROOT, "test-artifacts/docs");
const BLOCK_TIMEOUT_MS = 120_000;
/** The first `npx switchboard` of a checkout has npm prepare the package (a build) first. */
const CHECKOUT_BLOCK_TIMEOUT_MS = 420_000;
const READY_TIMEOUT_MS = 60_000;

const documents = [
  "README.md",
  ...readdirSync(path.join(REPO_ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const blocksOf = new Map(
  documents.map((file) => [file, runnableBlocks(file, readFileSync(path.join(REPO_ROOT, file), "utf8"))]),
);

const namespaceSkip = await requirePeer("a network namespace (unshare --net, as root)", async () => {
  const ns = await NetworkNamespace.create();
  if (typeof ns === "string") return ns;
  ns.close();
  return true;
});
const pythonSkip = await requirePeer("python3-slixmpp and python3-cryptography", () => {
  const r = spawnSync("/usr/bin/python3", ["-c", "import slixmpp, cryptography"], { encoding: "utf8" });
  return r.status === 0 ? true : "install the Debian packages python3-slixmpp and python3-cryptography";
});

test("the documents that explain how to run things carry runnable blocks", () => {
  const count = (file: string) => blocksOf.get(file)?.length ?? 0;
  assert.ok(count("README.md") >= 2, "README.md: the quick start and the licensing commands");
  assert.ok(count("docs/licensing-protocol.md") >= 6, "licensing-protocol.md: §5, §7.1, §7.3");
  assert.ok(count("docs/operations.md") >= 2, "operations.md: the licensing programme and components");
  const python = blocksOf.get("docs/licensing-protocol.md")!.find((b) => b.lang === "python");
  assert.equal(python?.saveAs, "licensed_client.py", "§7.3's Python program is saved and run");
});

/** The `switchboard` command of an installation: the checkout's launcher (bin/switchboard). */
function installSwitchboard(binDir: string): void {
  mkdirSync(binDir, { recursive: true });
  symlinkSync(path.join(REPO_ROOT, "bin/switchboard"), path.join(binDir, "switchboard"));
}

interface Run {
  code: number | null;
  output: string;
}

function finished(child: ChildProcess, timeoutMs: number, what: string): Promise<Run> {
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s:\n${output}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

for (const [file, blocks] of blocksOf) {
  if (blocks.length === 0) continue;
  const needsPython = blocks.some((b) => b.lang === "python" || /\bpython3\b/.test(b.code));
  describe(`${file} as printed`, { skip: namespaceSkip || (needsPython && pythonSkip) }, () => {
    let ns: NetworkNamespace;
    let server: ChildProcess | undefined;
    let workdir: string;
    let env: NodeJS.ProcessEnv;
    let log: ReturnType<typeof createWriteStream>;

    const inNamespace = (command: string, args: string[], cwd: string) =>
      ns.spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });

    const runShell = async (code: string, cwd: string, what: string): Promise<Run> => {
      const run = await finished(
        inNamespace("bash", ["-c", `set -eo pipefail\n${code}`], cwd),
        cwd === REPO_ROOT ? CHECKOUT_BLOCK_TIMEOUT_MS : BLOCK_TIMEOUT_MS,
        what,
      );
      log.write(`\n[docs] ${what}\n${code}${run.output}[docs] exit ${run.code}\n`);
      return run;
    };

    before(async () => {
      const created = await NetworkNamespace.create();
      if (typeof created === "string") throw new Error(created);
      ns = created;
      mkdirSync(ARTIFACTS, { recursive: true });
      log = createWriteStream(path.join(ARTIFACTS, `${file.replace(/[/.]/g, "-")}.log`));
      workdir = mkdtempSync(path.join(os.tmpdir(), "switchboard-docs-"));
      // The examples the documents name by path (docs/examples/…) are where a checkout has them.
      symlinkSync(path.join(REPO_ROOT, "docs"), path.join(workdir, "docs"));
      const binDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-docs-bin-"));
      installSwitchboard(binDir);
      env = {
        PATH: [
          binDir,
          path.dirname(process.execPath),
          "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ].join(":"),
        HOME: process.env.HOME ?? workdir,
        LANG: "C.UTF-8",
        // Blocks run in the checkout act on this server's data too.
        SWITCHBOARD_DATA_DIR: path.join(workdir, "data"),
        npm_config_update_notifier: "false",
        // npx of a checkout installs the checkout into its cache: a fresh one, as on a new machine.
        npm_config_cache: path.join(binDir, "npm-cache"),
      };
      // As `npm start`: the launcher, `start`, every default.
      server = inNamespace(path.join(REPO_ROOT, "bin/switchboard"), ["start"], workdir);
      server.stdout!.pipe(log, { end: false });
      server.stderr!.pipe(log, { end: false });
      const proc = server;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the server was not ready within ${READY_TIMEOUT_MS / 1000} s`)),
          READY_TIMEOUT_MS,
        );
        proc.once("exit", (code) => reject(new Error(`the server exited with ${code} at start`)));
        createInterface({ input: proc.stdout! }).on("line", (line) => {
          if (line.includes('"msg":"switchboard ready"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    });

    after(async () => {
      if (server && server.exitCode === null) {
        const exited = new Promise((r) => server!.once("exit", r));
        server.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        server.kill("SIGKILL");
      }
      ns?.close();
      log?.end();
      if (workdir) rmSync(workdir, { recursive: true, force: true });
    });

    for (const block of blocks) {
      const name = `${file}:${block.line} ${block.saveAs ? `(saved as ${block.saveAs})` : block.code.split("\n")[0]}`;
      test(name, { timeout: CHECKOUT_BLOCK_TIMEOUT_MS + 10_000 }, async () => {
        if (block.saveAs) {
          writeFileSync(path.join(workdir, block.saveAs), block.code);
          return;
        }
        const cwd = block.where === "checkout" ? REPO_ROOT : workdir;
        const run = await runShell(block.code, cwd, name);
        assert.equal(run.code, 0, `${name} failed (exit ${run.code}):\n${run.output}`);
      });
    }

    if (file === "docs/licensing-protocol.md") {
      test("§7.3's program ends after a refusal instead of waiting for an answer", async () => {
        const setup = await runShell(
          "switchboard policy set --app com.example.chat --min-version 6.0 && sleep 1.5",
          workdir,
          "a minimum version above the example's",
        );
        assert.equal(setup.code, 0, setup.output);
        const run = await runShell(
          "CHAT_PASSWORD='a-long-secret' python3 licensed_client.py",
          workdir,
          "refused",
        );
        assert.equal(run.code, 3, run.output);
        assert.match(run.output, /^refused: version-too-old: .*version 6\.0 or later is required/m);
      });
    }
  });
}

export type { RunnableBlock };
