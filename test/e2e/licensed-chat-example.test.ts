/**
 * The example chat client (sdk/examples/licensed-chat.ts) as a user runs it: a process,
 * driven through its standard input, judged by what it prints and its exit status.
 *
 * - /quit ends the session cleanly every time, also when the input ends at the same moment
 *   (a piped script, Ctrl-D after /quit): many cycles, because the crash this guards against
 *   (a second stop() of @xmpp/client detaching its parser while the server's answer arrives)
 *   happened in a fraction of them;
 * - failures to connect are reported with their reason and a non-zero exit status, and no
 *   empty "! error:" line is printed.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type ExampleProcess, startChatExample } from "../helpers/licensed-chat.js";
import { type AppCredentials, registerApp } from "../helpers/licensed-setup.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";

const PW = "chat-example-pw";
/** /quit cycles; each is a new process and a new login (SWITCHBOARD_CHAT_QUIT_CYCLES to run more). */
const CYCLES = Number(process.env.SWITCHBOARD_CHAT_QUIT_CYCLES ?? 24);
const EXIT_FAILED = 1;

/** What the process printed on stderr, apart from Node's warning about --insecure. */
function unexpectedStderr(p: ExampleProcess): string {
  return p.errors
    .split("\n")
    .filter((l) => l.trim() !== "" && !/NODE_TLS_REJECT_UNAUTHORIZED|--trace-warnings/.test(l))
    .join("\n");
}

describe("the example chat client as a process (sdk/examples/licensed-chat.ts)", () => {
  let server: TestServer;
  let chat: AppCredentials;

  before(async () => {
    server = await startServer({ name: "licensed-chat-example", users: { alice: PW } });
    chat = await registerApp(server, "com.example.chat");
  });
  after(async () => {
    if (server?.running) await server.stop();
  });

  const start = (opts: { password?: string; insecure?: boolean; service?: string } = {}) =>
    startChatExample(server, {
      user: "alice",
      password: opts.password ?? PW,
      app: chat,
      version: "5.0.1",
      ...(opts.insecure !== undefined ? { insecure: opts.insecure } : {}),
      ...(opts.service !== undefined ? { service: opts.service } : {}),
    });

  test(`/quit ends the session cleanly, ${CYCLES} times in a row`, async (t) => {
    // Three ways a user quits: /quit with the terminal still open, /quit as the last line of
    // piped input (the input ends at once), and the end of input alone (Ctrl-D).
    const ways = ["quit", "quit+eof", "eof"] as const;
    const failures: string[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const way = ways[i % ways.length]!;
      const alice = start();
      try {
        const connected = await alice
          .line(/^\* connected as alice@localhost\/cli/, "the connected line")
          .catch((err: Error) => err);
        if (connected instanceof Error) {
          failures.push(`cycle ${i} (${way}): ${connected.message}; stderr: ${unexpectedStderr(alice)}`);
          continue;
        }
        if (way !== "eof") alice.write("/quit");
        if (way !== "quit") alice.endInput();
        const code = await alice.exitCode();
        const stderr = unexpectedStderr(alice);
        const printed = alice.lines.all();
        if (code !== 0 || stderr !== "" || printed.at(-1) !== "* disconnected") {
          failures.push(`cycle ${i} (${way}): exit ${code}, last line ${printed.at(-1)}, stderr: ${stderr}`);
        }
      } finally {
        alice.kill();
      }
    }
    t.diagnostic(`${CYCLES - failures.length} of ${CYCLES} cycles quit cleanly`);
    assert.deepEqual(failures, []);
  });

  test("a closed port: the reason and exit status 1", async () => {
    const [port] = await freePorts(1);
    const alice = start({ service: `xmpp://${server.host}:${port}` });
    assert.equal(await alice.exitCode(), EXIT_FAILED);
    const printed = alice.lines.all();
    assert.deepEqual(printed, [`! cannot connect: connect ECONNREFUSED ${server.host}:${port}`]);
    assert.equal(unexpectedStderr(alice), "");
  });

  test("without --insecure, the test server's self-signed certificate: the reason and exit status 1", async () => {
    const alice = start({ insecure: false });
    assert.equal(await alice.exitCode(), EXIT_FAILED);
    assert.deepEqual(alice.lines.all(), ["! cannot connect: self-signed certificate"]);
  });

  test("a wrong password: the SASL condition and exit status 1", async () => {
    const alice = start({ password: "not-the-password" });
    assert.equal(await alice.exitCode(), EXIT_FAILED);
    assert.deepEqual(alice.lines.all(), ["! cannot connect: not-authorized"]);
  });

  test("no line is an empty error", async () => {
    const alice = start();
    await alice.line(/^\* connected as/, "the connected line");
    alice.write("/presence away out for lunch");
    alice.write("/nonsense");
    await alice.line(/^! commands:/, "the help line");
    alice.write("/quit");
    assert.equal(await alice.exitCode(), 0);
    assert.ok(
      !alice.lines.all().some((l) => /^! (error:|cannot connect:)?\s*$/.test(l)),
      alice.lines.all().join("\n"),
    );
  });
});
