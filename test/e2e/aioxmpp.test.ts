/**
 * aioxmpp as Debian installs it (python3-aioxmpp 0.13), at its defaults: the certificate verified
 * (the server's self-signed CA trusted, as a user of such a server does) and TLS required. Over
 * STARTTLS and direct TLS (XEP-0368), three runs in a row from one address, each logs in on the
 * first try, delivers a chat message to a second aioxmpp client, and reads disco and the roster.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { metricValues } from "../helpers/federation.js";
import { freePorts, REPO_ROOT, startServer, type TestServer } from "../helpers/server.js";
import { commandSucceeds, requirePeer } from "../helpers/services.js";
import { PYTHON } from "../helpers/slix-client.js";

const SCRIPT = path.join(REPO_ROOT, "test/e2e/py/aioxmpp_chat.py");
const PW = { alice: "alice-aioxmpp-pw", bob: "bob-aioxmpp-pw" };

const skip = await requirePeer("python3-aioxmpp", () =>
  commandSucceeds(PYTHON, ["-c", "import aioxmpp"]) === true
    ? true
    : "install the Debian package python3-aioxmpp (used with /usr/bin/python3)",
);

interface Outcome {
  jid: string;
  received: string;
  features: string[];
  roster: number;
}

function run(server: TestServer, mode: "starttls" | "tls"): Promise<{ code: number | null; output: string }> {
  const port = mode === "starttls" ? server.c2sPort : server.c2sTlsPort;
  const ca = path.join(server.dataDir, "tls", `${server.domain}.crt`);
  const args = [SCRIPT, server.host, String(port), mode, ca, server.domain, "alice", PW.alice, "bob", PW.bob];
  return new Promise((resolve, reject) => {
    const proc = spawn(PYTHON, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 45_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("aioxmpp at its defaults", { skip }, () => {
  let server: TestServer;
  let httpPort: number;

  before(async () => {
    [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({ name: "aioxmpp", users: PW, extraArgs: ["--http-port", String(httpPort)] });
  });
  after(async () => {
    await server?.stop();
  });

  for (const mode of ["starttls", "tls"] as const) {
    test(`over ${mode === "tls" ? "direct TLS" : "STARTTLS"}: three runs in a row, each logs in first try and delivers`, async () => {
      for (const n of [1, 2, 3]) {
        const { code, output } = await run(server, mode);
        assert.equal(code, 0, `run ${n} failed:\n${output}\nserver log:\n${server.logTail()}`);
        const line = output.trim().split("\n").at(-1)!;
        const outcome = JSON.parse(line) as Outcome;
        assert.match(outcome.jid, /^alice@localhost\/.+/, "a resource was bound");
        assert.equal(outcome.received, `hello from aioxmpp over ${mode}`);
        assert.ok(outcome.features.includes("http://jabber.org/protocol/disco#info"), line);
        assert.equal(outcome.roster, 0, "an empty roster was fetched");
      }
      // Not one refused attempt on the way (a refusal counts towards the address's login limit).
      const failures = await metricValues(
        `http://${server.host}:${httpPort}/metrics`,
        "switchboard_auth_failures_total",
      );
      assert.deepEqual(
        [...failures.values()].filter((n) => n > 0),
        [],
        [...failures].join(" "),
      );
    });
  }
});
