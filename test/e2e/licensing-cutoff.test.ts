/**
 * Scheduled cutoffs against the real server, on the wall clock (a few seconds
 * ahead): at the instant every live session of an unlicensed client is closed
 * and new ones are refused, without a restart; licensed and exempt sessions
 * stay. The schedule is stored, so a cutoff set before a restart happens at its
 * instant after it, and one that passed while the server was down is in force
 * when it starts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  type Build,
  connectLicensed,
  connectPlain,
  licensedRefusal,
  type PlainPeer,
  plainRefusal,
} from "../helpers/licensed-peer.js";
import {
  type AppCredentials,
  instantIn,
  policySet,
  registerApp,
  sleepUntil,
} from "../helpers/licensed-setup.js";
import { type ServerOptions, startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";

const PW = "cutoff-e2e-pw";
const USERS = ["alice", "bob", "carol", "dave", "support"];
/** A session must be closed within this of the cutoff instant. */
const AT_INSTANT_MS = 1000;

const login = (user: string, resource = "r1") => ({ user, password: PW, resource });
const OPTIONS: Omit<ServerOptions, "users"> = {
  name: "licensing-cutoff",
  config: { modules: { licensing: { pollIntervalMs: 250 } } },
  // The log says when the policy closed which session: what a missed instant needs to be read.
  extraArgs: ["--log-level", "info"],
};

/** Checks that a plain session was closed by the cutoff, at its instant. */
async function assertCutOff(peer: PlainPeer, at: number): Promise<void> {
  await Promise.race([peer.ended, new Promise((r) => setTimeout(r, at - Date.now() + 5000))]);
  assert.ok(peer.endedAt > 0, `${peer.label} was not closed by the cutoff`);
  assert.equal(peer.refusal?.condition, "unlicensed-client", `${peer.label}: ${peer.streamErrors.all()}`);
  assert.equal(peer.refusal?.streamCondition, "policy-violation");
  const late = peer.endedAt - at;
  assert.ok(late > -50, `${peer.label} closed ${-late} ms before the cutoff`);
  assert.ok(late < AT_INSTANT_MS, `${peer.label} closed ${late} ms after the cutoff`);
}

describe("scheduled cutoff (e2e, wall clock)", () => {
  let server: TestServer;
  let chat: AppCredentials;
  let licensed: Build;

  before(async () => {
    server = await startServer({ ...OPTIONS, users: Object.fromEntries(USERS.map((u) => [u, PW])) });
    chat = await registerApp(server, "com.example.chat");
    licensed = {
      clientId: chat.clientId,
      keyId: chat.keyId,
      privateKeyPem: chat.privateKeyPem,
      version: "5.0.1",
    };
    await policySet(server, "--mode", "warn", "--exempt", "support");
  });
  after(async () => {
    if (server.running) await server.stop();
  });

  test("at the instant: unlicensed sessions closed, new ones refused; licensed and exempt stay", async (t) => {
    const alice = await connectPlain(server, login("alice"));
    const support = await connectPlain(server, login("support"));
    const carol = await connectLicensed(server, login("carol"), licensed);
    const bob: SlixPeer | undefined = slixSkip ? undefined : await connectSlix(server, login("bob"));

    // Leads of several seconds: the CLI must have recorded the stage before the instant,
    // also on a busy machine (a CLI run takes seconds there).
    const cutoff = instantIn(8000);
    await policySet(server, "--stage", `${cutoff.iso}=enforce`);
    // Clients that connect now are told when the cutoff is.
    const dave = await connectLicensed(server, login("dave"), licensed);
    assert.equal(dave.xmpp.licence.offer?.cutoff, cutoff.iso);
    assert.equal(dave.xmpp.licence.offer?.mode, "warn");

    await assertCutOff(alice, cutoff.at);
    t.diagnostic(`@xmpp/client closed ${alice.endedAt - cutoff.at} ms after the cutoff instant`);
    if (bob) {
      await Promise.race([bob.ended, new Promise((r) => setTimeout(r, 3000))]);
      assert.deepEqual(bob.streamErrors.all(), ["policy-violation"], "slixmpp session at the cutoff");
    }
    await support.sync();
    await carol.sync();
    await dave.sync();
    assert.equal((await plainRefusal(server, login("alice", "after"))).condition, "unlicensed-client");
    for (const p of [support, carol, dave]) await p.close();
    await bob?.close();
  });

  test("a cutoff scheduled before a restart happens at its instant after it", async (t) => {
    await policySet(server, "--clear-stages", "--mode", "warn");
    const cutoff = instantIn(16_000);
    await policySet(server, "--stage", `${cutoff.iso}=enforce`);
    await server.stop({ keepData: true });
    server = await startServer({ ...OPTIONS, dataDir: server.dataDir });
    assert.ok(Date.now() < cutoff.at - 1000, "the restart took too long for this test");

    const alice = await connectPlain(server, login("alice", "restarted"));
    const carol = await connectLicensed(server, login("carol", "restarted"), licensed);
    assert.equal(carol.xmpp.licence.offer?.cutoff, cutoff.iso, "the schedule survived the restart");
    await assertCutOff(alice, cutoff.at);
    t.diagnostic(`closed ${alice.endedAt - cutoff.at} ms after the cutoff instant (after a restart)`);
    await carol.sync();
    assert.equal((await plainRefusal(server, login("alice", "after"))).condition, "unlicensed-client");
    await carol.close();
  });

  test("a cutoff that passed while the server was down is in force when it starts", async () => {
    await policySet(server, "--clear-stages", "--mode", "open");
    const cutoff = instantIn(6000);
    await policySet(server, "--stage", `${cutoff.iso}=enforce`);
    await server.stop({ keepData: true });
    assert.ok(Date.now() < cutoff.at, "the server must be down at the cutoff instant");
    await sleepUntil(cutoff.at + 300);
    server = await startServer({ ...OPTIONS, dataDir: server.dataDir, removeDataOnStop: true });
    assert.equal((await plainRefusal(server, login("alice", "late"))).condition, "unlicensed-client");
    const carol = await connectLicensed(server, login("carol", "late"), licensed);
    assert.equal(carol.xmpp.licence.offer?.mode, "enforce");
    await carol.close();
    // Version rules still apply after the restart.
    await policySet(server, "--app", chat.clientId, "--min-version", "6");
    assert.equal((await licensedRefusal(server, login("carol"), licensed)).condition, "version-too-old");
  });
});
