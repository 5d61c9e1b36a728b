/**
 * Live enforcement, in process: the scheduled cutoff at its instant (moved clock, then an
 * explicit recheck or the polling), and registry changes (licence, key, minimum version)
 * closing the affected live sessions within one second, exempt accounts never closed.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { LicensingRegistry, NS_LICENCE } from "../../src/licensing/index.js";
import { openStorage } from "../../src/storage/index.js";
import {
  ACTOR,
  addKey,
  DAY,
  HOUR,
  type LicensingHarness,
  login,
  refusalOf,
  registerApp,
  setPolicy,
  startLicensing,
  waitUntil,
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

const live = (s: { bound: boolean; closed: boolean }) => s.bound && !s.closed;

test("the scheduled cutoff closes live unlicensed sessions at its instant and refuses new ones", async () => {
  // A long poll interval: here the explicit recheck moves things, not the polling.
  const h = await start({ pollIntervalMs: 60_000 });
  const t = await registerApp(h.registry);
  const cutoff = h.clock.now() + 2 * HOUR;
  await setPolicy(h.registry, {
    mode: "warn",
    stages: [{ at: cutoff, mode: "enforce" }],
    exemptions: ["support"],
  });
  await h.api.recheck();
  assert.equal(h.api.nextCheckAt(), cutoff, "the timer waits for the cutoff");

  const alice = await login(h, "alice");
  const bob = await login(h, "bob");
  const support = await login(h, "support");
  const licensed = await login(h, "carol", t);
  assert.ok([alice, bob, support, licensed].every(live));

  h.clock.t = cutoff - 1;
  await h.api.recheck();
  assert.ok(live(alice) && live(bob), "nothing happens before the instant");

  h.clock.t = cutoff;
  await h.api.recheck();
  for (const s of [alice, bob]) {
    assert.equal(s.closed, true);
    const r = refusalOf(s);
    assert.equal(r.condition, "policy-violation");
    assert.equal(r.reason, "unlicensed-client");
    // Before the stream error, which most clients do not show: a headline they do show.
    const notice = s.received.at(-1)!;
    assert.equal(notice.name, "message");
    assert.equal(notice.attrs.type, "headline");
    assert.equal(notice.attrs.from, h.domain);
    assert.equal(notice.attrs.to, s.jid?.toString());
    assert.match(notice.getChildText("body") ?? "", /disconnected.*licensed client software only/);
    assert.equal(notice.getChild("unlicensed-client", NS_LICENCE)?.name, "unlicensed-client");
  }
  assert.ok(live(support), "exempt accounts are never closed");
  assert.ok(live(licensed), "licensed clients stay");
  assert.equal(h.api.counters().sessionsClosed["unlicensed-client"], 2);
  assert.equal(h.api.counters().refusalNotices, 2);
  assert.equal(h.api.nextCheckAt(), undefined, "nothing else is scheduled");

  assert.equal(refusalOf(await login(h, "dave")).reason, "unlicensed-client", "new ones are refused");
  assert.ok(live(await login(h, "support", undefined, { resource: "second" })));
});

test("without an explicit recheck, the polling applies a cutoff the clock has passed", async () => {
  const h = await start({ pollIntervalMs: 50 });
  const cutoff = h.clock.now() + HOUR;
  await setPolicy(h.registry, { mode: "open", stages: [{ at: cutoff, mode: "enforce" }] });
  await waitUntil(() => h.api.nextCheckAt() === cutoff, 1000, "the new policy is loaded by the polling");
  const alice = await login(h, "alice");
  assert.ok(live(alice));
  h.clock.advance(HOUR);
  const took = await waitUntil(() => alice.closed, 1000, "the cutoff is applied");
  assert.equal(refusalOf(alice).reason, "unlicensed-client");
  assert.ok(took < 1000);
});

test("a rollout stage closes only the live sessions of the accounts it covers", async () => {
  const h = await start({ pollIntervalMs: 60_000 });
  const { accountBucket } = await import("../../src/licensing/registry.js");
  const at = h.clock.now() + HOUR;
  await setPolicy(h.registry, { mode: "warn", stages: [{ at, mode: "enforce", percentage: 30 }] });
  await h.api.recheck();
  const names = Array.from({ length: 20 }, (_, i) => `member${i}`);
  const sessions = new Map<string, Awaited<ReturnType<typeof login>>>();
  for (const n of names) sessions.set(n, await login(h, n));
  h.clock.t = at;
  await h.api.recheck();
  for (const [n, s] of sessions) assert.equal(s.closed, accountBucket(n) < 30, n);
});

test("revoking or suspending a licence closes its live sessions within one second (polling)", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  const other = await registerApp(h.registry);
  await setPolicy(h.registry, { exemptions: ["support"] });
  await h.api.recheck();
  const a = await login(h, "alice", t);
  const b = await login(h, "bob", t);
  const support = await login(h, "support", t);
  const o = await login(h, "olga", other);
  const unlicensed = await login(h, "uma");
  assert.ok([a, b, support, o, unlicensed].every(live));

  const began = Date.now();
  await h.registry.setLicenceStatus(ACTOR, t.licence.id, "revoked");
  await waitUntil(() => a.closed && b.closed, 1000, "sessions of the revoked licence closed");
  assert.ok(Date.now() - began < 1000);
  assert.equal(refusalOf(a).reason, "licence-revoked");
  assert.ok(
    !a.received.some((el) => el.name === "message" && el.attrs.type === "headline"),
    "a client that proved its licence reads the stream error: no notice",
  );
  assert.equal(refusalOf(b).reason, "licence-revoked");
  assert.ok(live(support), "exempt");
  assert.ok(live(o), "another app's licence is untouched");
  assert.ok(live(unlicensed), "open mode: unlicensed clients are not concerned");

  await h.registry.setLicenceStatus(ACTOR, other.licence.id, "suspended");
  await waitUntil(() => o.closed, 1000, "session of the suspended licence closed");
  assert.equal(refusalOf(o).reason, "licence-suspended");
});

test("revoking a key closes the sessions that proved with it; sessions with the new key stay", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await addKey(h.registry, t, "k2");
  await h.api.recheck();
  const oldKey = await login(h, "alice", t, { keyId: "k1" });
  const newKey = await login(h, "bob", t, { keyId: "k2" });
  await h.registry.revokeKey(ACTOR, t.app.clientId, "k1");
  await waitUntil(() => oldKey.closed, 1000, "session with the revoked key closed");
  assert.equal(refusalOf(oldKey).reason, "key-revoked");
  assert.ok(live(newKey));
});

test("raising the minimum version closes older clients within one second, with the minimum and URL", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const old = await login(h, "alice", t, { version: "4.7.2009" });
  const current = await login(h, "bob", t, { version: "5.0" });
  const blockedOne = await login(h, "carol", t, { version: "5.0.3" });
  await setPolicy(h.registry, {
    apps: {
      [t.app.clientId]: {
        minVersion: "5.0",
        blocked: [{ from: "5.0.2", to: "5.0.4" }],
        upgradeUrl: "https://example.com/upgrade",
      },
    },
  });
  await waitUntil(() => old.closed && blockedOne.closed, 1000, "old and blocked versions closed");
  const r = refusalOf(old);
  assert.equal(r.reason, "version-too-old");
  assert.equal(r.attrs.minimum, "5.0");
  assert.equal(r.attrs["upgrade-url"], "https://example.com/upgrade");
  assert.equal(refusalOf(blockedOne).reason, "version-blocked");
  assert.ok(live(current));
});

test("a licence that ends closes its sessions at its end; a renewal keeps them", async () => {
  const h = await start({ pollIntervalMs: 60_000 });
  const end = h.clock.now() + DAY;
  const ending = await registerApp(h.registry, { validUntil: end });
  const renewed = await registerApp(h.registry, { validUntil: end });
  await h.registry.grantLicence(ACTOR, { clientId: renewed.app.clientId, validFrom: end - HOUR });
  await h.api.recheck();
  assert.equal(h.api.nextCheckAt(), end - HOUR, "the renewal's start is the first instant to wake at");
  const a = await login(h, "alice", ending);
  const b = await login(h, "bob", renewed);
  h.clock.t = end;
  await h.api.recheck();
  assert.equal(refusalOf(a).reason, "licence-expired");
  assert.ok(live(b), "the session moved to the renewed licence");
});

test("when sessions move to a licence with a lower limit, the newest beyond it are closed", async () => {
  const h = await start({ pollIntervalMs: 60_000 });
  const end = h.clock.now() + DAY;
  const t = await registerApp(h.registry, { validUntil: end });
  await setPolicy(h.registry, { exemptions: ["support"] });
  await h.registry.grantLicence(ACTOR, { clientId: t.app.clientId, validFrom: end - HOUR, maxSessions: 2 });
  await h.api.recheck();
  const first = await login(h, "alice", t);
  const exempt = await login(h, "support", t);
  const second = await login(h, "bob", t);
  const third = await login(h, "carol", t);
  assert.ok([first, exempt, second, third].every(live), "the first licence has no limit");
  h.clock.t = end - HOUR;
  await h.api.recheck();
  assert.ok(live(first) && live(exempt), "the oldest two keep their places");
  for (const s of [second, third]) {
    const r = refusalOf(s);
    assert.equal(r.reason, "too-many-sessions");
    assert.equal(r.attrs.limit, "2");
  }
  await first.disconnect();
  assert.ok(live(await login(h, "dave", t)), "a freed place is taken");
  assert.equal(refusalOf(await login(h, "erin", t)).reason, "too-many-sessions", "the exempt session counts");
  await exempt.disconnect();
  assert.ok(live(await login(h, "frank", t)), "a place is free again");
});

test("a change written through another storage handle (as the CLI does) reaches the server", async () => {
  const h = await start();
  const t = await registerApp(h.registry);
  await h.api.recheck();
  const a = await login(h, "alice", t);
  const cfg = h.server.services.config;
  const other = await openStorage({
    backend: "sqlite",
    path: path.resolve(cfg.dataDir, cfg.storage.sqlitePath),
  });
  try {
    const cli = new LicensingRegistry(other, h.clock);
    await cli.setLicenceStatus("cli:operator", t.licence.id, "suspended");
    await waitUntil(() => a.closed, 1000, "the server sees the change");
    assert.equal(refusalOf(a).reason, "licence-suspended");
  } finally {
    await other.close();
  }
});

test("exempt accounts keep their sessions through every kind of closure", async () => {
  const h = await start({ pollIntervalMs: 60_000 });
  const t = await registerApp(h.registry);
  await setPolicy(h.registry, {
    exemptions: ["support"],
    stages: [{ at: h.clock.now() + HOUR, mode: "enforce" }],
  });
  await h.api.recheck();
  const unlicensed = await login(h, "support", undefined, { resource: "plain" });
  const licensed = await login(h, "support", t, { resource: "app", version: "1.0" });
  await h.registry.revokeKey(ACTOR, t.app.clientId, "k1");
  await setPolicy(h.registry, { apps: { [t.app.clientId]: { minVersion: "9" } } });
  h.clock.advance(HOUR);
  await h.api.recheck();
  assert.ok(live(unlicensed) && live(licensed));
  assert.deepEqual(h.api.counters().sessionsClosed, {});
});
