/**
 * The client-side deliverables against the real server: the example licensed
 * chat client (sdk/examples/licensed-chat.ts) chatting under enforce and
 * printing the upgrade notice when its version is refused; the Python/slixmpp
 * proof of docs/examples/licence_proof.py; and `switchboard stats clients`
 * agreeing with the sessions actually open.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runPythonExample, startChatExample } from "../helpers/licensed-chat.js";
import { type Build, connectLicensed, connectPlain } from "../helpers/licensed-peer.js";
import { type AppCredentials, cli, policySet, registerApp, sleep } from "../helpers/licensed-setup.js";
import type { Peer } from "../helpers/peer.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { commandSucceeds, requirePeer } from "../helpers/services.js";
import { connectSlix, PYTHON, slixSkip } from "../helpers/slix-client.js";
import { is, xml } from "../helpers/stanza.js";

const PW = "clients-e2e-pw";
const USERS = ["alice", "bob", "carol", "dave", "support"];
const UPGRADE_URL = "https://example.com/chat/download";
const EXIT_REFUSED = 3;

const login = (user: string, resource = "r1") => ({ user, password: PW, resource });

const pythonSkip =
  slixSkip ||
  (await requirePeer("python3-cryptography", () =>
    commandSucceeds(PYTHON, ["-c", "import cryptography.hazmat.primitives.asymmetric.ed25519"]) === true
      ? true
      : "install the Debian package python3-cryptography",
  ));

interface LiveRow {
  clientId: string | null;
  version: string | null;
  platform: string | null;
  status: string;
  sessions: number;
  accounts: number;
}
interface StatsReport {
  live: {
    sessions: number;
    accounts: number;
    rows: LiveRow[];
    supported: { accounts: number; supportedAccounts: number };
    cutoff: {
      sessions: number;
      accounts: number;
      spared: { exempt: { sessions: number; accounts: number } };
    };
  } | null;
  daily: { accounts: number; supported: { accounts: number; supportedAccounts: number } };
}

/**
 * `switchboard stats clients --json` once it satisfies `done` (the server writes its
 * live figures every 5 s and the CLI reads them from storage), or the last one after 15 s.
 */
async function statsWhen(server: TestServer, done: (r: StatsReport) => boolean): Promise<StatsReport> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const report = (await cli(server, ["stats", "clients"])) as unknown as StatsReport;
    if (done(report) || Date.now() > deadline) return report;
    await sleep(1000);
  }
}

