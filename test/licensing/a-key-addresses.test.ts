/** Distinct addresses per app key: counted per window, one alert per key and window, bounded memory. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type KeyAddressFigure, KeyAddressWatch } from "../../src/licensing/index.js";
import { type LicensingHarness, newSession, offer, proofFor, registerApp, startLicensing } from "./b-kit.js";

const HOUR = 3_600_000;

function watch(alertAt: number, maxTracked = 100) {
  let now = 0;
  const alerts: KeyAddressFigure[] = [];
  const w = new KeyAddressWatch({
    windowMs: HOUR,
    alertAt,
    maxTracked,
    now: () => now,
    onAlert: (f) => alerts.push(f),
  });
  return { w, alerts, advance: (ms: number) => (now += ms) };
}

describe("KeyAddressWatch", () => {
  it("counts distinct addresses per key, and alerts once per window at the threshold", () => {
    const { w, alerts } = watch(3);
    for (const a of ["10.0.0.1", "10.0.0.1", "10.0.0.2"]) w.record("com.example.chat", "k1", a);
    w.record("com.example.chat", "k2", "10.0.0.1");
    assert.equal(alerts.length, 0);
    w.record("com.example.chat", "k1", "10.0.0.3");
    w.record("com.example.chat", "k1", "10.0.0.4");
    assert.deepEqual(alerts, [{ clientId: "com.example.chat", keyId: "k1", addresses: 3, previous: 0 }]);
    assert.deepEqual(
      w.figures().map((f) => [f.keyId, f.addresses]),
      [
        ["k1", 4],
        ["k2", 1],
      ],
    );
  });

  it("starts a new window: the last one's count is kept beside it, idle keys are dropped, the alert re-arms", () => {
    const { w, alerts, advance } = watch(2);
    w.record("app", "k1", "a");
    w.record("app", "k1", "b");
    w.record("app", "k2", "a");
    assert.equal(alerts.length, 1);
    advance(HOUR);
    w.record("app", "k1", "c");
    assert.deepEqual(
      w.figures().map((f) => [f.keyId, f.addresses, f.previous]),
      [
        ["k1", 1, 2],
        ["k2", 0, 1],
      ],
    );
    w.record("app", "k1", "d");
    assert.equal(alerts.length, 2, "a new window, a new alert");
    advance(3 * HOUR);
    assert.deepEqual(w.figures(), [], "keys unused for a whole window are forgotten");
  });

  it("remembers at most maxTracked addresses per key and window", () => {
    const { w } = watch(0, 5);
    for (let i = 0; i < 50; i++) w.record("app", "k1", `10.0.0.${i}`);
    assert.equal(w.figures()[0]?.addresses, 5);
  });
});

describe("key addresses in the licensing module", () => {
  const harnesses: LicensingHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.stop();
  });

  it("accepted proofs are counted by key and address; past the threshold the alert counter moves", async () => {
    const h = await startLicensing({ keyAddressAlert: 2 });
    harnesses.push(h);
    const t = await registerApp(h.registry);
    await h.api.recheck();
    for (const address of ["192.0.2.1", "192.0.2.2", "192.0.2.2"]) {
      const s = newSession(h);
      Object.defineProperty(s, "remoteAddress", { value: address });
      const o = await offer(h, s);
      await h.feature.handle!(s, proofFor(h, s, t, o));
      assert.equal(s.closed, false);
    }
    assert.deepEqual(h.api.keyAddresses(), [
      { clientId: t.app.clientId, keyId: t.keyId, addresses: 2, previous: 0 },
    ]);
    assert.equal(h.api.counters().keyAddressAlerts, 1);
  });
});
