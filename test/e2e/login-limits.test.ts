/**
 * Password guessing against the real server, from several machines (other loopback
 * addresses): a guesser's address is refused after its failures, an account under attack
 * is slowed but its owner always gets in, and the log says both.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";

const PW = { alice: "alice-owner-pw", bob: "bob-owner-pw" };
const PER_ADDRESS = 4;
const PER_ACCOUNT = 3;

describe("login limits", () => {
  let server: TestServer;
  const opened: RawConnection[] = [];

  async function attempt(
    from: string,
    user: string,
    password: string,
  ): Promise<{ outcome: string; text: string; ms: number }> {
    const c = await RawConnection.open(server, { label: `${user} from ${from}`, localAddress: from });
    opened.push(c);
    const start = Date.now();
    const r = await c.tryPlain(server.domain, user, password);
    c.destroy();
    return { ...r, ms: Date.now() - start };
  }

  before(async () => {
    server = await startServer({
      name: "login-limits",
      users: PW,
      extraArgs: ["--log-level", "warn"],
      config: {
        limits: {
          authFailuresPerAddress: PER_ADDRESS,
          authFailuresPerAccount: PER_ACCOUNT,
          authSlowdownMaxSeconds: 2,
        },
      },
    });
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await server.stop();
  });

  test("strangers guessing alice's password cannot keep her out", async () => {
    // The owner logged in before from her usual address.
    assert.equal((await attempt("127.0.0.1", "alice", PW.alice)).outcome, "success");
    // Guesses from several other machines, more than the account's threshold.
    for (let i = 0; i < PER_ACCOUNT + 2; i++) {
      const r = await attempt(`127.0.0.${20 + i}`, "alice", `guess-${i}`);
      assert.equal(r.outcome, "not-authorized", `guess ${i}: ${JSON.stringify(r)}`);
    }
    // From her usual address: in at once.
    const usual = await attempt("127.0.0.1", "alice", PW.alice);
    assert.equal(usual.outcome, "success");
    assert.ok(usual.ms < 1000, `the owner's usual address was slowed: ${usual.ms} ms`);
    // From a new address: slowed, but in.
    const fresh = await attempt("127.0.0.50", "alice", PW.alice);
    assert.equal(fresh.outcome, "success");
    assert.ok(fresh.ms >= 900, `a new address is slowed while the account is under attack (${fresh.ms} ms)`);
    // Another account is not affected at all.
    const bob = await attempt("127.0.0.51", "bob", PW.bob);
    assert.equal(bob.outcome, "success");
    assert.ok(bob.ms < 1000, `bob was slowed: ${bob.ms} ms`);
    assert.match(readFileSync(server.logFile, "utf8"), /login attempts on this account slowed/);
  });

  test("a guessing address is refused, for every account, until its failures age out", async () => {
    const guesser = "127.0.0.99";
    for (let i = 0; i < PER_ADDRESS; i++) {
      const r = await attempt(guesser, i % 2 ? "bob" : "carol", `wrong-${i}`);
      assert.equal(r.outcome, "not-authorized");
    }
    const refused = await attempt(guesser, "bob", PW.bob);
    assert.equal(refused.outcome, "temporary-auth-failure");
    assert.match(refused.text, /too many failed attempts from this address/);
    assert.equal((await attempt("127.0.0.98", "bob", PW.bob)).outcome, "success", "other addresses log in");
    assert.match(readFileSync(server.logFile, "utf8"), /login attempts from this address refused/);
  });

  test("refusals before any password is checked are not failed logins (slixmpp at its defaults, five times)", {
    skip: slixSkip,
  }, async () => {
    // Each slixmpp login at its defaults once cost four refused attempts; five such logins
    // from one address would have crossed PER_ADDRESS. Now each gets in on the first try.
    for (let i = 0; i < 5; i++) {
      const peer = await connectSlix(server, {
        user: "bob",
        password: PW.bob,
        resource: `default-${i}`,
        mechanism: "auto",
      });
      await peer.close();
    }
  });
});
