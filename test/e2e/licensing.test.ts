/**
 * Licensed client access against the real server, set up with the CLI as an
 * operator would: standard clients (@xmpp/client, slixmpp) and the SDK client
 * in open, warn and enforce modes; version rules; rollout and exemptions;
 * replayed, repeated and forged proofs; and live enforcement: revoking or
 * suspending a licence or a key, or raising the minimum version, closes the
 * sessions concerned within a second, and a licence's end and session limit
 * are applied.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, type TestContext, test } from "node:test";
import tls from "node:tls";
import type { LicenceTicket, TicketStore } from "../../sdk/licensed-client.js";
import { accountBucket } from "../../src/licensing/index.js";
import { connectJs } from "../helpers/js-client.js";
import {
  type Build,
  connectLicensed,
  connectPlain,
  type LicensedPeer,
  licensedRefusal,
  plainRefusal,
  slixOutcome,
} from "../helpers/licensed-peer.js";
import { ProofStream } from "../helpers/licensed-raw.js";
import {
  type AppCredentials,
  addKey,
  cli,
  instantIn,
  LICENCE_NS,
  policySet,
  registerApp,
  settle,
  sleepUntil,
} from "../helpers/licensed-setup.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import type { Element } from "../helpers/stanza.js";

const PW = "licensing-e2e-pw";
const USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "support", "grace", "heidi", "ivan"];
const INFO_URL = "https://clients.example.net/";
const UPGRADE_URL = "https://example.com/chat/download";
/** Closing a session after a registry change: the module polls every 250 ms. */
const CLOSE_WITHIN_MS = 1000;

const login = (user: string, resource = "r1") => ({ user, password: PW, resource });
const build = (app: AppCredentials, version = "5.0.1"): Build => ({
  clientId: app.clientId,
  keyId: app.keyId,
  privateKeyPem: app.privateKeyPem,
  version,
});

function licenceFeature(features: Element[]): Element | undefined {
  for (const f of features) {
    const l = f.getChild("licence", LICENCE_NS);
    if (l) return l;
  }
  return undefined;
}

const isWarning = (el: Element) =>
  el.name === "message" &&
  el.attrs.type === "headline" &&
  el.attrs.from === "localhost" &&
  el.getChild("unlicensed-client", LICENCE_NS) !== undefined;

/** Two accounts on either side of a 50 % rollout (the bucket is a stable hash of the localpart). */
function rolloutAccounts(): { inside: string; outside: string } {
  let inside: string | undefined;
  let outside: string | undefined;
  for (let i = 0; !inside || !outside; i++) {
    const name = `roll${i}`;
    if (accountBucket(name) < 50) inside ??= name;
    else outside ??= name;
  }
  return { inside, outside };
}

