/**
 * Client statistics with the real core: fake sessions whose client record is set at binding
 * the way the licensing module sets it, the real registry on the harness's storage, and a
 * manual clock.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { CommandError } from "../../src/core/commands.js";
import { defineModule, type ModuleDefinition } from "../../src/core/module.js";
import type { DailyRecord, Licence, LiveRow, LiveSnapshot } from "../../src/licensing/index.js";
import {
  accountBucket,
  clientStatsReport,
  DAILY_STORE,
  dailyFigures,
  generateKeyPair,
  LIVE_PREFIX,
  LicensingRegistry,
  type LicensingSnapshot,
  MAX_CLIENTS_PER_DAY,
  STATS_STORE,
} from "../../src/licensing/index.js";
import { LicensingStats } from "../../src/modules/licensing/stats.js";
import { statsClients } from "../../src/modules/licensing/stats-commands.js";
import { FakeSession, type Harness, startHarness } from "../kit/harness.js";

const DAY_MS = 86_400_000;
const CHAT = "com.example.chat";
const OTHER = "org.other.messenger";

/** What the licensing module records on a session (session.data "licensing"). */
interface Info {
  clientId?: string;
  version?: string;
  platform?: string;
  keyId?: string;
  licenceId?: string;
  verified: boolean;
  source: "proof" | "xep-0092" | "sasl2" | "none";
  ok: boolean;
}

interface Fixture {
  h: Harness;
  stats: LicensingStats;
  registry: LicensingRegistry;
  chatLicence: Licence;
  otherLicence: Licence;
  /** Reloads the registry snapshot the stats evaluate against (as the module does on a revision change). */
  reload(): Promise<LicensingSnapshot>;
  /** Connects `account/resource` with the given client record set at binding. */
  connect(account: string, resource: string, info?: Info): Promise<FakeSession>;
}

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

const proof = (clientId: string, version: string, platform: string, keyId = "k1"): Info => ({
  clientId,
  version,
  platform,
  keyId,
  verified: true,
  source: "proof",
  ok: true,
});
const xep92 = (name: string, version: string): Info => ({
  clientId: name,
  version,
  verified: false,
  source: "xep-0092",
  ok: false,
});
const none: Info = { verified: false, source: "none", ok: false };

async function fixture(opts: { nodeId?: string; retentionDays?: number } = {}): Promise<Fixture> {
  const state: { stats?: LicensingStats; snapshot?: LicensingSnapshot; infos: Map<string, Info> } = {
    infos: new Map(),
  };
  const probe = defineModule({
    name: "licensing-stats-probe",
    description: "sets client records at binding as the licensing module does, and runs the statistics",
    setup(ctx) {
      ctx.hook("session/bound", ({ session }) => {
        const info = state.infos.get(`${session.username}/${session.resource}`);
        if (info) session.data.set("licensing", info);
      });
      state.stats = new LicensingStats({
        storage: ctx.storage,
        clock: ctx.clock,
        sessions: ctx.sessions,
        snapshot: () => state.snapshot,
        nodeId: opts.nodeId ?? "node-a",
        retentionDays: opts.retentionDays ?? 30,
        // Tests tick by hand.
        intervalMs: 3_600_000,
      });
      state.stats.install(ctx);
    },
  });
  const h = await startHarness({ modules: [probe] as ModuleDefinition<unknown>[] });
  harnesses.push(h);
  const registry = new LicensingRegistry(h.server.services.storage, h.clock);
  const pub = await registry.addPublisher("test", {
    organisation: "Example",
    contactEmail: "dev@example.com",
  });
  for (const clientId of [CHAT, OTHER]) {
    await registry.registerApp("test", {
      clientId,
      name: clientId,
      publisherId: pub.id,
      platforms: ["linux"],
    });
    await registry.addKey("test", clientId, { keyId: "k1", publicKey: generateKeyPair().publicKey });
  }
  const chatLicence = await registry.grantLicence("test", { clientId: CHAT });
  const otherLicence = await registry.grantLicence("test", { clientId: OTHER });
  await registry.setPolicy("test", (p) => ({ ...p, mode: "warn", exemptions: ["support"] }));
  const reload = async () => {
    state.snapshot = await registry.snapshot();
    return state.snapshot;
  };
  await reload();
  return {
    h,
    stats: state.stats!,
    registry,
    chatLicence,
    otherLicence,
    reload,
    async connect(account, resource, info) {
      if (info) state.infos.set(`${account}/${resource}`, info);
      return h.connect(account, resource);
    },
  };
}

