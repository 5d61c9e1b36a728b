/** What applies at an instant: licence status, stages, rollout buckets, per-account modes. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AccessPolicy,
  type AppLicence,
  accountBucket,
  activeClientLicence,
  clientLicenceStanding,
  DEFAULT_POLICY,
  emptySnapshot,
  type LicensingSnapshot,
  licenceStatusAt,
  modeFor,
  nextEnforceStage,
  nextStageAfter,
  type PolicyMode,
  scheduleRelaxations,
  stageAt,
} from "../../src/licensing/index.js";

const DAY = 86_400_000;
const T0 = Date.UTC(2027, 0, 1);

function licence(over: Partial<AppLicence>): AppLicence {
  return {
    id: "lic_1",
    clientId: "com.example.chat",
    scope: "client",
    status: "active",
    validFrom: T0,
    createdAt: T0,
    ...over,
  };
}

function snapshotWith(licences: AppLicence[]): LicensingSnapshot {
  return { ...emptySnapshot(), revision: 1, licences: new Map([["com.example.chat", licences]]) };
}

describe("licence status at an instant", () => {
  it("derives expired from validUntil and pending from validFrom", () => {
    const l = licence({ validFrom: T0 + DAY, validUntil: T0 + 10 * DAY });
    assert.equal(licenceStatusAt(l, T0), "pending");
    assert.equal(licenceStatusAt(l, T0 + DAY), "active");
    assert.equal(licenceStatusAt(l, T0 + 10 * DAY - 1), "active");
    assert.equal(licenceStatusAt(l, T0 + 10 * DAY), "expired");
  });
  it("keeps a stored suspension or revocation whatever the dates", () => {
    assert.equal(licenceStatusAt(licence({ status: "suspended", validUntil: T0 + 1 }), T0 + 5), "suspended");
    assert.equal(licenceStatusAt(licence({ status: "revoked" }), T0), "revoked");
  });
  it("finds the client licence in force and explains its absence", () => {
    const old = licence({ id: "lic_old", validUntil: T0 + DAY, createdAt: T0 });
    const renewal = licence({ id: "lic_new", validFrom: T0 + DAY, createdAt: T0 + 2 });
    const s = snapshotWith([old, renewal]);
    assert.equal(activeClientLicence(s, "com.example.chat", T0)?.id, "lic_old");
    assert.equal(activeClientLicence(s, "com.example.chat", T0 + DAY)?.id, "lic_new");
    assert.equal(activeClientLicence(s, "com.example.other", T0), undefined);

    const suspended = snapshotWith([licence({ status: "suspended" })]);
    assert.equal(activeClientLicence(suspended, "com.example.chat", T0), undefined);
    assert.deepEqual(clientLicenceStanding(suspended, "com.example.chat", T0)?.status, "suspended");
    const expired = snapshotWith([licence({ validUntil: T0 + DAY })]);
    assert.equal(clientLicenceStanding(expired, "com.example.chat", T0 + 2 * DAY)?.status, "expired");
    assert.equal(clientLicenceStanding(expired, "com.example.other", T0), undefined);
  });
  it("prefers, among several in force, the one valid the longest", () => {
    const short = licence({ id: "lic_short", validUntil: T0 + DAY });
    const open = licence({ id: "lic_open" });
    const long = licence({ id: "lic_long", validUntil: T0 + 9 * DAY });
    assert.equal(activeClientLicence(snapshotWith([short, long]), "com.example.chat", T0)?.id, "lic_long");
    assert.equal(
      activeClientLicence(snapshotWith([short, open, long]), "com.example.chat", T0)?.id,
      "lic_open",
    );
  });
});

const rollout: AccessPolicy = {
  mode: "open",
  stages: [
    { at: T0 + 1 * DAY, mode: "warn" },
    { at: T0 + 2 * DAY, mode: "enforce", percentage: 25 },
    { at: T0 + 3 * DAY, mode: "enforce", percentage: 50 },
    { at: T0 + 4 * DAY, mode: "enforce" },
  ],
  apps: {},
  exemptions: ["support"],
};

describe("stages", () => {
  it("stageAt gives the base mode before the first stage, then the latest stage reached", () => {
    assert.deepEqual(stageAt(rollout, T0), { mode: "open", percentage: 100 });
    assert.deepEqual(stageAt(rollout, T0 + DAY), { mode: "warn", percentage: 100, stage: rollout.stages[0] });
    assert.deepEqual(stageAt(rollout, T0 + 2 * DAY + 5), {
      mode: "enforce",
      percentage: 25,
      stage: rollout.stages[1],
    });
    assert.equal(stageAt(rollout, T0 + 100 * DAY).stage, rollout.stages[3]);
  });
  it("nextStageAfter is strictly after the instant", () => {
    assert.equal(nextStageAfter(rollout, T0), rollout.stages[0]);
    assert.equal(nextStageAfter(rollout, T0 + DAY), rollout.stages[1]);
    assert.equal(nextStageAfter(rollout, T0 + DAY - 1), rollout.stages[0]);
    assert.equal(nextStageAfter(rollout, T0 + 4 * DAY), undefined);
  });
  it("nextEnforceStage skips other modes", () => {
    assert.equal(nextEnforceStage(rollout, T0), rollout.stages[1]);
    assert.equal(nextEnforceStage(rollout, T0 + 2 * DAY), rollout.stages[2]);
    assert.equal(nextEnforceStage(DEFAULT_POLICY, T0), undefined);
  });
  it("work on an unsorted list too", () => {
    const shuffled = {
      ...rollout,
      stages: [rollout.stages[2]!, rollout.stages[0]!, rollout.stages[3]!, rollout.stages[1]!],
    };
    for (const t of [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY + 1, T0 + 9 * DAY]) {
      assert.deepEqual(stageAt(shuffled, t), stageAt(rollout, t));
      assert.deepEqual(nextStageAfter(shuffled, t), nextStageAfter(rollout, t));
      assert.equal(modeFor(shuffled, t, "user7"), modeFor(rollout, t, "user7"));
    }
  });
});

const accounts = Array.from({ length: 4000 }, (_, i) => `user${i}`);

describe("rollout buckets", () => {
  it("are stable numbers in [0, 100)", () => {
    for (const a of accounts.slice(0, 200)) {
      const b = accountBucket(a);
      assert.ok(b >= 0 && b < 100, `${a}: ${b}`);
      assert.equal(accountBucket(a), b);
    }
    assert.notEqual(accountBucket("alice"), accountBucket("bob"));
  });
  it("spread accounts evenly enough for percentages to mean something", () => {
    const share = (p: number) => accounts.filter((a) => accountBucket(a) < p).length / accounts.length;
    for (const p of [10, 25, 50, 90]) assert.ok(Math.abs(share(p) - p / 100) < 0.03, `${p}%: ${share(p)}`);
  });
});

describe("mode for an account", () => {
  const modesAt = (t: number) => new Map(accounts.map((a) => [a, modeFor(rollout, t, a)]));

  it("follows the stages, covering a growing share", () => {
    const count = (m: Map<string, PolicyMode>, mode: PolicyMode) =>
      [...m.values()].filter((v) => v === mode).length;
    const before = modesAt(T0);
    assert.equal(count(before, "open"), accounts.length);
    assert.equal(count(modesAt(T0 + DAY), "warn"), accounts.length);
    const at25 = modesAt(T0 + 2 * DAY);
    const at50 = modesAt(T0 + 3 * DAY);
    const all = modesAt(T0 + 4 * DAY);
    // Those not yet covered keep the mode they had (warn), not the base mode.
    assert.equal(count(at25, "enforce") + count(at25, "warn"), accounts.length);
    assert.ok(Math.abs(count(at25, "enforce") / accounts.length - 0.25) < 0.03);
    assert.ok(Math.abs(count(at50, "enforce") / accounts.length - 0.5) < 0.03);
    assert.equal(count(all, "enforce"), accounts.length);
    for (const a of accounts) {
      assert.equal(at25.get(a) === "enforce", accountBucket(a) < 25, a);
    }
  });

  it("is monotonic: an account in at 25 % stays in at 50 %", () => {
    const at25 = modesAt(T0 + 2 * DAY);
    const at50 = modesAt(T0 + 3 * DAY);
    let carried = 0;
    for (const a of accounts) {
      if (at25.get(a) === "enforce") {
        assert.equal(at50.get(a), "enforce", a);
        carried++;
      }
    }
    assert.ok(carried > 0);
  });

  it("keeps a wider earlier stage when a later one covers fewer accounts, and a full stage rolls back", () => {
    const policy: AccessPolicy = {
      ...rollout,
      stages: [
        { at: T0 + DAY, mode: "enforce", percentage: 50 },
        { at: T0 + 2 * DAY, mode: "enforce", percentage: 25 },
        { at: T0 + 3 * DAY, mode: "warn" },
      ],
    };
    const a = accounts.find((x) => accountBucket(x) >= 25 && accountBucket(x) < 50)!;
    assert.equal(modeFor(policy, T0 + 2 * DAY, a), "enforce");
    assert.equal(modeFor(policy, T0 + 3 * DAY, a), "warn");
  });

  it("treats exempt accounts as open, whatever the stage, after normalising the name", () => {
    for (const t of [T0, T0 + 2 * DAY, T0 + 9 * DAY]) {
      assert.equal(modeFor(rollout, t, "support"), "open");
      assert.equal(modeFor(rollout, t, "Support"), "open");
    }
    assert.equal(modeFor(rollout, T0 + 9 * DAY, "supporter"), "enforce");
  });

  it("without an account gives the mode of the stage in force", () => {
    assert.equal(modeFor(rollout, T0, undefined), "open");
    assert.equal(modeFor(rollout, T0 + 2 * DAY, undefined), "enforce");
    assert.equal(modeFor({ ...DEFAULT_POLICY, mode: "warn" }, T0, undefined), "warn");
  });

  it("buckets the normalised name, so case does not move an account", () => {
    const a = accounts.find((x) => accountBucket(x) < 25)!;
    assert.equal(modeFor(rollout, T0 + 2 * DAY, a.toUpperCase()), "enforce");
  });
});

describe("schedules that relax enforcement", () => {
  const policy = (mode: PolicyMode, stages: AccessPolicy["stages"]): AccessPolicy => ({
    ...DEFAULT_POLICY,
    mode,
    stages,
  });
  const relaxed = (p: AccessPolicy) =>
    scheduleRelaxations(p).map((r) => `${r.stage.mode}@${r.stage.at}<${r.before}`);

  it("flags a stage looser than what came before it for some of its accounts", () => {
    assert.deepEqual(
      relaxed(
        policy("open", [
          { at: T0, mode: "enforce" },
          { at: T0 + DAY, mode: "warn" },
        ]),
      ),
      [`warn@${T0 + DAY}<enforce`],
    );
    assert.deepEqual(
      relaxed(policy("enforce", [{ at: T0, mode: "open" }])),
      [`open@${T0}<enforce`],
      "the base mode",
    );
    // Unsorted input: stages apply in time order.
    assert.deepEqual(
      relaxed(
        policy("open", [
          { at: T0 + DAY, mode: "open" },
          { at: T0, mode: "warn" },
        ]),
      ),
      [`open@${T0 + DAY}<warn`],
    );
    // enforce for the first 10 %, then warn for everyone: the first 10 % are relaxed.
    assert.deepEqual(
      relaxed(
        policy("open", [
          { at: T0, mode: "enforce", percentage: 10 },
          { at: T0 + DAY, mode: "warn" },
        ]),
      ),
      [`warn@${T0 + DAY}<enforce`],
    );
    const [r] = scheduleRelaxations(
      policy("open", [
        { at: T0, mode: "enforce" },
        { at: T0 + DAY, mode: "warn", percentage: 50 },
      ]),
    );
    assert.equal(
      r?.text,
      "the stage of 2027-01-02T00:00:00Z (warn for 50 % of accounts) relaxes enforcement: accounts in enforce before it go back to warn",
    );
  });

  it("leaves schedules that only tighten, and narrower stages of the same mode, alone", () => {
    assert.deepEqual(relaxed(policy("open", [])), []);
    assert.deepEqual(
      relaxed(
        policy("open", [
          { at: T0, mode: "warn" },
          { at: T0 + DAY, mode: "enforce", percentage: 10 },
          { at: T0 + 2 * DAY, mode: "enforce", percentage: 50 },
          { at: T0 + 3 * DAY, mode: "enforce" },
        ]),
      ),
      [],
    );
    // A narrower enforce stage after a wider one: the other accounts stay in enforce.
    assert.deepEqual(
      relaxed(
        policy("warn", [
          { at: T0, mode: "enforce", percentage: 10 },
          { at: T0 + DAY, mode: "enforce", percentage: 5 },
        ]),
      ),
      [],
    );
  });
});
