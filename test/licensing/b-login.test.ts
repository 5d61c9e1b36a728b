/**
 * Licensing at login, in process: the stream feature, proofs (good, replayed, forged,
 * wrong key, revoked key), licence states, version rules, session limits, rate limits,
 * and what unlicensed clients get in each mode (with rollout and exemptions).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { x } from "../../src/core/xml/element.js";
import { accountBucket, NS_LICENCE } from "../../src/licensing/index.js";
import { clientInfoOf } from "../../src/modules/licensing/session-info.js";
import {
  ACTOR,
  addKey,
  authenticate,
  bind,
  DAY,
  HOUR,
  type LicensingHarness,
  login,
  newSession,
  offer,
  proofFor,
  prove,
  refusalOf,
  refuser,
  registerApp,
  saslRefusalOf,
  setPolicy,
  startLicensing,
  licenceSuccess as successOf,
} from "./b-kit.js";

const harnesses: LicensingHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(options: Record<string, unknown> = {}): Promise<LicensingHarness> {
  const h = await startLicensing(options);
  harnesses.push(h);
  return h;
}

test("the feature carries a fresh 32-byte nonce, the mode, the next cutoff and the best channel binding", async () => {
  const h = await start();
  const s1 = newSession(h, {
    "tls-exporter": Buffer.alloc(32, 1),
    "tls-server-end-point": Buffer.alloc(32, 2),
  });
  const o1 = await offer(h, s1);
  assert.equal(o1.mode, "open");
  assert.equal(o1.cutoff, undefined);
  assert.equal(Buffer.from(o1.nonce, "base64").length, 32);
  assert.equal(o1.bindingType, "tls-exporter");
  const o1again = await offer(h, s1);
  assert.notEqual(o1again.nonce, o1.nonce, "each offer has its own nonce");

  const s2 = newSession(h, { "tls-server-end-point": Buffer.alloc(32, 2), "tls-unique": Buffer.alloc(12) });
  assert.equal((await offer(h, s2)).bindingType, "tls-server-end-point");
  assert.equal((await offer(h, newSession(h))).bindingType, undefined, "no TLS, no binding");

  const cutoff = h.clock.now() + 10 * DAY;
  await setPolicy(h.registry, {
    mode: "warn",
    stages: [
      { at: h.clock.now() + DAY, mode: "warn" },
      { at: cutoff, mode: "enforce" },
    ],
  });
  await h.api.recheck();
  const o3 = await offer(h, newSession(h));
  assert.equal(o3.mode, "warn");
  assert.equal(o3.cutoff, new Date(cutoff).toISOString().replace(".000Z", "Z"));
  assert.ok(h.api.counters().noncesIssued >= 5);
});

test("a valid proof is answered with success and recorded as verified", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const s = newSession(h, { "tls-exporter": Buffer.from("exporter value of this connection") });
  await prove(h, s, t, { version: "5.0.1", platform: "Linux" });
  assert.equal(s.closed, false);
  const success = successOf(s);
  assert.ok(success, "success answered");
  assert.equal(success.getChild("recommended"), undefined, "no recommendation without a recommended version");
  assert.ok(success.getChild("ticket"), "a ticket for later logins (the fake session is encrypted)");
  assert.deepEqual(clientInfoOf(s), {
    clientId: t.app.clientId,
    version: "5.0.1",
    platform: "linux",
    keyId: "k1",
    licenceId: t.licence.id,
    verified: true,
    source: "proof",
    ok: true,
  });
  assert.equal(await authenticate(h, s, "alice"), true);
  assert.equal(await bind(h, s), true);
  assert.equal(h.api.counters().proofsAccepted, 1);
});

test("a newer recommended version is suggested with the upgrade URL", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await setPolicy(h.registry, {
    apps: {
      [t.app.clientId]: {
        minVersion: "5.0",
        recommendedVersion: "5.2",
        upgradeUrl: "https://example.com/get",
      },
    },
  });
  await h.api.recheck();
  const s = await prove(h, newSession(h), t, { version: "5.1" });
  const rec = successOf(s)?.getChild("recommended");
  assert.equal(rec?.attrs.version, "5.2");
  assert.equal(rec?.attrs.url, "https://example.com/get");
  const s2 = await prove(h, newSession(h), t, { version: "5.2.0" });
  assert.equal(successOf(s2)?.getChild("recommended"), undefined);
});

test("a proof replayed on another stream, or twice on one stream, is refused as bad-proof", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const a = newSession(h);
  const proofA = proofFor(h, a, t, await offer(h, a));
  const b = newSession(h);
  await offer(h, b);
  await h.feature.handle!(b, proofA.clone());
  assert.equal(refusalOf(b).reason, "bad-proof");
  assert.equal(refusalOf(b).condition, "policy-violation");

  await h.feature.handle!(a, proofA.clone());
  assert.ok(successOf(a), "the proof is good on its own stream");
  await h.feature.handle!(a, proofA.clone());
  assert.equal(refusalOf(a).reason, "bad-proof", "the nonce is single-use");
  assert.match(refusalOf(a).text, /one proof per stream/);

  const c = newSession(h);
  await h.feature.handle!(c, proofA.clone());
  assert.equal(refusalOf(c).reason, "bad-proof", "no nonce offered on this stream");
});

test("a proof for another channel binding, a forged signature or an altered claim is refused", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();

  // Signed over another connection's exporter value (a relayed proof).
  const s1 = newSession(h, { "tls-exporter": Buffer.alloc(32, 7) });
  const o1 = await offer(h, s1);
  const relayed = proofFor(h, s1, t, o1);
  s1.bindings.set("tls-exporter", Buffer.alloc(32, 8));
  await h.feature.handle!(s1, relayed);
  assert.equal(refusalOf(s1).reason, "bad-proof");

  // Signed with a key that is not the registered one.
  const other = await registerApp(h.registry);
  await h.api.recheck();
  const s2 = await prove(h, newSession(h), t, { privateKeyPem: other.privateKeyPem });
  assert.equal(refusalOf(s2).reason, "bad-proof");

  // A good signature over version 5.0.1 presented as 6.0.
  const s3 = newSession(h);
  const p3 = proofFor(h, s3, t, await offer(h, s3));
  p3.attrs.version = "6.0";
  await h.feature.handle!(s3, p3);
  assert.equal(refusalOf(s3).reason, "bad-proof");

  // Garbage signature, missing attributes, invalid version syntax.
  const s4 = newSession(h);
  await offer(h, s4);
  await h.feature.handle!(
    s4,
    x(
      "proof",
      { xmlns: NS_LICENCE, "client-id": t.app.clientId, version: "1", platform: "linux", "key-id": "k1" },
      "AAAA",
    ),
  );
  assert.equal(refusalOf(s4).reason, "bad-proof");
  const s5 = newSession(h);
  await offer(h, s5);
  await h.feature.handle!(s5, x("proof", { xmlns: NS_LICENCE, version: "1" }, "AAAA"));
  assert.equal(refusalOf(s5).reason, "bad-proof");
  const s6 = await prove(h, newSession(h), t, { version: "5.0-beta" });
  assert.equal(refusalOf(s6).reason, "bad-proof");
  assert.match(refusalOf(s6).text, /dotted numeric/);

  assert.equal(h.api.counters().proofsRefused["bad-proof"], 6);
});

test("unknown apps and keys are refused as unknown-key; a revoked key as key-revoked, while another key works", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const s1 = await prove(h, newSession(h), t, { keyId: "k9", privateKeyPem: t.privateKeyPem });
  assert.equal(refusalOf(s1).reason, "unknown-key");
  const s2 = await prove(h, newSession(h), t, { clientId: "org.unknown.app" });
  assert.equal(refusalOf(s2).reason, "unknown-key");

  await addKey(h.registry, t, "k2");
  await h.registry.revokeKey(ACTOR, t.app.clientId, "k1");
  await h.api.recheck();
  const s3 = await prove(h, newSession(h), t, { keyId: "k1" });
  assert.equal(refusalOf(s3).reason, "key-revoked");
  const s4 = await prove(h, newSession(h), t, { keyId: "k2" });
  assert.ok(successOf(s4), "the rotated key works");
});

test("suspended, revoked, expired and not-yet-valid licences refuse the app", async () => {
  const h = await start();
  const suspended = await registerApp(h.registry);
  await h.registry.setLicenceStatus(ACTOR, suspended.licence.id, "suspended");
  const revoked = await registerApp(h.registry);
  await h.registry.setLicenceStatus(ACTOR, revoked.licence.id, "revoked");
  const expiring = await registerApp(h.registry, { validUntil: h.clock.now() + HOUR });
  const later = await registerApp(h.registry);
  await h.registry.setLicenceStatus(ACTOR, later.licence.id, "revoked");
  h.clock.advance(1); // the newer grant is the one that explains the app's standing
  await h.registry.grantLicence(ACTOR, { clientId: later.app.clientId, validFrom: h.clock.now() + DAY });
  await h.api.recheck();

  assert.equal(refusalOf(await prove(h, newSession(h), suspended)).reason, "licence-suspended");
  assert.equal(refusalOf(await prove(h, newSession(h), revoked)).reason, "licence-revoked");
  assert.ok(successOf(await prove(h, newSession(h), expiring)), "valid before its end");
  h.clock.advance(HOUR);
  assert.equal(refusalOf(await prove(h, newSession(h), expiring)).reason, "licence-expired");
  const pending = refusalOf(await prove(h, newSession(h), later));
  assert.equal(pending.reason, "unlicensed-client");
  assert.match(pending.text, /valid from/);
  h.clock.advance(DAY);
  assert.ok(successOf(await prove(h, newSession(h), later)), "the new licence is in force");

  await h.registry.setLicenceStatus(ACTOR, suspended.licence.id, "active");
  await h.api.recheck();
  assert.ok(successOf(await prove(h, newSession(h), suspended)), "reinstated");
});

test("version rules apply to licensed apps in open mode: minimum and blocked ranges, with minimum and URL", async () => {
  const h = await start();
  const t = await registerApp(h.registry, { name: "Example Chat" });
  await setPolicy(h.registry, {
    mode: "open",
    upgradeUrl: "https://example.net/clients",
    apps: {
      [t.app.clientId]: {
        minVersion: "5.0",
        blocked: [{ from: "5.1.0", to: "5.1.3", reason: "message loss" }],
        upgradeUrl: "https://example.com/upgrade",
      },
    },
  });
  await h.api.recheck();

  const old = refusalOf(await prove(h, newSession(h), t, { version: "4.7.2009" }));
  assert.equal(old.condition, "policy-violation");
  assert.equal(old.reason, "version-too-old");
  assert.equal(old.attrs.minimum, "5.0");
  assert.equal(old.attrs["upgrade-url"], "https://example.com/upgrade");
  assert.match(old.text, /Example Chat 4\.7\.2009 .*5\.0 or later.*https:\/\/example\.com\/upgrade/);

  const blocked = refusalOf(await prove(h, newSession(h), t, { version: "5.1.2" }));
  assert.equal(blocked.reason, "version-blocked");
  assert.equal(blocked.attrs.from, "5.1.0");
  assert.equal(blocked.attrs.to, "5.1.3");
  assert.equal(blocked.attrs.minimum, "5.0");
  assert.equal(blocked.attrs["upgrade-url"], "https://example.com/upgrade");
  assert.match(blocked.text, /message loss/);

  for (const ok of ["5", "5.0", "5.0.1", "5.0.99", "5.1.4", "12"]) {
    assert.ok(successOf(await prove(h, newSession(h), t, { version: ok })), `version ${ok} is admitted`);
  }

  // Without an app URL the policy's default is quoted.
  await setPolicy(h.registry, { apps: { [t.app.clientId]: { minVersion: "6" } } });
  await h.api.recheck();
  const old2 = refusalOf(await prove(h, newSession(h), t, { version: "5.9" }));
  assert.equal(old2.attrs["upgrade-url"], "https://example.net/clients");
});

test("with exemptions, a refused licensed app is refused once the account is known: exempt accounts get in", async () => {
  const h = await start();
  const t = await registerApp(h.registry, { name: "Example Chat" });
  await setPolicy(h.registry, {
    mode: "open",
    exemptions: ["support"],
    apps: { [t.app.clientId]: { minVersion: "5.0" } },
  });
  await h.api.recheck();

  // The proof is good, so it is answered; no ticket for a client still to be judged.
  const support = await prove(h, newSession(h), t, { version: "4.7" });
  assert.equal(support.closed, false);
  assert.equal(successOf(support)?.getChild("ticket"), undefined);
  assert.ok(await authenticate(h, support, "support"), "the exempt account passes SASL start");
  assert.ok(await bind(h, support), "and binds");
  assert.equal(clientInfoOf(support)?.verified, true);
  assert.equal(clientInfoOf(support)?.ok, false, "counted as below the minimum in the statistics");

  // Anyone else: refused at SASL start, before the password is used.
  const alice = await prove(h, newSession(h), t, { version: "4.7" });
  assert.equal(alice.closed, false);
  assert.equal(await authenticate(h, alice, "alice"), false);
  assert.equal(refusalOf(alice).reason, "version-too-old");
  assert.equal(refusalOf(alice).attrs.minimum, "5.0");
  assert.equal(h.api.counters().proofsRefused["version-too-old"], 1);

  // A suspended licence: the same, whatever the version.
  await h.registry.setLicenceStatus(ACTOR, t.licence.id, "suspended");
  await h.api.recheck();
  const bob = await prove(h, newSession(h), t, { version: "5.0.1" });
  assert.equal(await authenticate(h, bob, "bob"), false);
  assert.equal(refusalOf(bob).reason, "licence-suspended");
  const support2 = await prove(h, newSession(h), t, { version: "5.0.1" });
  assert.ok((await authenticate(h, support2, "support")) && (await bind(h, support2)));

  // Forgery is never deferred: a bad signature is refused at once, exempt or not.
  const forged = await prove(h, newSession(h), t, {
    privateKeyPem: (await registerApp(h.registry)).privateKeyPem,
  });
  assert.equal(refusalOf(forged).reason, "bad-proof");
});

test("a licence's session limit refuses more sessions than it allows, counted over live sessions", async () => {
  const h = await start();
  const t = await registerApp(h.registry, { maxSessions: 2 });
  await h.api.recheck();
  const a = await login(h, "alice", t);
  const b = await login(h, "bob", t);
  assert.equal(a.bound && b.bound, true);
  const c = await login(h, "carol", t);
  const refused = refusalOf(c);
  assert.equal(refused.reason, "too-many-sessions");
  assert.equal(refused.attrs.limit, "2");
  assert.equal(c.bound, false);

  await a.disconnect();
  const d = await login(h, "dave", t);
  assert.equal(d.bound && !d.closed, true, "a freed place can be taken");

  // Two proofs accepted before either binds: the second to bind is over the limit.
  await d.disconnect();
  const e1 = newSession(h);
  const e2 = newSession(h);
  await prove(h, e1, t);
  await prove(h, e2, t);
  assert.ok(successOf(e1) && successOf(e2));
  await authenticate(h, e1, "erin");
  await authenticate(h, e2, "erin");
  assert.equal(await bind(h, e1, "one"), true);
  assert.equal(await bind(h, e2, "two"), false);
  assert.equal(refusalOf(e2).reason, "too-many-sessions");
});

test("failed proofs are rate-limited per address and counted", async () => {
  const h = await start({ maxProofFailuresPerAddress: 3, proofFailureWindowSeconds: 60 });
  const t = await registerApp(h.registry);
  const other = await registerApp(h.registry);
  await h.api.recheck();
  for (let i = 0; i < 3; i++) {
    const s = await prove(h, newSession(h), t, { privateKeyPem: other.privateKeyPem });
    assert.equal(refusalOf(s).reason, "bad-proof");
  }
  const blocked = refusalOf(await prove(h, newSession(h), t));
  assert.equal(blocked.reason, "bad-proof");
  assert.match(blocked.text, /too many failed licence proofs/);
  const c = h.api.counters();
  assert.equal(c.proofsRateLimited, 1);
  assert.equal(c.proofsRefused["bad-proof"], 3);
  assert.equal(c.proofsAccepted, 0);

  h.clock.advance(61_000);
  assert.ok(successOf(await prove(h, newSession(h), t)), "the window has passed");

  // Version refusals do not count against the address: they come from honest, outdated clients.
  await setPolicy(h.registry, { apps: { [t.app.clientId]: { minVersion: "6" } } });
  await h.api.recheck();
  for (let i = 0; i < 4; i++) {
    assert.equal(refusalOf(await prove(h, newSession(h), t)).reason, "version-too-old");
  }
  assert.ok(successOf(await prove(h, newSession(h), t, { version: "6.1" })));
});

test("open mode admits unlicensed clients silently and records them as unlicensed", async () => {
  const h = await start();
  const s = await login(h, "alice");
  assert.equal(s.bound && !s.closed, true);
  assert.deepEqual(clientInfoOf(s), { verified: false, source: "none", ok: false });
  assert.equal(s.received.length, 0, "no warning in open mode");
});

test("warn mode: a headline from the domain once per day per account, none for exempt or licensed clients", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const cutoff = h.clock.now() + 30 * DAY;
  await setPolicy(h.registry, {
    mode: "warn",
    stages: [{ at: cutoff, mode: "enforce" }],
    infoUrl: "https://example.net/licensed-clients",
    exemptions: ["support"],
  });
  await h.api.recheck();

  const a1 = await login(h, "alice", undefined, { resource: "one" });
  assert.equal(a1.bound && !a1.closed, true);
  const headline = a1.received.find((el) => el.name === "message");
  assert.ok(headline, "warned");
  assert.equal(headline.attrs.type, "headline");
  assert.equal(headline.attrs.from, h.domain);
  assert.equal(headline.attrs.to, a1.jid?.toString());
  const body = headline.getChildText("body") ?? "";
  assert.match(body, new RegExp(new Date(cutoff).toISOString().replace(".000Z", "Z")));
  assert.match(body, /https:\/\/example\.net\/licensed-clients/);
  const machine = headline.getChild("unlicensed-client", NS_LICENCE);
  assert.equal(machine?.attrs["info-url"], "https://example.net/licensed-clients");

  const a2 = await login(h, "alice", undefined, { resource: "two" });
  assert.equal(a2.received.filter((el) => el.name === "message").length, 0, "not twice the same day");
  h.clock.advance(23 * HOUR);
  const a3 = await login(h, "alice", undefined, { resource: "three" });
  assert.equal(a3.received.filter((el) => el.name === "message").length, 0);
  h.clock.advance(HOUR);
  const a4 = await login(h, "alice", undefined, { resource: "four" });
  assert.equal(a4.received.filter((el) => el.name === "message").length, 1, "a day later, again");

  const support = await login(h, "support");
  assert.equal(support.received.length, 0, "exempt accounts are not warned");
  const licensed = await login(h, "bob", t);
  assert.equal(
    licensed.received.filter((el) => el.name === "message").length,
    0,
    "licensed clients are not warned",
  );
  assert.equal(h.api.counters().warningsSent, 2);
});

test("enforce mode refuses unlicensed clients at SASL start (before the password), exempt accounts excepted", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await setPolicy(h.registry, {
    mode: "enforce",
    infoUrl: "https://example.net/licensed-clients",
    exemptions: ["support"],
  });
  await h.api.recheck();

  const s = newSession(h);
  assert.equal((await offer(h, s)).mode, "enforce");
  assert.equal(await authenticate(h, s, "alice"), false, "refused in the pre-SASL hook");
  assert.equal(s.username, undefined, "authentication never ran");
  // What mainstream clients show: a SASL failure with the text (account-disabled, see §3.1) ...
  const failure = saslRefusalOf(s);
  assert.equal(failure?.condition, "account-disabled");
  assert.match(
    failure?.text ?? "",
    /licensed client software only.*https:\/\/example\.net\/licensed-clients/,
  );
  assert.equal(failure?.element?.name, "unlicensed-client", "the condition rides in a SASL2 failure");
  assert.equal(failure?.element?.attrs.xmlns, NS_LICENCE);
  // ... then the stream closes with the machine-readable refusal.
  const r = refusalOf(s);
  assert.equal(r.condition, "policy-violation");
  assert.equal(r.reason, "unlicensed-client");
  assert.equal(r.attrs["info-url"], "https://example.net/licensed-clients");
  assert.equal(r.text, failure?.text);

  const noName = newSession(h);
  const hooks = h.server.services.hooks;
  await hooks.fireAsync("c2s/pre-sasl", {
    session: noName,
    mechanism: "EXTERNAL",
    claimedUsername: undefined,
    refuse: refuser(noName),
  });
  assert.equal(
    refusalOf(noName).reason,
    "unlicensed-client",
    "no claimed account: the network's mode applies",
  );

  const support = await login(h, "support");
  assert.equal(support.bound && !support.closed, true, "exempt");
  const licensed = await login(h, "alice", t);
  assert.equal(licensed.bound && !licensed.closed, true, "licensed");
  assert.equal(h.api.counters().unlicensedRefused, 2);
});

test("a staged rollout refuses only the accounts its percentage covers; the others stay warned", async () => {
  const h = await start();
  const names = Array.from({ length: 40 }, (_, i) => `user${i}`);
  const inside = names.filter((n) => accountBucket(n) < 25);
  const outside = names.filter((n) => accountBucket(n) >= 25);
  assert.ok(inside.length > 0 && outside.length > 0);
  await setPolicy(h.registry, {
    mode: "warn",
    stages: [{ at: h.clock.now() - HOUR, mode: "enforce", percentage: 25 }],
  });
  await h.api.recheck();
  for (const n of inside) assert.equal(refusalOf(await login(h, n)).reason, "unlicensed-client", n);
  for (const n of outside) {
    const s = await login(h, n);
    assert.equal(s.bound && !s.closed, true, n);
    assert.ok(
      s.received.some((el) => el.name === "message" && el.attrs.type === "headline"),
      `${n} warned`,
    );
  }
});

test("the authenticated account is checked again when it differs from the claimed one", async () => {
  const h = await start();
  await setPolicy(h.registry, { mode: "enforce", exemptions: ["support"] });
  await h.api.recheck();
  const s = newSession(h);
  await offer(h, s);
  const hooks = h.server.services.hooks;
  const refuse = refuser(s);
  await hooks.fireAsync("c2s/pre-sasl", {
    session: s,
    mechanism: "PLAIN",
    claimedUsername: "support",
    refuse,
  });
  assert.equal(s.closed, false);
  await hooks.fireAsync("c2s/authenticated", { session: s, username: "alice", refuse });
  assert.equal(saslRefusalOf(s)?.condition, "account-disabled", "a failure instead of success");
  assert.equal(refusalOf(s).reason, "unlicensed-client");
});

test("unlicensed clients are asked their software version; the answer is recorded as unverified", async () => {
  const h = await start({ queryClientVersion: true, clientVersionTimeoutMs: 2000 });
  const s = await login(h, "alice");
  const query = await s.nextMatching((el) => el.name === "iq");
  assert.equal(query.attrs.type, "get");
  assert.equal(query.attrs.from, h.domain);
  assert.ok(query.getChild("query", "jabber:iq:version"));
  await s.sendStanza(
    x(
      "iq",
      { type: "result", id: query.attrs.id, to: h.domain },
      x("query", { xmlns: "jabber:iq:version" }, x("name", null, "Gajim"), x("version", null, "1.8.4")),
    ),
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(clientInfoOf(s), {
    clientId: "Gajim",
    version: "1.8.4",
    verified: false,
    source: "xep-0092",
    ok: false,
  });

  // Licensed clients are not asked.
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const l = await login(h, "bob", t);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(
    l.received.filter((el) => el.name === "iq").length,
    0,
    "no query for a client that proved its licence",
  );
});