const rowKey = (r: LiveRow) => `${r.clientId ?? "-"} ${r.version ?? "-"} ${r.platform ?? "-"} ${r.status}`;
const liveTable = (rows: LiveRow[]) =>
  Object.fromEntries(rows.map((r) => [rowKey(r), [r.sessions, r.accounts]]));

test("live figures follow the sessions opened and closed, and the snapshot other processes read agrees", async () => {
  const f = await fixture();
  const { storage } = f.h.server.services;
  const a1 = await f.connect("alice", "phone", proof(CHAT, "5.0.1", "android"));
  await f.connect("alice", "laptop", proof(CHAT, "5.0.1", "linux"));
  const b = await f.connect("bob", "pc", proof(CHAT, "5.0.1", "linux"));
  await f.connect("carol", "pc", xep92("Gajim", "1.8.4"));
  const d = await f.connect("dave", "pc");
  await f.connect("erin", "pc", none);

  let live = f.stats.live();
  assert.equal(live.sessions, 6);
  assert.equal(live.accounts, 5);
  assert.deepEqual(liveTable(live.rows), {
    "com.example.chat 5.0.1 android verified": [1, 1],
    "com.example.chat 5.0.1 linux verified": [2, 2],
    "Gajim 1.8.4 - unverified": [1, 1],
    "- - - unknown": [2, 2],
  });
  // Verified first, unknown last.
  assert.equal(live.rows[0]!.status, "verified");
  assert.equal(live.rows.at(-1)!.status, "unknown");
  assert.deepEqual(live.supported, { accounts: 5, supportedAccounts: 2, share: 0.4 });

  await a1.disconnect();
  b.close();
  await d.disconnect();
  await f.connect("frank", "pc", proof(OTHER, "2.0", "linux"));
  live = f.stats.live();
  assert.equal(live.sessions, 4);
  assert.equal(live.accounts, 4);
  assert.deepEqual(liveTable(live.rows), {
    "com.example.chat 5.0.1 linux verified": [1, 1],
    "org.other.messenger 2.0 linux verified": [1, 1],
    "Gajim 1.8.4 - unverified": [1, 1],
    "- - - unknown": [1, 1],
  });
  // Every row adds up to the session manager's own count.
  assert.equal(
    live.rows.reduce((s, r) => s + r.sessions, 0),
    f.h.server.services.sessions.count,
  );

  await f.stats.tick();
  const doc = await storage.documents<LiveSnapshot>(STATS_STORE).get(`${LIVE_PREFIX}node-a`);
  assert.equal(doc?.at, f.h.clock.now());
  assert.equal(doc?.revision, (await f.registry.snapshot()).revision);
  const report = await clientStatsReport(storage, f.h.clock);
  assert.ok(report.live);
  assert.equal(report.live.sessions, 4);
  assert.deepEqual(report.live.rows, live.rows);
  assert.deepEqual(report.live.nodes, [{ nodeId: "node-a", at: f.h.clock.now(), revision: doc?.revision }]);
});

