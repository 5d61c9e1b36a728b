/** Interconnection decisions (peering and gateway licences under the schedule) and the warning ledger. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type AccessPolicy,
  accountBucket,
  DEFAULT_POLICY,
  type DomainLicence,
  domainCutoff,
  domainMode,
  emptySnapshot,
  type InterconnectScope,
  interconnectDecision,
  interconnectWarningText,
  type LicensingSnapshot,
  nextChangeAt,
} from "../../src/licensing/index.js";
import { WarningLedger } from "../../src/modules/interconnect/warnings.js";
import { openStorage } from "../../src/storage/index.js";
import { ManualClock } from "../kit/harness.js";

const DAY = 86_400_000;
const T0 = Date.UTC(2027, 0, 1);

function licence(over: Partial<DomainLicence> & { scope: InterconnectScope; domain: string }): DomainLicence {
  return { id: "lic_1", status: "active", validFrom: T0, createdAt: T0, ...over };
}

function snapshot(policy: Partial<AccessPolicy>, ...licences: DomainLicence[]): LicensingSnapshot {
  const s = emptySnapshot();
  s.policy = { ...DEFAULT_POLICY, ...policy };
  for (const l of licences) {
    const list = s.domainLicences[l.scope].get(l.domain) ?? [];
    list.push(l);
    s.domainLicences[l.scope].set(l.domain, list);
  }
  return s;
}

describe("interconnection decisions", () => {
  it("admits a domain with a licence in force in every mode, and only for the licence's scope", () => {
    for (const mode of ["open", "warn", "enforce"] as const) {
      const s = snapshot({ mode }, licence({ scope: "peering", domain: "public.example" }));
      const d = interconnectDecision(s, "peering", "public.example", T0);
      assert.ok(d.admitted && d.licenceId === "lic_1", `${mode}: ${JSON.stringify(d)}`);
      const other = interconnectDecision(s, "gateway", "public.example", T0);
      assert.equal(other.admitted, mode !== "enforce", `${mode}: a peering licence is no gateway licence`);
    }
  });

  it("refuses a suspended, revoked or expired licence in every mode, with the licence's condition", () => {
    const cases = [
      [{ status: "suspended" as const }, "licence-suspended"],
      [{ status: "revoked" as const }, "licence-revoked"],
      [{ validUntil: T0 + DAY }, "licence-expired"],
    ] as const;
    for (const [over, reason] of cases) {
      const s = snapshot({ mode: "open" }, licence({ scope: "gateway", domain: "irc.gw.example", ...over }));
      const d = interconnectDecision(s, "gateway", "irc.gw.example", T0 + 2 * DAY);
      assert.ok(!d.admitted, JSON.stringify(d));
      assert.equal(d.reason, reason);
      assert.match(d.text, /gateway licence of irc\.gw\.example/);
    }
    // A renewal in force wins over an older revoked licence.
    const renewed = snapshot(
      { mode: "enforce" },
      licence({ scope: "gateway", domain: "irc.gw.example", status: "revoked" }),
      licence({ id: "lic_2", scope: "gateway", domain: "irc.gw.example", createdAt: T0 + 1 }),
    );
    const d = interconnectDecision(renewed, "gateway", "irc.gw.example", T0);
    assert.ok(d.admitted && d.licenceId === "lic_2");
  });

  it("lets an unlicensed domain follow its mode: open admits, warn admits with the cutoff, enforce refuses", () => {
    const open = interconnectDecision(snapshot({ mode: "open" }), "peering", "public.example", T0);
    assert.deepEqual(open, { admitted: true, licenceId: undefined, mode: "open" });
    const warnPolicy = { mode: "warn" as const, stages: [{ at: T0 + DAY, mode: "enforce" as const }] };
    const warn = interconnectDecision(snapshot(warnPolicy), "peering", "public.example", T0);
    assert.deepEqual(warn, { admitted: true, licenceId: undefined, mode: "warn", cutoff: T0 + DAY });
    const enforced = interconnectDecision(snapshot(warnPolicy), "peering", "public.example", T0 + DAY);
    assert.ok(!enforced.admitted);
    assert.equal(enforced.reason, "unlicensed-peer");
    assert.equal(enforced.details?.domain, "public.example");
    const gw = interconnectDecision(
      snapshot({ mode: "enforce", infoUrl: "https://licences.example/" }),
      "gateway",
      "irc.gw.example",
      T0,
    );
    assert.ok(!gw.admitted && gw.reason === "unlicensed-gateway");
    assert.match(gw.text, /no gateway licence.*Licences: https:\/\/licences\.example\//);
    // A licence that starts later does not admit yet, and says when it will.
    const pending = snapshot(
      { mode: "enforce" },
      licence({ scope: "peering", domain: "public.example", validFrom: T0 + DAY }),
    );
    const early = interconnectDecision(pending, "peering", "public.example", T0);
    assert.ok(!early.admitted && /valid from 2027-01-02T00:00:00Z/.test(early.text));
    assert.ok(interconnectDecision(pending, "peering", "public.example", T0 + DAY).admitted);
  });

  it("rolls stages out by domain, with a stable bucket, and ignores account exemptions", () => {
    const policy = {
      mode: "warn" as const,
      stages: [{ at: T0, mode: "enforce" as const, percentage: 50 }],
      exemptions: ["localhost"],
    };
    const s = snapshot(policy);
    const domains = Array.from({ length: 200 }, (_, i) => `d${i}.example`);
    const enforced = domains.filter((d) => domainMode(s, d, T0) === "enforce");
    assert.ok(enforced.length > 60 && enforced.length < 140, `${enforced.length} of 200 enforced at 50 %`);
    for (const d of domains) assert.equal(domainMode(s, d, T0) === "enforce", accountBucket(d) < 50);
    const bucketOfLocalhost = accountBucket("localhost");
    assert.equal(domainMode(s, "localhost", T0), bucketOfLocalhost < 50 ? "enforce" : "warn");
    // The cutoff a warned domain is told is the first stage that reaches its bucket.
    const later = snapshot({
      mode: "warn",
      stages: [
        { at: T0 + DAY, mode: "enforce", percentage: 50 },
        { at: T0 + 2 * DAY, mode: "enforce" },
      ],
    });
    for (const d of domains.slice(0, 20)) {
      assert.equal(domainCutoff(later, d, T0), accountBucket(d) < 50 ? T0 + DAY : T0 + 2 * DAY);
    }
  });

  it("wakes the enforcement timer at a domain licence's end", () => {
    const s = snapshot({}, licence({ scope: "gateway", domain: "irc.gw.example", validUntil: T0 + 3 * DAY }));
    assert.equal(nextChangeAt(s, T0 + DAY), T0 + 3 * DAY);
  });

  it("words the warning as 'this link stops on …'", () => {
    const text = interconnectWarningText("peering", "public.example", "corp.example", T0 + DAY, undefined);
    assert.match(
      text,
      /public\.example and corp\.example has no peering licence\. This link stops on 2027-01-02T00:00:00Z\./,
    );
    assert.match(
      interconnectWarningText("gateway", "irc.gw.example", "corp.example", undefined, "https://x.example/"),
      /will stop.*Licences: https:\/\/x\.example\//,
    );
  });
});

describe("warning ledger", () => {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-ledger-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("warns a key once per interval, across instances sharing the storage, and once for concurrent calls", async () => {
    const storage = await openStorage({ backend: "sqlite", path: join(dir, "ledger.sqlite") });
    try {
      const clock = new ManualClock(T0);
      const a = new WarningLedger(storage, clock, DAY);
      let sent = 0;
      const send = () => {
        sent++;
      };
      const together = await Promise.all([a.maybeWarn("gateway:x", send), a.maybeWarn("gateway:x", send)]);
      assert.deepEqual(together.sort(), [false, true]);
      assert.equal(sent, 1);
      // Another process (or a restart) sees the stored instant.
      const b = new WarningLedger(storage, clock, DAY);
      assert.equal(await b.maybeWarn("gateway:x", send), false);
      assert.equal(await b.maybeWarn("peering:bob@public.example", send), true);
      clock.advance(DAY - 1);
      assert.equal(await a.maybeWarn("gateway:x", send), false);
      clock.advance(1);
      assert.equal(await a.maybeWarn("gateway:x", send), true);
      assert.equal(sent, 3);
    } finally {
      await storage.close();
    }
  });
});
