/**
 * The schedule survives restarts: a cutoff stored before a restart still happens at its
 * instant, one that passed while the server was down is in force when it starts; and with
 * the wall clock, the timer closes live sessions at the instant without any polling.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/core/clock.js";
import {
  createAccount,
  HOUR,
  ManualClock,
  type OwnServer,
  setPolicy,
  startOwnServer,
  tempDir,
  waitUntil,
} from "./b-kit.js";
import { SocketClient, socketLogin } from "./b-socket.js";

const T0 = Date.UTC(2026, 5, 1);

async function loginUnlicensed(s: OwnServer, user: string): Promise<SocketClient> {
  return socketLogin({ port: s.c2sPort, domain: s.domain, user, password: "secret", tls: true });
}

test("a cutoff scheduled before a restart happens at its instant; one missed while down is in force at start", async () => {
  const data = tempDir();
  try {
    const cutoff = T0 + HOUR;
    const first = await startOwnServer({ dataDir: data.dir, clock: new ManualClock(T0) });
    await createAccount(first.server, "alice");
    await createAccount(first.server, "bob");
    await setPolicy(first.registry, { mode: "warn", stages: [{ at: cutoff, mode: "enforce" }] });
    await first.stop();

    // Restarted half an hour before the cutoff: it is armed from the stored schedule.
    const clock = new ManualClock(T0 + HOUR / 2);
    const second = await startOwnServer({ dataDir: data.dir, clock, options: { pollIntervalMs: 50 } });
    try {
      assert.equal(second.api.nextCheckAt(), cutoff);
      const c = await loginUnlicensed(second, "alice");
      clock.t = cutoff;
      const err = await c.streamError(1000);
      assert.equal(err.condition, "policy-violation");
      assert.equal(err.licence?.name, "unlicensed-client");
      await assert.rejects(loginUnlicensed(second, "bob"), /unlicensed-client/);
    } finally {
      await second.stop();
    }

    // Started after the cutoff: enforce from the first connection.
    const third = await startOwnServer({ dataDir: data.dir, clock: new ManualClock(cutoff + HOUR) });
    try {
      assert.equal(third.api.nextCheckAt(), undefined);
      await assert.rejects(loginUnlicensed(third, "bob"), /unlicensed-client/);
      const c = await SocketClient.connect(third.c2sPort);
      await c.open(third.domain);
      assert.equal(c.licenceFeature().attrs.mode, "enforce");
      c.destroy();
    } finally {
      await third.stop();
    }
  } finally {
    data.remove();
  }
});

test("with the wall clock, the timer closes live sessions at the cutoff instant", async () => {
  const data = tempDir();
  // Polling far apart: only the timer can act in time.
  const s = await startOwnServer({
    dataDir: data.dir,
    clock: systemClock,
    options: { pollIntervalMs: 60_000 },
  });
  try {
    await createAccount(s.server, "alice");
    const cutoff = Date.now() + 1500;
    await setPolicy(s.registry, { mode: "warn", stages: [{ at: cutoff, mode: "enforce" }] });
    await s.api.recheck();
    assert.equal(s.api.nextCheckAt(), cutoff);
    const c = await loginUnlicensed(s, "alice");
    assert.ok(Date.now() < cutoff, "logged in before the cutoff");
    await waitUntil(() => c.closed, 3000, "closed at the cutoff");
    const lateness = Date.now() - cutoff;
    assert.ok(lateness >= 0, "not before the instant");
    assert.ok(lateness < 500, `closed ${lateness} ms after the instant`);
    assert.equal((await c.streamError(100)).licence?.name, "unlicensed-client");
  } finally {
    await s.stop();
    data.remove();
  }
});