test("daily records: one document per UTC day and account, distinct accounts per app and version", async () => {
  const f = await fixture();
  const { storage } = f.h.server.services;
  const docs = storage.documents<DailyRecord>(DAILY_STORE);
  f.h.clock.t = Date.UTC(2026, 2, 10, 23, 59, 0);
  // alice: the same app and version on two platforms, and a reconnection.
  const a1 = await f.connect("alice", "phone", proof(CHAT, "5.0.1", "android"));
  await f.connect("alice", "laptop", proof(CHAT, "5.0.1", "linux"));
  await a1.disconnect();
  await f.connect("alice", "phone", proof(CHAT, "5.0.1", "android"));
  await f.connect("bob", "pc", proof(CHAT, "5.0.1", "linux"));
  const c = await f.connect("carol", "pc", proof(CHAT, "4.9", "linux"));
  await c.disconnect();
  await f.connect("carol", "pc2", xep92("Gajim", "1.8.4"));
  // A session the licensing module refuses at binding (closed before the statistics see it) is not activity.
  const refused = new FakeSession(f.h);
  refused.username = "mallory";
  refused.close();
  f.stats.onBound(refused);
  await f.stats.flush();

  assert.deepEqual(
    (await docs.list()).map((d) => d.key),
    ["2026-03-10|alice", "2026-03-10|bob", "2026-03-10|carol"],
  );
  const alice = await docs.get("2026-03-10|alice");
  assert.deepEqual(
    alice?.clients.map((c) => [c.clientId, c.version, c.platform, c.verified]),
    [
      [CHAT, "5.0.1", "android", true],
      [CHAT, "5.0.1", "linux", true],
    ],
  );
  const day = await dailyFigures(storage, "2026-03-10", await f.reload(), f.h.clock.now());
  assert.equal(day.accounts, 3);
  assert.deepEqual(
    day.rows.map((r) => [r.clientId, r.version, r.status, r.accounts]),
    [
      [CHAT, "5.0.1", "verified", 2],
      [CHAT, "4.9", "verified", 1],
      ["Gajim", "1.8.4", "unverified", 1],
    ],
  );

  // Past midnight (UTC), the sessions still open make their accounts active on the new day.
  f.h.clock.advance(2 * 60_000);
  await f.stats.tick();
  assert.deepEqual(
    (await docs.list({ prefix: "2026-03-11|" })).map((d) => d.key),
    ["2026-03-11|alice", "2026-03-11|bob", "2026-03-11|carol"],
  );
  const carol = await docs.get("2026-03-11|carol");
  assert.deepEqual(
    carol?.clients.map((c) => c.clientId),
    ["Gajim"],
    "only the client carol still runs counts for the new day",
  );
});

test("a client identified after binding (XEP-0092 answer) is recorded too, and an account keeps its latest clients", async () => {
  const f = await fixture();
  const { storage } = f.h.server.services;
  const docs = storage.documents<DailyRecord>(DAILY_STORE);
  const s = await f.connect("dave", "pc", none);
  s.data.set("licensing", xep92("Psi", "2.0"));
  f.stats.onClientInfo(s);
  await f.stats.flush();
  assert.deepEqual(
    (await docs.get("2026-01-01|dave"))?.clients.map((c) => c.clientId ?? null),
    [null, "Psi"],
  );
  for (let i = 0; i < MAX_CLIENTS_PER_DAY + 4; i++) {
    const t = await f.connect("zed", `r${i}`, xep92("Hopper", `1.${i}`));
    await t.disconnect();
  }
  await f.stats.flush();
  const zed = (await docs.get("2026-01-01|zed"))!.clients;
  assert.equal(zed.length, MAX_CLIENTS_PER_DAY);
  assert.equal(zed.at(-1)!.version, `1.${MAX_CLIENTS_PER_DAY + 3}`);
});

