/** Registry mutations on a real SQLite storage: validation, statuses, audit records, revisions. */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { commandErrorOf } from "../../src/core/commands.js";
import type { Storage } from "../../src/core/storage/types.js";
import type { AuditRecord, Publisher } from "../../src/licensing/index.js";
import {
  allLicences,
  domainLicenceStanding,
  generateKeyPair,
  LicensingError,
  LicensingRegistry,
  licenceStatusAt,
} from "../../src/licensing/index.js";
import { openStorage } from "../../src/storage/index.js";
import { ManualClock } from "../kit/harness.js";

const dir = mkdtempSync(join(tmpdir(), "switchboard-licensing-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const freshPath = () => join(dir, `db-${++counter}.sqlite`);

const ACTOR = "cli:tester";
const DAY = 86_400_000;

/** Resolves to the status the faces give the registry's refusal (a LicensingError) of a failed call. */
async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LicensingError) return commandErrorOf(err)!.status;
    throw err;
  }
  assert.fail("expected a LicensingError");
}

describe("licensing registry", () => {
  let storage: Storage;
  let clock: ManualClock;
  let registry: LicensingRegistry;
  let publisher: Publisher;

  beforeEach(async () => {
    storage = await openStorage({ backend: "sqlite", path: freshPath() });
    clock = new ManualClock(Date.UTC(2027, 0, 1));
    registry = new LicensingRegistry(storage, clock);
    publisher = await registry.addPublisher(ACTOR, {
      organisation: "Example Ltd",
      contactEmail: "dev@example.com",
    });
  });
  afterEach(async () => {
    await storage.close();
  });

  const register = (clientId = "com.example.chat") =>
    registry.registerApp(ACTOR, {
      clientId,
      name: "Example Chat",
      publisherId: publisher.id,
      platforms: ["Linux", "android", "linux"],
    });

  async function auditKinds(): Promise<string[]> {
    return (await registry.audit()).map((e) => e.kind);
  }

  it("adds publishers with an audit record and a revision bump", async () => {
    assert.match(publisher.id, /^pub_[0-9a-f]{16}$/);
    assert.equal(publisher.createdAt, clock.now());
    assert.equal(await registry.revision(), 1);
    const [entry] = await registry.audit();
    assert.equal(entry?.kind, "publisher.add");
    assert.equal(entry?.at, clock.now());
    assert.deepEqual(entry?.data, { actor: ACTOR, subject: `publisher:${publisher.id}`, after: publisher });
  });

  it("refuses bad publishers: empty organisation, bad email (400), same organisation (409)", async () => {
    assert.equal(
      await statusOf(registry.addPublisher(ACTOR, { organisation: " ", contactEmail: "a@b.example" })),
      400,
    );
    for (const email of [
      "",
      "dev",
      "dev@",
      "@example.com",
      "dev@example",
      "a b@example.com",
      "dev@exa mple.com",
    ]) {
      assert.equal(
        await statusOf(registry.addPublisher(ACTOR, { organisation: "Other", contactEmail: email })),
        400,
        email,
      );
    }
    assert.equal(
      await statusOf(
        registry.addPublisher(ACTOR, { organisation: "example LTD", contactEmail: "x@example.com" }),
      ),
      409,
    );
    // Failed mutations leave no trace.
    assert.equal(await registry.revision(), 1);
    assert.deepEqual(await auditKinds(), ["publisher.add"]);
  });

  it("registers apps with normalised platforms; refuses bad ids (400), unknown publishers (404), duplicates (409)", async () => {
    const app = await register();
    assert.deepEqual(app.platforms, ["android", "linux"]);
    assert.equal(await registry.revision(), 2);
    assert.deepEqual((await registry.snapshot()).apps.get("com.example.chat"), app);
    for (const bad of [
      "c",
      "Com.example",
      "-chat",
      ".chat",
      "chat app",
      "chat/x",
      "chat:x",
      "x".repeat(129),
      "é.app",
    ]) {
      assert.equal(await statusOf(register(bad)), 400, bad);
    }
    assert.equal((await register("x".repeat(128))).clientId.length, 128);
    assert.equal(
      await statusOf(
        registry.registerApp(ACTOR, {
          clientId: "org.other",
          name: "O",
          publisherId: "pub_nope",
          platforms: ["web"],
        }),
      ),
      404,
    );
    assert.equal(
      await statusOf(
        registry.registerApp(ACTOR, {
          clientId: "org.other",
          name: "O",
          publisherId: publisher.id,
          platforms: [],
        }),
      ),
      400,
    );
    assert.equal(
      await statusOf(
        registry.registerApp(ACTOR, {
          clientId: "org.other",
          name: "O",
          publisherId: publisher.id,
          platforms: ["Web OS"],
        }),
      ),
      400,
    );
    assert.equal(await statusOf(register()), 409);
  });

  it("keeps several active keys per app (rotation) and only public keys", async () => {
    await register();
    const k1 = generateKeyPair();
    const k2 = generateKeyPair();
    const first = await registry.addKey(ACTOR, "com.example.chat", { keyId: "k1", publicKey: k1.publicKey });
    clock.advance(1000);
    // PEM SPKI is accepted and stored as raw base64.
    const pem = generateKeyPairSync("ed25519").publicKey;
    const second = await registry.addKey(ACTOR, "com.example.chat", {
      keyId: "k2",
      publicKey: pem.export({ format: "pem", type: "spki" }).toString(),
    });
    assert.equal(Buffer.from(second.publicKey, "base64").length, 32);
    assert.deepEqual(first, {
      keyId: "k1",
      clientId: "com.example.chat",
      publicKey: k1.publicKey,
      createdAt: Date.UTC(2027, 0, 1),
    });
    const keys = (await registry.snapshot()).keys.get("com.example.chat");
    assert.deepEqual([...(keys?.keys() ?? [])].sort(), ["k1", "k2"]);

    assert.equal(
      await statusOf(registry.addKey(ACTOR, "com.example.chat", { keyId: "k1", publicKey: k2.publicKey })),
      409,
    );
    assert.equal(
      await statusOf(registry.addKey(ACTOR, "com.example.chat", { keyId: "k3", publicKey: k1.publicKey })),
      409,
    );
    await register("org.other");
    assert.equal(
      await statusOf(registry.addKey(ACTOR, "org.other", { keyId: "k1", publicKey: k1.publicKey })),
      409,
    );
    assert.equal(
      await statusOf(registry.addKey(ACTOR, "com.nope", { keyId: "k1", publicKey: k2.publicKey })),
      404,
    );
    assert.equal(
      await statusOf(
        registry.addKey(ACTOR, "com.example.chat", { keyId: "bad id", publicKey: k2.publicKey }),
      ),
      400,
    );
    for (const bad of [
      "",
      "not base64 at all",
      Buffer.alloc(31, 7).toString("base64"),
      Buffer.alloc(33, 7).toString("base64"),
      Buffer.alloc(32).toString("base64"), // small order
      Buffer.alloc(32, 0xff).toString("base64"), // not canonical
      k1.privateKeyPem,
      generateKeyPairSync("ec", { namedCurve: "P-256" })
        .publicKey.export({ format: "pem", type: "spki" })
        .toString(),
    ]) {
      assert.equal(
        await statusOf(registry.addKey(ACTOR, "com.example.chat", { keyId: "k9", publicKey: bad })),
        400,
        bad,
      );
    }
    const audit = JSON.stringify(await registry.audit());
    assert.doesNotMatch(audit, /PRIVATE/);
    assert.match(audit, new RegExp(k1.publicKey.replace(/[+/]/g, "\\$&")));
  });

  it("revokes a key without deleting it", async () => {
    await register();
    const k1 = generateKeyPair();
    await registry.addKey(ACTOR, "com.example.chat", { keyId: "k1", publicKey: k1.publicKey });
    const revision = await registry.revision();
    clock.advance(5000);
    const revoked = await registry.revokeKey(ACTOR, "com.example.chat", "k1");
    assert.equal(revoked.revokedAt, clock.now());
    assert.equal(await registry.revision(), revision + 1);
    assert.deepEqual((await registry.snapshot()).keys.get("com.example.chat")?.get("k1"), revoked);
    const [entry] = await registry.audit({ kind: "key.revoke" });
    assert.equal(entry?.data.subject, "key:com.example.chat:k1");
    assert.equal((entry!.data.before as { revokedAt?: number }).revokedAt, undefined);
    assert.equal((entry!.data.after as { revokedAt?: number }).revokedAt, clock.now());
    assert.equal(await statusOf(registry.revokeKey(ACTOR, "com.example.chat", "k1")), 409);
    assert.equal(await statusOf(registry.revokeKey(ACTOR, "com.example.chat", "k2")), 404);
    assert.equal(await statusOf(registry.revokeKey(ACTOR, "com.nope", "k1")), 404);
  });

  it("grants licences and validates them", async () => {
    await register();
    const now = clock.now();
    const l = await registry.grantLicence(ACTOR, {
      clientId: "com.example.chat",
      maxSessions: 3,
      termsRef: "https://example.com/terms",
    });
    assert.match(l.id, /^lic_[0-9a-f]{16}$/);
    assert.deepEqual(
      { ...l, id: "x" },
      {
        id: "x",
        clientId: "com.example.chat",
        scope: "client",
        status: "active",
        validFrom: now,
        maxSessions: 3,
        termsRef: "https://example.com/terms",
        createdAt: now,
      },
    );
    assert.deepEqual((await registry.snapshot()).licences.get("com.example.chat"), [l]);
    const grant = (over: object) => registry.grantLicence(ACTOR, { clientId: "com.example.chat", ...over });
    assert.equal(await statusOf(grant({ clientId: "com.nope" })), 404);
    assert.equal(await statusOf(grant({ scope: "everything" })), 400);
    assert.equal(await statusOf(grant({ validUntil: now })), 400);
    assert.equal(await statusOf(grant({ validFrom: now + DAY, validUntil: now + 1 })), 400);
    assert.equal(await statusOf(grant({ validFrom: Number.NaN })), 400);
    assert.equal(await statusOf(grant({ maxSessions: 0 })), 400);
    assert.equal(await statusOf(grant({ maxSessions: 1.5 })), 400);
    assert.equal(await statusOf(grant({ termsRef: "" })), 400);
    // Peering and gateway licences name a domain, not an app.
    assert.equal(
      await statusOf(grant({ scope: "gateway", validFrom: now - DAY, validUntil: now + DAY })),
      400,
    );
  });

  it("grants peering and gateway licences to domains, normalised, beside the apps' licences", async () => {
    await register();
    const now = clock.now();
    const peer = await registry.grantLicence(ACTOR, { scope: "peering", domain: "Public.Example." });
    assert.equal(peer.scope, "peering");
    assert.equal((peer as { domain?: string }).domain, "public.example");
    clock.advance(1);
    const gw = await registry.grantLicence(ACTOR, {
      scope: "gateway",
      domain: "irc.gw.example",
      publisherId: publisher.id,
      validUntil: now + DAY,
      termsRef: "gateway terms 7",
    });
    assert.ok(gw.scope === "gateway" && gw.publisherId === publisher.id);
    clock.advance(1);
    const app = await registry.grantLicence(ACTOR, { clientId: "com.example.chat" });
    const s = await registry.snapshot();
    assert.deepEqual(s.domainLicences.peering.get("public.example"), [peer]);
    assert.deepEqual(s.domainLicences.gateway.get("irc.gw.example"), [gw]);
    assert.deepEqual(s.licences.get("com.example.chat"), [app]);
    assert.deepEqual(
      allLicences(s).map((l) => l.id),
      [peer.id, gw.id, app.id],
    );
    // The same domain may hold both scopes; each is looked up by its own.
    const both = await registry.grantLicence(ACTOR, { scope: "gateway", domain: "public.example" });
    assert.equal(
      domainLicenceStanding(await registry.snapshot(), "gateway", "public.example", now)?.licence.id,
      both.id,
    );
    assert.equal(
      domainLicenceStanding(await registry.snapshot(), "peering", "irc.gw.example", now),
      undefined,
    );

    const bad = (input: Parameters<LicensingRegistry["grantLicence"]>[1]) =>
      statusOf(registry.grantLicence(ACTOR, input));
    assert.equal(await bad({ scope: "peering" }), 400);
    assert.equal(await bad({ scope: "peering", domain: "not a domain" }), 400);
    assert.equal(await bad({ scope: "peering", domain: "x@example.org" }), 400);
    assert.equal(await bad({ scope: "peering", domain: "x.example", maxSessions: 3 }), 400);
    assert.equal(await bad({ scope: "gateway", domain: "x.example", clientId: "com.example.chat" }), 400);
    assert.equal(await bad({ scope: "gateway", domain: "x.example", publisherId: "pub_nope" }), 404);
    assert.equal(await bad({ scope: "client", domain: "x.example" }), 400);

    // Status changes, the audit log and the revision work as for apps' licences.
    const rev = await registry.revision();
    await registry.setLicenceStatus(ACTOR, peer.id, "suspended");
    await registry.setLicenceStatus(ACTOR, peer.id, "revoked");
    assert.equal(await registry.revision(), rev + 2);
    const s2 = await registry.snapshot();
    assert.equal(domainLicenceStanding(s2, "peering", "public.example", now)?.status, "revoked");
    const audit = await registry.audit({ subject: `licence:${peer.id}` });
    assert.deepEqual(
      audit.map((e) => e.kind),
      ["licence.grant", "licence.suspend", "licence.revoke"],
    );
    assert.equal((audit[0]!.data.after as { domain: string }).domain, "public.example");
    clock.advance(2 * DAY);
    assert.equal(
      domainLicenceStanding(await registry.snapshot(), "gateway", "irc.gw.example", clock.now())?.status,
      "expired",
    );
  });

  it("ignores stored licences of an earlier model that bound a gateway scope to an app", async () => {
    await register();
    await storage.documents("licensing").put("licence:lic_legacy", {
      id: "lic_legacy",
      clientId: "com.example.chat",
      scope: "federation",
      status: "active",
      validFrom: 0,
      createdAt: 0,
    });
    const s = await registry.snapshot();
    assert.equal(s.licences.get("com.example.chat"), undefined);
    assert.equal(allLicences(s).length, 0);
  });

  it("suspends, reinstates and revokes licences; revocation is final and kept", async () => {
    await register();
    const l = await registry.grantLicence(ACTOR, { clientId: "com.example.chat" });
    assert.equal((await registry.setLicenceStatus(ACTOR, l.id, "suspended")).status, "suspended");
    assert.equal(await statusOf(registry.setLicenceStatus(ACTOR, l.id, "suspended")), 409);
    assert.equal((await registry.setLicenceStatus(ACTOR, l.id, "active")).status, "active");
    assert.equal(await statusOf(registry.setLicenceStatus(ACTOR, l.id, "active")), 409);
    assert.equal((await registry.setLicenceStatus(ACTOR, l.id, "revoked")).status, "revoked");
    assert.equal(await statusOf(registry.setLicenceStatus(ACTOR, l.id, "active")), 409);
    assert.equal(await statusOf(registry.extendLicence(ACTOR, l.id, clock.now() + DAY)), 409);
    assert.equal(await statusOf(registry.setLicenceStatus(ACTOR, "lic_nope", "revoked")), 404);
    assert.equal((await registry.getLicence(l.id))?.status, "revoked");
    const entries = await registry.audit({ subject: `licence:${l.id}` });
    assert.deepEqual(
      entries.map((e) => e.kind),
      ["licence.grant", "licence.suspend", "licence.reinstate", "licence.revoke"],
    );
    const revoke = entries.at(-1)!.data as AuditRecord;
    assert.equal((revoke.before as { status: string }).status, "active");
    assert.equal((revoke.after as { status: string }).status, "revoked");
    assert.equal(revoke.actor, ACTOR);
  });

  it("derives expiry from validUntil; extend moves or removes the end", async () => {
    await register();
    const l = await registry.grantLicence(ACTOR, {
      clientId: "com.example.chat",
      validUntil: clock.now() + DAY,
    });
    clock.advance(DAY);
    assert.equal(licenceStatusAt((await registry.getLicence(l.id))!, clock.now()), "expired");
    assert.equal((await registry.getLicence(l.id))?.status, "active");
    const extended = await registry.extendLicence(ACTOR, l.id, clock.now() + 10 * DAY);
    assert.equal(licenceStatusAt(extended, clock.now()), "active");
    const forever = await registry.extendLicence(ACTOR, l.id, undefined);
    assert.equal("validUntil" in forever, false);
    assert.equal(await statusOf(registry.extendLicence(ACTOR, l.id, l.validFrom)), 400);
    assert.equal(await statusOf(registry.extendLicence(ACTOR, "lic_nope", undefined)), 404);
    const [last] = await registry.audit({ kind: "licence.extend", newestFirst: true, limit: 1 });
    assert.equal((last!.data.before as { validUntil?: number }).validUntil, clock.now() + 10 * DAY);
    assert.equal((last!.data.after as { validUntil?: number }).validUntil, undefined);
  });

  it("validates and canonicalises the policy as a whole", async () => {
    await register();
    const t = clock.now();
    const policy = await registry.setPolicy(ACTOR, (p) => ({
      ...p,
      mode: "warn",
      stages: [
        { at: t + 2 * DAY, mode: "enforce", percentage: 100 },
        { at: t + DAY, mode: "enforce", percentage: 25 },
        { at: t - DAY, mode: "warn" },
      ],
      apps: {
        "com.example.chat": {
          minVersion: "5.0",
          blocked: [
            { from: "4.7.3", to: "4.7.5" },
            { from: "4.1", to: "4.2" },
          ],
        },
      },
      exemptions: ["Support", "alice", "support"],
    }));
    assert.deepEqual(policy.stages, [
      { at: t - DAY, mode: "warn" },
      { at: t + DAY, mode: "enforce", percentage: 25 },
      { at: t + 2 * DAY, mode: "enforce" },
    ]);
    assert.deepEqual(policy.exemptions, ["alice", "support"]);
    assert.deepEqual(
      policy.apps["com.example.chat"]?.blocked?.map((r) => r.from),
      ["4.1", "4.7.3"],
    );
    assert.deepEqual(await registry.getPolicy(), policy);
    const [entry] = await registry.audit({ kind: "policy.set" });
    assert.deepEqual(entry?.data.before, { mode: "open", stages: [], apps: {}, exemptions: [] });
    assert.deepEqual(entry?.data.after, policy);

    const revision = await registry.revision();
    const set = (change: object) => registry.setPolicy(ACTOR, (p) => ({ ...p, ...change }));
    assert.equal(await statusOf(set({ mode: "closed" })), 400);
    assert.equal(
      await statusOf(
        set({
          stages: [
            { at: t, mode: "warn" },
            { at: t, mode: "enforce" },
          ],
        }),
      ),
      400,
    );
    assert.equal(await statusOf(set({ stages: [{ at: t, mode: "enforce", percentage: 101 }] })), 400);
    assert.equal(await statusOf(set({ stages: [{ at: t, mode: "enforce", percentage: -1 }] })), 400);
    assert.equal(await statusOf(set({ stages: [{ at: "tomorrow", mode: "enforce" }] })), 400);
    assert.equal(await statusOf(set({ apps: { "com.nope": { minVersion: "1" } } })), 404);
    assert.equal(await statusOf(set({ apps: { "com.example.chat": { minVersion: "1..2" } } })), 400);
    assert.equal(
      await statusOf(set({ apps: { "com.example.chat": { minVersion: "5", recommendedVersion: "4.9" } } })),
      400,
    );
    assert.equal(
      await statusOf(set({ apps: { "com.example.chat": { blocked: [{ from: "5", to: "4" }] } } })),
      400,
    );
    assert.equal(
      await statusOf(set({ apps: { "com.example.chat": { upgradeUrl: "ftp://example.com" } } })),
      400,
    );
    assert.equal(await statusOf(set({ infoUrl: "not a url" })), 400);
    assert.equal(await statusOf(set({ exemptions: ["a@b"] })), 400);
    assert.equal(await registry.revision(), revision);
    // An unchanged policy writes no audit record and keeps the revision.
    await registry.setPolicy(ACTOR, (p) => p);
    assert.equal(await registry.revision(), revision);
    assert.equal((await registry.audit({ kind: "policy.set" })).length, 1);
  });

  it("bumps the revision once per change, and another connection sees it (CLI and server)", async () => {
    const path = freshPath();
    const cli = await openStorage({ backend: "sqlite", path });
    const server = await openStorage({ backend: "sqlite", path });
    try {
      const a = new LicensingRegistry(cli, clock);
      const b = new LicensingRegistry(server, clock);
      assert.equal(await b.revision(), 0);
      const p = await a.addPublisher(ACTOR, { organisation: "Org", contactEmail: "o@example.org" });
      await a.registerApp(ACTOR, { clientId: "org.app", name: "App", publisherId: p.id, platforms: ["web"] });
      const l = await a.grantLicence(ACTOR, { clientId: "org.app" });
      await a.setLicenceStatus(ACTOR, l.id, "suspended");
      await a.setPolicy(ACTOR, (x) => ({ ...x, mode: "enforce" }));
      const snap = await b.snapshot();
      assert.equal(snap.revision, 5);
      assert.equal(await b.revision(), 5);
      assert.equal(snap.policy.mode, "enforce");
      assert.equal(snap.licences.get("org.app")?.[0]?.status, "suspended");
      assert.equal(snap.publishers.get(p.id)?.organisation, "Org");
      assert.equal((await b.audit()).length, 5);
      // Both sides writing: every change counted once.
      await Promise.all([
        a.registerApp(ACTOR, { clientId: "org.app2", name: "A2", publisherId: p.id, platforms: ["web"] }),
        b.registerApp(ACTOR, { clientId: "org.app3", name: "A3", publisherId: p.id, platforms: ["web"] }),
      ]);
      assert.equal(await a.revision(), 7);
    } finally {
      await cli.close();
      await server.close();
    }
  });

  it("filters the audit log by kind, subject and time", async () => {
    await register();
    clock.advance(DAY);
    const l = await registry.grantLicence(ACTOR, { clientId: "com.example.chat" });
    await registry.setLicenceStatus("api:ops", l.id, "suspended");
    assert.deepEqual(
      (await registry.audit({ kindPrefix: "licence." })).map((e) => e.kind),
      ["licence.grant", "licence.suspend"],
    );
    assert.equal((await registry.audit({ subject: "app:com.example.chat" })).length, 1);
    assert.equal((await registry.audit({ since: clock.now() })).length, 2);
    assert.equal((await registry.audit({ limit: 1, newestFirst: true }))[0]?.data.actor, "api:ops");
  });
});