describe("licensed clients: example chat, Python proof, statistics (e2e)", () => {
  let server: TestServer;
  let chat: AppCredentials;
  let build: Build;

  before(async () => {
    server = await startServer({
      name: "licensing-clients",
      users: Object.fromEntries(USERS.map((u) => [u, PW])),
      config: { modules: { licensing: { pollIntervalMs: 250, queryClientVersion: true } } },
    });
    chat = await registerApp(server, "com.example.chat");
    build = {
      clientId: chat.clientId,
      keyId: chat.keyId,
      privateKeyPem: chat.privateKeyPem,
      version: "5.0.1",
    };
    await policySet(
      server,
      "--mode",
      "warn",
      "--exempt",
      "support",
      "--app",
      chat.clientId,
      "--upgrade-url",
      UPGRADE_URL,
    );
  });
  after(async () => {
    await server.stop();
  });

  test("stats clients --json agrees with the sessions open (warn mode)", async (t) => {
    const peers: Peer[] = [];
    try {
      peers.push(await connectLicensed(server, login("carol"), build));
      peers.push(await connectLicensed(server, login("dave"), build));
      peers.push(await connectPlain(server, login("alice")));
      peers.push(await connectPlain(server, login("support")));
      if (!slixSkip) peers.push(await connectSlix(server, login("bob")));
      const total = peers.length;

      const slixKnown = (r: StatsReport) =>
        slixSkip || r.live?.rows.some((row) => row.status === "unverified");
      const report = await statsWhen(server, (r) => r.live?.sessions === total && slixKnown(r) === true);
      const live = report.live;
      assert.ok(live, `no live figures: ${JSON.stringify(report)}`);
      t.diagnostic(`live rows: ${JSON.stringify(live.rows)}`);
      assert.equal(live.sessions, total, JSON.stringify(live));
      assert.equal(live.accounts, total);
      const licensed = live.rows.filter((r) => r.status === "verified");
      assert.deepEqual(
        licensed.map(({ clientId, version, platform, sessions, accounts }) => ({
          clientId,
          version,
          platform,
          sessions,
          accounts,
        })),
        [{ clientId: chat.clientId, version: "5.0.1", platform: "linux", sessions: 2, accounts: 2 }],
      );
      const unknown = live.rows.filter((r) => r.status === "unknown");
      assert.equal(
        unknown.reduce((n, r) => n + r.sessions, 0),
        2,
        "two @xmpp/client sessions (no proof, no version answer)",
      );
      if (!slixSkip) {
        const unverified = live.rows.filter((r) => r.status === "unverified");
        assert.equal(unverified.length, 1, JSON.stringify(live.rows));
        assert.ok(unverified[0]!.clientId, "the name slixmpp gave in XEP-0092");
        assert.equal(unverified[0]!.sessions, 1);
      }
      assert.equal(live.supported.accounts, total);
      assert.equal(live.supported.supportedAccounts, 2, "carol and dave run a licensed client");
      // Enforcement now would cut off alice (and bob), not the exempt support account.
      assert.equal(live.cutoff.sessions, total - 3);
      assert.equal(live.cutoff.accounts, total - 3);
      assert.deepEqual(live.cutoff.spared.exempt, { sessions: 1, accounts: 1 });
      // Daily: every account that logged in today, once.
      assert.equal(report.daily.accounts, total);
      assert.equal(report.daily.supported.supportedAccounts, 2);

      // The unlicensed, non-exempt sessions end: the live figures follow, the day's do not forget them.
      const [, , alice, , bob] = peers;
      await alice!.close();
      await bob?.close();
      const later = await statsWhen(server, (r) => r.live?.sessions === 3);
      assert.equal(later.live?.sessions, 3, JSON.stringify(later.live));
      assert.equal(later.live?.cutoff.sessions, 0, "nothing left to cut off");
      assert.equal(later.live?.supported.supportedAccounts, 2);
      assert.equal(later.daily.accounts, total);
    } finally {
      for (const p of peers) await p.close();
    }
  });

  describe("the example chat client (sdk/examples/licensed-chat.ts)", () => {
    before(async () => {
      await policySet(server, "--mode", "enforce");
    });

    test("connects under enforce, prints messages and presence, sends lines", async () => {
      const bob = await connectLicensed(server, login("bob", "sdk"), build);
      const alice = startChatExample(server, { user: "alice", password: PW, app: chat, version: "5.0.1" });
      try {
        await alice.line(/^\* connected as alice@localhost\/cli \(mode enforce\)$/, "the connected line");
        await bob.send(xml("presence", { to: "alice@localhost/cli" }, xml("status", {}, "at my desk")));
        await alice.line(/^\* bob@localhost\/sdk is available \(at my desk\)$/, "bob's presence");
        await bob.send(
          xml("message", { to: "alice@localhost/cli", type: "chat" }, xml("body", {}, "hello alice")),
        );
        await alice.line(/^< bob@localhost\/sdk: hello alice$/, "bob's message");
        alice.write("/to bob@localhost/sdk");
        await alice.line(/^\* talking to bob@localhost\/sdk$/, "the /to confirmation");
        alice.write("hi bob, from the example client");
        const msg = await bob.next(is.message({ body: "hi bob, from the example client" }), "alice's line");
        assert.equal(msg.attrs.from, "alice@localhost/cli");
        alice.write("/quit");
        assert.equal(await alice.exitCode(), 0);
      } finally {
        alice.kill();
        await bob.close();
      }
    });

    test("prints the upgrade notice and exits when its version is refused, live and at login", async () => {
      const alice = startChatExample(server, { user: "alice", password: PW, app: chat, version: "5.0.1" });
      try {
        await alice.line(/^\* connected as/, "the connected line");
        await policySet(server, "--app", chat.clientId, "--min-version", "6.0");
        const notice = await alice.line(/^! refused:/, "the refusal notice");
        assert.match(
          notice,
          /^! refused: version-too-old \(.+\); minimum version 6\.0; upgrade: https:\/\/example\.com\/chat\/download$/,
        );
        assert.equal(await alice.exitCode(), EXIT_REFUSED);
      } finally {
        alice.kill();
      }
      const again = startChatExample(server, { user: "alice", password: PW, app: chat, version: "5.0.1" });
      try {
        const notice = await again.line(/^! refused:/, "the refusal notice at login");
        assert.match(notice, /version-too-old.*minimum version 6\.0; upgrade: https:\/\/example\.com/);
        assert.equal(await again.exitCode(), EXIT_REFUSED);
      } finally {
        again.kill();
      }
      await policySet(server, "--app", chat.clientId, "--min-version", "5.0");
    });
  });

  describe("the Python/slixmpp proof (docs/examples/licence_proof.py)", { skip: pythonSkip }, () => {
    test("logs in under enforce with its proof", async () => {
      const py = runPythonExample(server, { user: "carol", password: PW, app: chat, version: "5.0.1" });
      await py.line(/^licence accepted$/, "the licence acceptance");
      await py.line(/^session started as carol@localhost\/py$/, "the session");
      assert.equal(await py.exitCode(), 0, py.errors);
    });

    test("is refused below the minimum version, with the minimum and the upgrade URL", async () => {
      const py = runPythonExample(server, { user: "carol", password: PW, app: chat, version: "4.9" });
      const line = await py.line(/^refused:/, "the refusal");
      assert.match(
        line,
        /^refused: version-too-old minimum=5\.0 upgrade-url=https:\/\/example\.com\/chat\/download /,
      );
      assert.equal(await py.exitCode(), EXIT_REFUSED, py.errors);
    });
  });
});