test("headline: share of today's accounts on supported clients, recomputed against the current policy", async () => {
  const f = await fixture();
  const { storage } = f.h.server.services;
  await f.connect("alice", "pc", proof(CHAT, "5.0.1", "linux"));
  await f.connect("bob", "pc", proof(CHAT, "5.0", "linux"));
  await f.connect("carol", "pc", proof(OTHER, "1.2", "linux"));
  await f.connect("dave", "pc", xep92("Gajim", "1.8.4"));
  // erin runs a licensed client and an unlicensed one: the unlicensed one would be cut off.
  await f.connect("erin", "phone", proof(CHAT, "5.0.1", "android"));
  await f.connect("erin", "pc", none);
  await f.stats.flush();

  const headline = async () => (await clientStatsReport(storage, f.h.clock)).daily.supported;
  assert.deepEqual(await headline(), { accounts: 5, supportedAccounts: 3, share: 0.6 });

  await f.registry.setPolicy("test", (p) => ({ ...p, apps: { [CHAT]: { minVersion: "5.0.1" } } }));
  assert.deepEqual(await headline(), { accounts: 5, supportedAccounts: 2, share: 0.4 }, "bob's 5.0 is below");

  await f.registry.setPolicy("test", (p) => ({
    ...p,
    apps: { [CHAT]: { minVersion: "5.0", blocked: [{ from: "5.0.1", to: "5.0.9" }] } },
  }));
  assert.deepEqual(
    await headline(),
    { accounts: 5, supportedAccounts: 2, share: 0.4 },
    "alice's 5.0.1 is blocked",
  );

  // bob upgrades on the same platform during the day: his latest version counts.
  await f.connect("bob", "pc2", proof(CHAT, "5.0.1", "linux"));
  await f.stats.flush();
  await f.registry.setPolicy("test", (p) => ({ ...p, apps: { [CHAT]: { minVersion: "5.0.1" } } }));
  assert.deepEqual(await headline(), { accounts: 5, supportedAccounts: 3, share: 0.6 }, "bob upgraded");
  // ...while the day's rows still show both versions he used.
  const rows = (await clientStatsReport(storage, f.h.clock)).daily.rows;
  assert.deepEqual(
    rows.filter((r) => r.clientId === CHAT).map((r) => [r.version, r.accounts]),
    [
      ["5.0.1", 3],
      ["5.0", 1],
    ],
  );
  // A downgrade is the latest too.
  f.h.clock.advance(1000);
  await f.connect("alice", "old", proof(CHAT, "5.0", "linux"));
  await f.stats.flush();
  assert.deepEqual(
    await headline(),
    { accounts: 5, supportedAccounts: 2, share: 0.4 },
    "alice went back to 5.0",
  );

  await f.registry.setPolicy("test", (p) => ({ ...p, apps: {} }));
  await f.registry.setLicenceStatus("test", f.otherLicence.id, "suspended");
  assert.deepEqual(
    await headline(),
    { accounts: 5, supportedAccounts: 2, share: 0.4 },
    "carol's licence is suspended",
  );

  await f.registry.setLicenceStatus("test", f.otherLicence.id, "active");
  await f.registry.revokeKey("test", CHAT, "k1");
  assert.deepEqual(
    await headline(),
    { accounts: 5, supportedAccounts: 1, share: 0.2 },
    "the chat app's key is revoked",
  );
});

test("cutoff preview: unlicensed and failing sessions, exemptions and a staged rollout", async () => {
  const f = await fixture();
  // Accounts on either side of a 50 % rollout.
  const names = Array.from({ length: 40 }, (_, i) => `user${i}`);
  const inside = names.filter((n) => accountBucket(n) < 50).slice(0, 2);
  const outside = names.filter((n) => accountBucket(n) >= 50).slice(0, 2);
  assert.equal(inside.length + outside.length, 4);
  for (const n of [...inside, ...outside]) await f.connect(n, "pc", xep92("Gajim", "1.8.4"));
  await f.connect(inside[0]!, "phone", none);
  await f.connect("alice", "pc", proof(CHAT, "5.0.1", "linux"));
  await f.connect("old", "pc", proof(CHAT, "4.7.2009", "linux"));
  await f.connect("support", "pc", none);
  await f.connect("support", "phone", proof(CHAT, "4.0", "linux"));

  await f.registry.setPolicy("test", (p) => ({ ...p, apps: { [CHAT]: { minVersion: "5.0" } } }));
  const snap = await f.reload();

  // Enforcement for everyone, now: every unlicensed session, the too-old client; the exempt account spared.
  const all = f.stats.previewCutoff();
  assert.equal(all.sessions, 6);
  assert.equal(all.accounts, 5);
  assert.deepEqual(
    all.rows.map((r) => [r.clientId, r.version, r.status, r.reason, r.sessions, r.accounts]),
    [
      ["Gajim", "1.8.4", "unverified", "unlicensed-client", 4, 4],
      [CHAT, "4.7.2009", "verified", "version-too-old", 1, 1],
      [null, null, "unknown", "unlicensed-client", 1, 1],
    ],
  );
  assert.deepEqual(all.spared, {
    exempt: { sessions: 2, accounts: 1 },
    rollout: { sessions: 0, accounts: 0 },
  });
  assert.deepEqual(f.stats.live().cutoff, all, "the live snapshot carries the same preview");

  // A hypothetical policy from the policy editor: enforce for 50 % of the accounts from now on.
  const now = f.h.clock.now();
  const half = f.stats.previewCutoff({
    ...snap.policy,
    stages: [{ at: now, mode: "enforce", percentage: 50 }],
  });
  // The exempt account's unlicensed session counts as spared only where the stage would reach it.
  const supportInside = accountBucket("support") < 50;
  assert.equal(half.sessions, 4, "inside[0]'s two sessions, inside[1]'s and the too-old client");
  assert.equal(half.accounts, 3);
  assert.deepEqual(half.spared.rollout, { sessions: 2, accounts: 2 });
  assert.deepEqual(half.spared.exempt, { sessions: supportInside ? 2 : 1, accounts: 1 });
  // The version rule applies whatever the mode.
  assert.ok(half.rows.some((r) => r.reason === "version-too-old" && r.sessions === 1));

  // The policy as it is (warn): only the too-old licensed client goes.
  const current = f.stats.previewCutoff(snap.policy);
  assert.deepEqual(
    current.rows.map((r) => [r.clientId, r.reason]),
    [[CHAT, "version-too-old"]],
  );
  assert.deepEqual(current.spared, {
    exempt: { sessions: 1, accounts: 1 },
    rollout: { sessions: 0, accounts: 0 },
  });

  // Exempting an account in the editor removes its sessions from the cut.
  const exempted = f.stats.previewCutoff({
    ...snap.policy,
    mode: "enforce",
    exemptions: ["support", inside[0]!],
  });
  assert.equal(exempted.sessions, 4);
  assert.deepEqual(exempted.spared.exempt, { sessions: 4, accounts: 2 });
});

