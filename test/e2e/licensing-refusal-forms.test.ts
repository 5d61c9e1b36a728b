/**
 * What users of mainstream clients see when the licensing policy refuses them
 * (docs/licensing-protocol.md §3.1), with real clients at their defaults:
 *
 * - a live session at a cutoff gets a headline from the server before the stream
 *   error; profanity (in tmux: what its screen shows) prints it before "Lost
 *   connection.", slixmpp reports the message before the stream error;
 * - a new login under enforce gets a SASL failure (account-disabled) with the
 *   server's text, then the stream error: slixmpp reports the text; profanity
 *   shows "Login failed." (profanity 0.13 shows no server text at login, from any
 *   element: the table in §3.1).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { slixOutcome } from "../helpers/licensed-peer.js";
import { instantIn, policySet, sleepUntil } from "../helpers/licensed-setup.js";
import { ProfanityScreen, profanitySkip } from "../helpers/profanity.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";

const PW = "refusal-forms-pw";
const INFO_URL = "https://example.net/licensed-clients";
const USERS = ["alice", "bob", "carol", "dave"];
const login = (user: string, resource: string) => ({ user, password: PW, resource });

/** The headline's body (protocol.ts refusalNotice), as one line of text. */
const NOTICE =
  /Headline: You have been disconnected, and the same client will be refused again\. This network admits licensed client software only, and this client did not prove a licence\. Licensed clients: (\S+)/;

describe("refusals as mainstream clients show them (e2e)", { skip: profanitySkip || slixSkip }, () => {
  let server: TestServer;
  const screens: ProfanityScreen[] = [];
  const peers: SlixPeer[] = [];

  before(async () => {
    server = await startServer({
      name: "licensing-refusal-forms",
      users: Object.fromEntries(USERS.map((u) => [u, PW])),
      config: { modules: { licensing: { pollIntervalMs: 250 } } },
    });
    await policySet(server, "--mode", "warn", "--info-url", INFO_URL);
  });
  after(async () => {
    for (const s of screens) await s.stop();
    for (const p of peers) p.kill();
    if (server?.running) await server.stop();
  });

  test("at the cutoff a live session gets the server's text before the stream is closed", async (t) => {
    const alice = ProfanityScreen.start(server, login("alice", "profanity"));
    screens.push(alice);
    await alice.waitFor(/logged in successfully/, "the login");
    const bob = await connectSlix(server, login("bob", "slixmpp"));
    peers.push(bob);

    // A lead of several seconds: the CLI must have recorded the stage before the instant.
    const cutoff = instantIn(8000);
    await policySet(server, "--stage", `${cutoff.iso}=enforce`);
    await sleepUntil(cutoff.at);

    // profanity: the headline on the console, then its own "Lost connection." below it.
    const [line, url] = await alice.waitFor(NOTICE, "the disconnection notice");
    assert.equal(url, INFO_URL);
    await alice.waitFor(/Lost connection\./, "the lost connection");
    const screen = alice.screen();
    assert.ok(screen.indexOf(line) < screen.lastIndexOf("Lost connection."), screen);
    t.diagnostic(`profanity shows: ${line.trim()}`);

    // slixmpp: the message from the domain, then the stream error with its licence condition.
    await Promise.race([bob.ended, new Promise((r) => setTimeout(r, 10_000))]);
    const notice = bob.stanzas
      .all()
      .find((el) => el.attrs.type === "headline" && /disconnected/.test(el.getChildText("body") ?? ""));
    assert.ok(notice, `slixmpp got no notice: ${bob.stanzas.all().join("\n")}`);
    assert.equal(notice.attrs.from, server.domain);
    assert.ok(notice.getChildText("body")?.endsWith(INFO_URL));
    assert.deepEqual(bob.streamErrors.all(), ["policy-violation"]);
    const noticeAt = bob.timeline.lastIndexOf("stanza");
    assert.ok(noticeAt >= 0 && noticeAt < bob.timeline.indexOf("stream_error"), bob.timeline.join(" "));
  });

  test("a new login under enforce: the SASL failure's text, then the stream error", async (t) => {
    // The previous test left the network in enforce.
    const outcome = await slixOutcome(server, login("carol", "slixmpp"));
    assert.equal(outcome.sessionStarted, false);
    assert.equal(outcome.authFailures[0]?.condition, "account-disabled", JSON.stringify(outcome));
    assert.match(outcome.authFailures[0]?.text ?? "", /licensed client software only/);
    assert.ok(outcome.authFailures[0]?.text.endsWith(INFO_URL), outcome.authFailures[0]?.text);
    assert.deepEqual(outcome.streamErrors, ["policy-violation"]);

    const dave = ProfanityScreen.start(server, login("dave", "profanity"));
    screens.push(dave);
    await dave.waitFor(/Login failed\./, "the refused login");
    assert.doesNotMatch(dave.screen(), /logged in successfully/);
    t.diagnostic("profanity 0.13 shows only 'Login failed.' (it displays no SASL failure text)");
  });
});
