import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FailureLimiter, TokenBucket } from "../src/core/rate-limit.js";

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("FailureLimiter", () => {
  test("blocks at max failures within the window, per key", () => {
    const c = clock();
    const l = new FailureLimiter({ max: 3, windowMs: 60_000, maxKeys: 100, now: c.now });
    l.record("10.0.0.1");
    l.record("10.0.0.1");
    assert.equal(l.blocked("10.0.0.1"), false);
    l.record("10.0.0.1");
    assert.equal(l.blocked("10.0.0.1"), true);
    assert.equal(l.blocked("10.0.0.2"), false);
  });

  test("the window slides: old failures stop counting one by one", () => {
    const c = clock();
    const l = new FailureLimiter({ max: 3, windowMs: 60_000, maxKeys: 100, now: c.now });
    l.record("k"); // t=0
    c.t += 20_000;
    l.record("k"); // t=20s
    c.t += 20_000;
    l.record("k"); // t=40s
    assert.equal(l.blocked("k"), true);
    assert.equal(l.retryAfterMs("k"), 20_000);
    c.t += 19_999;
    assert.equal(l.blocked("k"), true);
    c.t += 1; // the first failure is now 60s old
    assert.equal(l.blocked("k"), false);
    assert.equal(l.retryAfterMs("k"), 0);
    l.record("k"); // t=60s: failures at 20, 40, 60
    assert.equal(l.blocked("k"), true);
    assert.equal(l.retryAfterMs("k"), 20_000);
  });

  test("keeps only the last max failures of a key", () => {
    const c = clock();
    const l = new FailureLimiter({ max: 2, windowMs: 1000, maxKeys: 10, now: c.now });
    for (let i = 0; i < 50; i++) {
      l.record("k");
      c.t += 100;
    }
    // Blocked until the second-to-last failure (at +4800) is 1000 ms old.
    assert.equal(l.retryAfterMs("k"), 4800 + 1000 - 5000);
  });

  test("reset forgets a key", () => {
    const l = new FailureLimiter({ max: 1, windowMs: 1000, maxKeys: 10, now: clock().now });
    l.record("juliet");
    assert.equal(l.blocked("juliet"), true);
    l.reset("juliet");
    assert.equal(l.blocked("juliet"), false);
    assert.equal(l.size, 0);
  });

  test("memory is bounded: the least recently failed key is evicted", () => {
    const c = clock();
    const l = new FailureLimiter({ max: 1, windowMs: 60_000, maxKeys: 3, now: c.now });
    l.record("a");
    l.record("b");
    l.record("c");
    l.record("a"); // a becomes the most recent
    l.record("d"); // evicts b
    assert.equal(l.size, 3);
    assert.deepEqual(
      ["a", "b", "c", "d"].map((k) => l.blocked(k)),
      [true, false, true, true],
    );
    for (let i = 0; i < 10_000; i++) l.record("flood-" + i);
    assert.equal(l.size, 3);
  });

  test("expired keys are dropped when touched and by sweep()", () => {
    const c = clock();
    const l = new FailureLimiter({ max: 5, windowMs: 1000, maxKeys: 10, now: c.now });
    l.record("a");
    l.record("b");
    c.t += 500;
    l.record("c");
    c.t += 600; // a and b expired, c still inside
    assert.equal(l.sweep(), 2);
    assert.equal(l.size, 1);
    c.t += 1000;
    assert.equal(l.blocked("c"), false);
    assert.equal(l.size, 0);
  });

  test("refuses nonsensical options", () => {
    assert.throws(() => new FailureLimiter({ max: 0, windowMs: 1, maxKeys: 1 }), RangeError);
    assert.throws(() => new FailureLimiter({ max: 1, windowMs: 0, maxKeys: 1 }), RangeError);
    assert.throws(() => new FailureLimiter({ max: 1, windowMs: 1, maxKeys: 0 }), RangeError);
  });
});

describe("TokenBucket", () => {
  test("starts full, takes all-or-nothing, refills at the rate up to capacity", () => {
    const c = clock();
    const b = new TokenBucket({ capacity: 100, refillPerSecond: 10, now: c.now });
    assert.equal(b.take(60), true);
    assert.equal(b.take(50), false); // only 40 left: nothing taken
    assert.equal(b.available(), 40);
    c.t += 1000;
    assert.equal(b.available(), 50);
    assert.equal(b.take(50), true);
    c.t += 60_000;
    assert.equal(b.available(), 100);
    assert.equal(b.take(), true);
    assert.equal(b.available(), 99);
  });

  test("waitMs tells how long until n tokens are there", () => {
    const c = clock();
    const b = new TokenBucket({ capacity: 10, refillPerSecond: 4, now: c.now });
    b.take(10);
    assert.equal(b.waitMs(2), 500);
    assert.equal(b.waitMs(11), Infinity);
    c.t += 500;
    assert.equal(b.waitMs(2), 0);
  });

  test("consume goes into debt and says how long to pause", () => {
    const c = clock();
    const b = new TokenBucket({ capacity: 1000, refillPerSecond: 1000, now: c.now });
    assert.equal(b.consume(600), 0);
    assert.equal(b.consume(900), 500); // balance -500
    assert.equal(b.take(1), false);
    c.t += 500;
    assert.equal(b.available(), 0);
    c.t += 1;
    assert.equal(b.take(1), true);
  });

  test("a clock stepping back neither adds nor removes tokens", () => {
    const c = clock();
    const b = new TokenBucket({ capacity: 10, refillPerSecond: 1, now: c.now });
    b.take(5);
    c.t -= 10_000;
    assert.equal(b.available(), 5);
    c.t += 1000;
    assert.equal(b.available(), 6);
  });

  test("zero refill: a fixed allowance", () => {
    const b = new TokenBucket({ capacity: 2, refillPerSecond: 0, now: clock().now });
    assert.ok(b.take() && b.take());
    assert.equal(b.take(), false);
    assert.equal(b.waitMs(), Infinity);
    assert.throws(() => new TokenBucket({ capacity: 0, refillPerSecond: 1 }), RangeError);
    assert.throws(() => new TokenBucket({ capacity: 1, refillPerSecond: -1 }), RangeError);
  });
});
