/**
 * Stock clients as Debian installs them, on the server `npm start` runs (self-signed TLS,
 * TLS 1.3): sendxmpp (Perl, Net::XMPP) logs in over STARTTLS with SASL PLAIN and its
 * messages arrive, three runs in a row from one address, each on the first try. Its only
 * departure from its defaults is the one any user of a self-signed server makes: it is
 * told not to verify the certificate (`-n`), or where the CA is.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { commandSucceeds, requirePeer } from "../helpers/services.js";
import { xml } from "../helpers/stanza.js";

const sendxmppSkip = await requirePeer("sendxmpp (Debian package sendxmpp)", () =>
  commandSucceeds("sh", ["-c", "command -v sendxmpp"]),
);

interface Run {
  code: number | null;
  output: string;
}

/** Runs sendxmpp as a user would: the message on standard input, the recipient last. */
function sendxmpp(server: TestServer, args: string[], body: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      "sendxmpp",
      [
        "-d",
        "-u",
        "alice",
        "-p",
        "alice-secret-pw",
        "-j",
        `${server.host}:${server.c2sPort}`,
        "-o",
        server.domain,
        ...args,
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let output = "";
    proc.stdout.on("data", (d: Buffer) => (output += d.toString("latin1")));
    proc.stderr.on("data", (d: Buffer) => (output += d.toString("latin1")));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    proc.stdin.end(`${body}\n`);
  });
}

describe("stock clients at their defaults", { skip: sendxmppSkip }, () => {
  let server: TestServer;
  let bob: JsPeer;

  before(async () => {
    server = await startServer({
      name: "stock-clients",
      users: { alice: "alice-secret-pw", bob: "bob-secret-pw" },
    });
    bob = await connectJs(server, { user: "bob", password: "bob-secret-pw", resource: "desk" });
    await bob.send(xml("presence"));
  });
  after(async () => {
    await bob?.close();
    await server?.stop();
  });

  test("sendxmpp over STARTTLS: three runs in a row from one address, each logs in first try and delivers", async () => {
    for (const n of [1, 2, 3]) {
      const run = await sendxmpp(server, ["-t", "-n", "bob@localhost"], `hello from sendxmpp ${n}`);
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /SSL: We are secure/, "the stream was encrypted");
      assert.match(run.output, /<success xmlns=["']urn:ietf:params:xml:ns:xmpp-sasl["']\s*\/>/, run.output);
      assert.match(run.output, /AuthSend: ok/, run.output);
      const msg = await bob.stanzas.next(
        (s) => s.is("message") && s.getChildText("body")?.trim() === `hello from sendxmpp ${n}`,
        `sendxmpp message ${n}`,
      );
      assert.equal(String(msg.attrs.from).split("/")[0], "alice@localhost");
    }
  });

  test("sendxmpp without TLS is refused before any password is sent", async () => {
    const run = await sendxmpp(server, ["bob@localhost"], "never sent");
    assert.doesNotMatch(run.output, /mechanism=.PLAIN/, "no password over plaintext");
    await bob.stanzas.none(
      (s) => s.is("message") && s.getChildText("body")?.trim() === "never sent",
      "plaintext message",
    );
  });
});