describe("licensed client access (e2e)", () => {
  let server: TestServer;
  let chat: AppCredentials;
  const open: { close(): Promise<void> }[] = [];
  const keep = <T extends { close(): Promise<void> }>(p: T): T => {
    open.push(p);
    return p;
  };

  before(async () => {
    server = await startServer({
      name: "licensing",
      users: Object.fromEntries(USERS.map((u) => [u, PW])),
      config: { modules: { licensing: { pollIntervalMs: 250, maxProofFailuresPerAddress: 1000 } } },
    });
    chat = await registerApp(server, "com.example.chat", { platforms: ["linux", "android"] });
  });
  after(async () => {
    for (const p of open) await p.close().catch(() => undefined);
    await server.stop();
  });

  describe("open mode (the default)", () => {
    test("@xmpp/client without a proof logs in; the <licence/> feature says mode='open'", async () => {
      const alice = keep(await connectJs(server, login("alice")));
      const feature = licenceFeature(alice.features);
      assert.ok(feature, `no <licence/> feature among ${alice.features.map(String).join("\n")}`);
      assert.equal(feature.attrs.mode, "open");
      assert.equal(feature.attrs.cutoff, undefined, "no cutoff scheduled");
      assert.match(feature.getChildText("nonce") ?? "", /^[A-Za-z0-9+/]{43}=$/, "32 random bytes, base64");
      assert.equal(feature.getChild("channel-binding")?.attrs.type, "tls-exporter", "TLS 1.3");
      await alice.close();
    });

    test("slixmpp without a proof logs in", { skip: slixSkip }, async () => {
      const bob = await connectSlix(server, { ...login("bob"), resource: "slix" });
      await bob.sync();
      await bob.close();
    });

    test("SDK client: proof accepted, bound with tls-exporter (STARTTLS)", async () => {
      const carol = keep(await connectLicensed(server, login("carol"), build(chat)));
      assert.equal(carol.xmpp.licence.offer?.mode, "open");
      assert.equal(carol.xmpp.licence.offer?.bindingType, "tls-exporter");
      assert.ok(carol.xmpp.licence.accepted, "no <success/>");
      await carol.sync();
      await carol.close();
    });

    test("SDK client: the second login proves with the ticket the first earned (inside SASL2); after a key rotation it signs again", async () => {
      await ticketScenario(server, chat, "sasl2");
    });

    test("SDK client over direct TLS (XEP-0368)", async () => {
      const carol = await connectLicensed(server, { ...login("carol"), directTls: true }, build(chat));
      assert.ok(carol.xmpp.licence.accepted);
      await carol.close();
    });

    test("SDK client over TLS 1.2: bound with tls-server-end-point", async () => {
      const saved = tls.DEFAULT_MAX_VERSION;
      tls.DEFAULT_MAX_VERSION = "TLSv1.2";
      try {
        const carol = await connectLicensed(server, login("carol"), build(chat));
        assert.equal(carol.xmpp.licence.offer?.bindingType, "tls-server-end-point");
        assert.ok(carol.xmpp.licence.accepted);
        await carol.close();
      } finally {
        tls.DEFAULT_MAX_VERSION = saved;
      }
    });

    test("version rules apply to licensed apps in every mode: minimum, blocked range, recommended", async () => {
      await policySet(
        server,
        "--app",
        chat.clientId,
        "--min-version",
        "5.0",
        "--recommended",
        "5.1",
        "--block",
        "5.0.3-5.0.4",
        "--upgrade-url",
        UPGRADE_URL,
      );
      const old = await licensedRefusal(server, login("carol"), build(chat, "4.7.2009"));
      assert.equal(old.condition, "version-too-old");
      assert.equal(old.streamCondition, "policy-violation");
      assert.equal(old.minimum, "5.0");
      assert.equal(old.upgradeUrl, UPGRADE_URL);
      assert.match(old.text, /5\.0/);

      const blocked = await licensedRefusal(server, login("carol"), build(chat, "5.0.3"));
      assert.equal(blocked.condition, "version-blocked");
      assert.deepEqual([blocked.details.from, blocked.details.to], ["5.0.3", "5.0.4"]);
      assert.equal(blocked.upgradeUrl, UPGRADE_URL);

      // "5" is "5.0": at the minimum, so accepted; 5.0.1 is told that 5.1 is recommended.
      const five = await connectLicensed(server, login("carol"), build(chat, "5"));
      await five.close();
      const behind = await connectLicensed(server, login("carol"), build(chat, "5.0.1"));
      assert.deepEqual(behind.xmpp.licence.accepted?.recommended, { version: "5.1", url: UPGRADE_URL });
      await behind.close();
      const current = await connectLicensed(server, login("carol"), build(chat, "5.1"));
      assert.equal(current.xmpp.licence.accepted?.recommended, undefined);
      await current.close();
    });
  });

  describe("warn mode", () => {
    before(async () => {
      await policySet(server, "--mode", "warn", "--info-url", INFO_URL);
    });

    test("@xmpp/client without a proof: logs in, gets one headline; not again on the next login", async () => {
      const alice = await connectJs(server, login("alice", "w1"));
      assert.equal(licenceFeature(alice.features)?.attrs.mode, "warn");
      const warning = await alice.next(isWarning, "the unlicensed-client headline");
      assert.match(warning.getChildText("body") ?? "", new RegExp(INFO_URL.replace(/[./]/g, "\\$&")));
      assert.equal(warning.getChild("unlicensed-client", LICENCE_NS)?.attrs["info-url"], INFO_URL);
      await alice.close();
      const again = await connectJs(server, login("alice", "w2"));
      await again.sync();
      await again.none(isWarning, "a second headline the same day", 1500);
      await again.close();
    });

    test("slixmpp without a proof: logs in and gets the headline", { skip: slixSkip }, async () => {
      const bob = await connectSlix(server, { ...login("bob"), resource: "warned" });
      try {
        await bob.next(isWarning, "the unlicensed-client headline");
      } finally {
        await bob.close();
      }
    });

    test("SDK client: no headline", async () => {
      const carol = await connectLicensed(server, login("carol", "w"), build(chat));
      assert.equal(carol.xmpp.licence.offer?.mode, "warn");
      await carol.sync();
      await carol.none(isWarning, "a headline to a licensed client", 1500);
      await carol.close();
    });
  });

  describe("enforce mode", () => {
    before(async () => {
      await policySet(server, "--mode", "enforce");
    });

    test("@xmpp/client without a proof is refused before its password is checked", async () => {
      // A wrong password still gets the licence refusal, not SASL not-authorized.
      const wrong = await plainRefusal(server, { user: "dave", password: "not-the-password" });
      assert.equal(wrong.condition, "unlicensed-client");
      assert.equal(wrong.streamCondition, "policy-violation");
      assert.equal(wrong.details["info-url"], INFO_URL);
      const right = await plainRefusal(server, login("dave"));
      assert.equal(right.condition, "unlicensed-client");
    });

    test("slixmpp without a proof is refused: the SASL failure's text, then policy-violation", {
      skip: slixSkip,
    }, async () => {
      const outcome = await slixOutcome(server, { ...login("erin"), resource: "slix" });
      assert.equal(outcome.sessionStarted, false, "slixmpp logged in under enforce");
      assert.equal(outcome.authFailures[0]?.condition, "account-disabled");
      assert.ok(outcome.authFailures[0]?.text.includes(INFO_URL), JSON.stringify(outcome.authFailures));
      assert.deepEqual(outcome.streamErrors, ["policy-violation"]);
    });

    test("SDK client is accepted", async () => {
      const carol = keep(await connectLicensed(server, login("carol", "e"), build(chat)));
      assert.equal(carol.xmpp.licence.offer?.mode, "enforce");
      await carol.sync();
      await carol.close();
    });

    test("an exempt account logs in with any client", async () => {
      await plainRefusal(server, login("support"));
      await policySet(server, "--exempt", "support");
      const support = await connectPlain(server, login("support"));
      await support.sync();
      await support.close();
    });

    test("an exempt account also gets in with a licensed app the policy refuses; others are refused at SASL start", async () => {
      await policySet(server, "--exempt", "support", "--app", "com.example.chat", "--min-version", "5.0");
      const support = await connectLicensed(server, login("support", "old"), build(chat, "4.7.2009"));
      await support.sync();
      await support.close();
      const carol = await licensedRefusal(server, login("carol", "old"), build(chat, "4.7.2009"));
      assert.equal(carol.condition, "version-too-old");
      assert.equal(carol.minimum, "5.0");
    });

    test("rollout: enforce at 50 % refuses the accounts in the first half of the hash range only", async () => {
      const { inside, outside } = rolloutAccounts();
      await server.addUser(inside, PW);
      await server.addUser(outside, PW);
      const past = new Date(Date.now() - 60_000).toISOString();
      await policySet(server, "--mode", "warn", "--stage", `${past}=enforce@50`);
      const refused = await plainRefusal(server, login(inside));
      assert.equal(refused.condition, "unlicensed-client");
      const allowed = await connectJs(server, login(outside));
      await allowed.next(isWarning, "the warning (the account is outside the rollout, in warn)");
      await allowed.close();
      await policySet(server, "--clear-stages", "--mode", "enforce");
      await plainRefusal(server, login(outside));
    });
  });

  describe("proofs that must fail", () => {
    test("a proof replayed on another stream is refused (bad-proof)", async () => {
      const carol = await connectLicensed(server, login("carol", "replay"), build(chat));
      const captured = carol.proofs[0];
      assert.ok(captured, "the SDK sent no <proof/>");
      await carol.close();
      const raw = await ProofStream.open(server);
      try {
        raw.write(captured.toString());
        assert.equal((await raw.refusal()).condition, "bad-proof");
      } finally {
        raw.destroy();
      }
    });

    test("one proof per nonce: a second proof on the same stream is refused", async () => {
      const raw = await ProofStream.open(server);
      try {
        const proof = raw.proof({ ...build(chat) });
        raw.write(proof);
        await raw.success();
        raw.write(proof);
        assert.equal((await raw.refusal()).condition, "bad-proof");
      } finally {
        raw.destroy();
      }
    });

    test("a proof signed with another key under the app's key id is refused (bad-proof)", async () => {
      const forged = generateKeyPairSync("ed25519")
        .privateKey.export({ type: "pkcs8", format: "pem" })
        .toString();
      const raw = await ProofStream.open(server);
      try {
        raw.write(raw.proof({ ...build(chat), privateKeyPem: forged }));
        assert.equal((await raw.refusal()).condition, "bad-proof");
      } finally {
        raw.destroy();
      }
    });

    test("an unknown key id, and an unknown app, are refused (unknown-key)", async () => {
      const byKey = await licensedRefusal(server, login("carol"), { ...build(chat), keyId: "k9" });
      assert.equal(byKey.condition, "unknown-key");
      const byApp = await licensedRefusal(server, login("carol"), {
        ...build(chat),
        clientId: "com.example.nope",
      });
      assert.equal(byApp.condition, "unknown-key");
    });
  });

  describe("live enforcement (sessions closed within a second)", () => {
    /** Runs a CLI command and returns how long after it returned the peer's session ended. */
    async function closedAfter(peer: LicensedPeer, args: string[], what: string, t: TestContext) {
      await cli(server, args);
      const done = Date.now();
      const refusal = await peer.refused(what);
      const ms = peer.endedAt - done;
      t.diagnostic(`${what}: session closed ${ms} ms after the CLI returned`);
      return { refusal, ms };
    }

    test("licence suspended → closed; reinstated → admitted; revoked → closed", async (t) => {
      const app = await registerApp(server, "com.example.suspend");
      const support = keep(await connectPlain(server, login("support", "watch")));
      const grace = await connectLicensed(server, login("grace"), build(app));
      const suspended = await closedAfter(grace, ["licence", "suspend", app.licenceId], "suspension", t);
      assert.equal(suspended.refusal.condition, "licence-suspended");
      assert.ok(suspended.ms < CLOSE_WITHIN_MS, `closed ${suspended.ms} ms after the CLI returned`);
      assert.equal(
        (await licensedRefusal(server, login("grace"), build(app))).condition,
        "licence-suspended",
      );

      await cli(server, ["licence", "reinstate", app.licenceId]);
      await settle();
      const again = await connectLicensed(server, login("grace", "r2"), build(app));
      const revoked = await closedAfter(again, ["licence", "revoke", app.licenceId], "revocation", t);
      assert.equal(revoked.refusal.condition, "licence-revoked");
      assert.ok(revoked.ms < CLOSE_WITHIN_MS, `closed ${revoked.ms} ms after the CLI returned`);
      // Exempt and unrelated sessions stay.
      await support.sync();
    });

    test("key rotation: sessions with the revoked key are closed, the new key's stay", async (t) => {
      const app = await registerApp(server, "com.example.rotate");
      const k2 = await addKey(server, app, "k2");
      const onK1 = await connectLicensed(server, login("heidi", "k1"), build(app));
      const onK2 = keep(await connectLicensed(server, login("heidi", "k2"), build(k2)));
      const closed = await closedAfter(
        onK1,
        ["app", "key", "revoke", app.clientId, "k1"],
        "key revocation",
        t,
      );
      assert.equal(closed.refusal.condition, "key-revoked");
      assert.ok(closed.ms < CLOSE_WITHIN_MS, `closed ${closed.ms} ms after the CLI returned`);
      await onK2.sync();
      assert.equal((await licensedRefusal(server, login("heidi"), build(app))).condition, "key-revoked");
      await onK2.close();
    });

    test("raising the minimum version closes the older builds' sessions, with the new minimum", async (t) => {
      const older = await connectLicensed(server, login("ivan", "old"), build(chat, "5.0.1"));
      const newer = keep(await connectLicensed(server, login("ivan", "new"), build(chat, "5.2")));
      const closed = await closedAfter(
        older,
        ["policy", "set", "--app", chat.clientId, "--min-version", "5.2", "--recommended", "none"],
        "new minimum version",
        t,
      );
      assert.equal(closed.refusal.condition, "version-too-old");
      assert.equal(closed.refusal.minimum, "5.2");
      assert.equal(closed.refusal.upgradeUrl, UPGRADE_URL);
      assert.ok(closed.ms < CLOSE_WITHIN_MS, `closed ${closed.ms} ms after the CLI returned`);
      await newer.sync();
      await newer.close();
    });

    test("a licence's session limit: the session over the limit is refused with the limit", async () => {
      const app = await registerApp(server, "com.example.limited", { licence: ["--max-sessions", "2"] });
      const a = keep(await connectLicensed(server, login("frank", "a"), build(app)));
      const b = keep(await connectLicensed(server, login("grace", "b"), build(app)));
      const third = await licensedRefusal(server, login("heidi", "c"), build(app));
      assert.equal(third.condition, "too-many-sessions");
      assert.equal(third.limit, 2);
      await a.close();
      const replacement = await connectLicensed(server, login("heidi", "c"), build(app));
      await replacement.close();
      await b.close();
    });

    test("a licence that ends: live sessions closed at its end, later logins refused", async (t) => {
      const app = await registerApp(server, "com.example.trial");
      const frank = await connectLicensed(server, login("frank", "trial"), build(app));
      // The end is set while the session is live: the server must wake up at that instant.
      // (Far enough ahead that the CLI has recorded it before then, also on a busy machine.)
      const end = instantIn(6000);
      await cli(server, ["licence", "extend", app.licenceId, "--until", end.iso]);
      const refusal = await frank.refused("the licence's end", end.at - Date.now() + 5000);
      assert.equal(refusal.condition, "licence-expired");
      assert.ok(frank.endedAt >= end.at - 50, `closed ${end.at - frank.endedAt} ms before the end`);
      assert.ok(
        frank.endedAt - end.at < CLOSE_WITHIN_MS,
        `closed ${frank.endedAt - end.at} ms after the end`,
      );
      t.diagnostic(`closed ${frank.endedAt - end.at} ms after the licence's end`);
      await sleepUntil(end.at + 100);
      assert.equal((await licensedRefusal(server, login("frank"), build(app))).condition, "licence-expired");
    });
  });

  test("a registry change that concerns no live session closes nothing", async () => {
    const carol = await connectLicensed(server, login("carol", "calm"), build(chat, "5.2"));
    await cli(server, ["publisher", "add", "--organisation", "Other Ltd", "--email", "other@example.com"]);
    await new Promise((r) => setTimeout(r, CLOSE_WITHIN_MS));
    await carol.sync();
    assert.equal(carol.refusals.all().length, 0);
    await carol.close();
  });
});