test("stale snapshots of stopped or crashed nodes are ignored; fresh ones are added up", async () => {
  const f = await fixture({ nodeId: "node-a" });
  const { storage } = f.h.server.services;
  await f.connect("alice", "pc", proof(CHAT, "5.0.1", "linux"));
  await f.connect("bob", "pc", none);
  await f.stats.tick();
  const t0 = f.h.clock.now();

  // A second node, as another server process sharing the database would write it.
  const other: LiveSnapshot = { ...f.stats.live(), nodeId: "node-b", at: t0 + 20_000 };
  await storage.documents<LiveSnapshot>(STATS_STORE).put(`${LIVE_PREFIX}node-b`, other);

  f.h.clock.t = t0 + 25_000;
  let report = await clientStatsReport(storage, f.h.clock);
  assert.equal(report.live?.sessions, 4);
  assert.equal(report.live?.cutoff.sessions, 2);
  assert.deepEqual(
    report.live?.rows.map((r) => [r.clientId, r.sessions, r.accounts]),
    [
      [CHAT, 2, 2],
      [null, 2, 2],
    ],
  );
  assert.deepEqual(report.staleNodes, []);

  // node-a stops writing (crashed): 30 s later its figures no longer count.
  f.h.clock.t = t0 + 31_000;
  report = await clientStatsReport(storage, f.h.clock);
  assert.equal(report.live?.sessions, 2);
  assert.deepEqual(
    report.live?.nodes.map((n) => n.nodeId),
    ["node-b"],
  );
  assert.deepEqual(report.staleNodes, [{ nodeId: "node-a", at: t0 }]);

  f.h.clock.t = t0 + 60_000;
  report = await clientStatsReport(storage, f.h.clock);
  assert.equal(report.live, null);
  assert.equal(report.staleNodes.length, 2);

  // A node that stops cleanly removes its snapshot.
  await f.stats.stop();
  assert.equal(await storage.documents(STATS_STORE).get(`${LIVE_PREFIX}node-a`), undefined);
});

test("retention: daily documents older than the configured number of days are pruned", async () => {
  const f = await fixture({ retentionDays: 2 });
  const { storage } = f.h.server.services;
  const docs = storage.documents<DailyRecord>(DAILY_STORE);
  const rec: DailyRecord = { firstSeen: 0, lastSeen: 0, clients: [] };
  for (const day of ["2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31"]) {
    await docs.put(`${day}|alice`, rec);
    await docs.put(`${day}|bob`, rec);
  }
  await f.connect("alice", "pc", none);
  await f.stats.tick(); // today is 2026-01-01
  assert.deepEqual(
    (await docs.list()).map((d) => d.key),
    ["2025-12-30|alice", "2025-12-30|bob", "2025-12-31|alice", "2025-12-31|bob", "2026-01-01|alice"],
  );
  // The next days prune as the clock moves.
  f.h.clock.advance(DAY_MS);
  await f.stats.tick();
  assert.deepEqual(
    (await docs.list()).map((d) => d.key),
    ["2025-12-31|alice", "2025-12-31|bob", "2026-01-01|alice", "2026-01-02|alice"],
  );
});

