/**
 * Reloading the registry, on the enforcement alone: a new snapshot whose follow-up work
 * (`onRegistryChange`, e.g. reloading the ticket key) fails is still armed — its scheduled
 * cutoff comes at its instant — and the follow-up is retried at the next poll. A
 * re-evaluation that throws leaves the next instant armed too. A timer that fires a moment
 * before its instant, with the clock passing the instant before the next reading, still
 * evaluates at the instant.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import type { SessionDirectory } from "../../src/core/session-directory.js";
import { emptySnapshot, type LicensingSnapshot } from "../../src/licensing/index.js";
import { Enforcement } from "../../src/modules/licensing/enforcement.js";
import { ManualClock } from "../kit/harness.js";

test("a registry change whose follow-up fails is armed anyway, and the follow-up is retried", async () => {
  const clock = new ManualClock();
  let snap: LicensingSnapshot = emptySnapshot();
  let hookCalls = 0;
  let hookFails = 1;
  const logged: string[] = [];
  const log = pino({ level: "error" }, { write: (line: string) => logged.push(line) });
  const enforcement = new Enforcement({
    domain: "example.org",
    clock,
    sessions: { all: () => [][Symbol.iterator](), updated: () => undefined } as unknown as SessionDirectory,
    log,
    registry: { revision: async () => snap.revision, snapshot: async () => snap },
    maxProofFailuresPerAddress: 10,
    proofFailureWindowMs: 60_000,
    onRegistryChange: async () => {
      hookCalls++;
      if (hookFails-- > 0) throw new Error("storage busy");
    },
  });
  await enforcement.start();
  try {
    assert.equal(enforcement.nextCheckAt(), undefined);
    const cutoff = clock.now() + 8000;
    snap = { ...emptySnapshot(), revision: 1 };
    snap.policy = { mode: "warn", stages: [{ at: cutoff, mode: "enforce" }], apps: {}, exemptions: [] };

    await enforcement.poll();
    assert.equal(hookCalls, 1);
    assert.equal(enforcement.snapshot().revision, 1, "the new snapshot is in use");
    assert.equal(enforcement.nextCheckAt(), cutoff, "and its cutoff is armed although the follow-up failed");
    assert.match(logged.join(""), /retrying at the next poll/);

    await enforcement.poll();
    assert.equal(hookCalls, 2, "the follow-up is retried");
    await enforcement.poll();
    assert.equal(hookCalls, 2, "and not run again once it succeeded");
    assert.equal(enforcement.nextCheckAt(), cutoff);
  } finally {
    enforcement.stop();
  }
});

test("a re-evaluation that throws still arms the next scheduled instant", async () => {
  const clock = new ManualClock();
  let snap: LicensingSnapshot = emptySnapshot();
  let walkFails = 0;
  const logged: string[] = [];
  const enforcement = new Enforcement({
    domain: "example.org",
    clock,
    sessions: {
      all: () => {
        if (walkFails-- > 0) throw new Error("a session in a bad state");
        return [][Symbol.iterator]();
      },
      updated: () => undefined,
    } as unknown as SessionDirectory,
    log: pino({ level: "info" }, { write: (line: string) => logged.push(line) }),
    registry: { revision: async () => snap.revision, snapshot: async () => snap },
    maxProofFailuresPerAddress: 10,
    proofFailureWindowMs: 60_000,
  });
  await enforcement.start();
  try {
    const cutoff = clock.now() + 8000;
    snap = { ...emptySnapshot(), revision: 1 };
    snap.policy = { mode: "warn", stages: [{ at: cutoff, mode: "enforce" }], apps: {}, exemptions: [] };
    walkFails = 1;
    await assert.rejects(enforcement.poll(), /a session in a bad state/);
    assert.equal(enforcement.nextCheckAt(), cutoff, "the cutoff is armed although the evaluation threw");
    assert.match(logged.join(""), /licensing registry change loaded/);
    assert.match(logged.join(""), /next scheduled licensing change/);
  } finally {
    enforcement.stop();
  }
});

test("a timer firing just before its instant, the clock passing it before the next reading: the instant is still evaluated", async () => {
  const base = Date.parse("2026-12-06T12:00:00Z");
  const cutoff = base + 50;
  // Readings to hand out first (the timer's own check), then `t`.
  const readings: number[] = [];
  let t = base;
  const clock = { now: () => readings.shift() ?? t };
  let snap: LicensingSnapshot = emptySnapshot();
  const evaluatedAt: number[] = [];
  const enforcement = new Enforcement({
    domain: "example.org",
    clock,
    sessions: { all: () => [][Symbol.iterator](), updated: () => undefined } as unknown as SessionDirectory,
    log: pino({ level: "silent" }),
    registry: { revision: async () => snap.revision, snapshot: async () => snap },
    maxProofFailuresPerAddress: 10,
    proofFailureWindowMs: 60_000,
  });
  enforcement.onEvaluated(() => evaluatedAt.push(t));
  await enforcement.start();
  try {
    snap = { ...emptySnapshot(), revision: 1 };
    snap.policy = { mode: "warn", stages: [{ at: cutoff, mode: "enforce" }], apps: {}, exemptions: [] };
    await enforcement.poll();
    assert.equal(enforcement.nextCheckAt(), cutoff);
    evaluatedAt.length = 0;
    // When the timer fires the clock reads 1 ms before the cutoff, and the cutoff from then on.
    readings.push(cutoff - 1);
    t = cutoff;
    const deadline = Date.now() + 2_000;
    while (evaluatedAt.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(evaluatedAt, [cutoff], "evaluated once the cutoff had come");
    assert.equal(enforcement.nextCheckAt(), undefined, "nothing left to arm");
  } finally {
    enforcement.stop();
  }
});