/**
 * An SDK client keeps the ticket its first (signed) login earned and proves with it next time;
 * after `licence tickets rotate` the ticket is refused and the client signs again. With SASL2
 * the proofs ride inside <authenticate/> and a refused ticket fails the attempt (the SDK signs
 * on a new connection); without it they stand alone and the signed proof follows on the same
 * stream.
 */
async function ticketScenario(server: TestServer, app: AppCredentials, carrier: "sasl2" | "stream") {
  let held: LicenceTicket | undefined;
  const store: TicketStore = {
    get: () => held,
    set: (t) => {
      held = t;
    },
  };
  const withTickets = { ...build(app), tickets: store };
  const carrierOf = (p: Element) => (p.parent?.name === "authenticate" ? "sasl2" : "stream");
  const first = await connectLicensed(server, login("carol", "t1"), withTickets);
  assert.equal(first.xmpp.licence.accepted?.resumed, false);
  assert.ok(held, "a ticket with the first <success/>");
  assert.ok(held.expiresAt > Date.now() + 23 * 3_600_000, "valid for the default 24 h");
  assert.deepEqual(first.proofs.map(carrierOf), [carrier]);
  await first.close();

  const second = await connectLicensed(server, login("carol", "t2"), withTickets);
  assert.equal(second.xmpp.licence.accepted?.resumed, true, "proved with the ticket");
  assert.equal(second.proofs.length, 1);
  assert.ok(second.proofs[0]?.attrs.ticket, "the proof names the ticket");
  await second.close();

  const before = held;
  await cli(server, ["licence", "tickets", "rotate"]);
  await settle();
  const third = await connectLicensed(server, login("carol", "t3"), withTickets);
  assert.equal(third.xmpp.licence.accepted?.resumed, false, "the old ticket was refused, the client signed");
  assert.deepEqual(
    third.proofs.map((p) => p.attrs.ticket !== undefined),
    [true, false],
    carrier === "sasl2"
      ? "a ticket proof, refused (a SASL2 failure), then a signed one on a new connection"
      : "a ticket proof, then a signed one on the same stream",
  );
  assert.deepEqual(third.proofs.map(carrierOf), [carrier, carrier]);
  assert.ok(held && held.ticket !== before.ticket, "a fresh ticket under the new key");
  await third.sync();
  await third.close();
}

describe("licensed client access without SASL2 (e2e)", () => {
  let server: TestServer;
  let chat: AppCredentials;

  before(async () => {
    server = await startServer({
      name: "licensing-no-sasl2",
      users: { carol: PW },
      config: { sasl2: false, modules: { licensing: { pollIntervalMs: 250 } } },
    });
    chat = await registerApp(server, "com.example.chat", { platforms: ["linux"] });
  });
  after(async () => {
    await server.stop();
  });

  test("SDK client: the proof stands alone before SASL; tickets earned, used, refused after a rotation", async () => {
    await ticketScenario(server, chat, "stream");
  });
});