test("stats clients: readable tables and the same figures as JSON", async () => {
  const f = await fixture();
  const { storage, config } = f.h.server.services;
  const ctx = { config, storage, clock: f.h.clock };
  await f.connect("alice", "phone", proof(CHAT, "5.0.1", "android"));
  await f.connect("bob", "pc", proof(CHAT, "4.9", "linux"));
  await f.connect("carol", "pc", xep92("Gajim", "1.8.4"));
  await f.connect("support", "pc", none);
  const stageAt = Date.UTC(2027, 0, 15);
  await f.registry.setPolicy("test", (p) => ({
    ...p,
    apps: { [CHAT]: { minVersion: "5.0" } },
    stages: [{ at: stageAt, mode: "enforce", percentage: 25 }],
  }));
  await f.reload();
  await f.stats.tick();

  const out = await statsClients.run(ctx, {});
  const text = out.message;
  assert.match(
    text,
    /^Policy: warn \(registry revision \d+\); next: enforce for 25 % of accounts at 2027-01-15T00:00:00Z$/m,
  );
  assert.match(text, /^Live: 4 sessions, 4 accounts \(1 node, as of 2026-01-01T00:00:00Z\)$/m);
  assert.match(text, /^ {2}APP +VERSION +PLATFORM +STATUS +SESSIONS +ACCOUNTS$/m);
  assert.match(text, /^ {2}com\.example\.chat +5\.0\.1 +android +verified +1 +1$/m);
  assert.match(text, /^ {2}Gajim +1\.8\.4 +- +unverified +1 +1$/m);
  assert.match(text, /^ {2}\(unknown\) +- +- +unknown +1 +1$/m);
  assert.match(text, /^Live accounts on a supported client: 1 of 4 accounts \(25\.0 %\)$/m);
  assert.match(text, /^Active accounts on 2026-01-01 \(UTC\): 4$/m);
  assert.match(text, /^ {2}com\.example\.chat +4\.9 +verified +1$/m);
  assert.match(
    text,
    /^Headline: 1 of 4 accounts \(25\.0 %\) used only licensed clients at or above the minimum version$/m,
  );
  assert.match(text, /^If enforcement started now: 2 sessions of 2 accounts would be cut off$/m);
  assert.match(text, /^ {2}com\.example\.chat +4\.9 +verified +version-too-old +1 +1$/m);
  assert.match(text, /^Spared by exemption: 1 session of 1 account$/m);
  // Columns line up: every row of the live table is as wide as its header at the numeric columns.
  const liveLines = text.split("\n").filter((l) => / (verified|unverified|unknown) +\d+ +\d+$/.test(l));
  const header = text.split("\n").find((l) => l.includes("PLATFORM"))!;
  assert.equal(liveLines.length, 4);
  for (const l of liveLines) assert.equal(l.length, header.length, l);

  // --json prints `data`: plain JSON with the same figures.
  const data = JSON.parse(JSON.stringify(out.data)) as Awaited<ReturnType<typeof clientStatsReport>>;
  assert.equal(data.live?.sessions, 4);
  assert.deepEqual(data.daily.supported, { accounts: 4, supportedAccounts: 1, share: 0.25 });
  assert.equal(data.policy.nextStage?.at, stageAt);
  assert.deepEqual(data, JSON.parse(JSON.stringify(await clientStatsReport(storage, f.h.clock))));

  // Another day, and bad days.
  const past = await statsClients.run(ctx, { day: "2025-12-31" });
  assert.match(past.message, /^Active accounts on 2025-12-31 \(UTC\): 0$/m);
  assert.match(past.message, /^Headline: 0 of 0 accounts \(n\/a\)/m);
  assert.equal(statsClients.input.safeParse({ day: "2026-1-1" }).success, false);
  await assert.rejects(statsClients.run(ctx, { day: "2026-02-30" }), CommandError);

  // Without a running server there are no live figures, and the text says so.
  await f.stats.stop();
  const offline = await statsClients.run(ctx, {});
  assert.match(offline.message, /^Live: no figures \(no server has written a snapshot in the last 30 s\)$/m);
  assert.doesNotMatch(offline.message, /If enforcement started now/);
});
