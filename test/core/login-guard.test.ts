import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pino } from "pino";
import { LoginGuard } from "../../src/core/login-guard.js";

/** A guard on a hand-moved clock, with its warnings captured. */
function guard(opts: { perAddress?: number; perAccount?: number } = {}) {
  let now = 1_000_000;
  const warnings: string[] = [];
  const log = pino(
    { level: "warn" },
    {
      write: (line: string) => {
        warnings.push(JSON.parse(line).msg as string);
      },
    },
  );
  const g = new LoginGuard({
    perAddress: opts.perAddress ?? 10,
    perAccount: opts.perAccount ?? 5,
    windowMs: 300_000,
    maxDelayMs: 8000,
    trustedForMs: 30 * 86_400_000,
    now: () => now,
    log,
    face: "xmpp",
  });
  return {
    g,
    warnings,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** One failed attempt, begun and ended as the SASL layer does. */
function fail(g: LoginGuard, account: string, address: string): void {
  assert.equal(g.begin(address).refused, false, `${address} may try`);
  g.failed(account, address);
  g.end(address);
}

describe("LoginGuard", () => {
  test("an address that guesses too often is refused, and the log says so once", () => {
    const { g, warnings } = guard({ perAddress: 3 });
    for (const account of ["a", "b", "c"]) fail(g, account, "10.0.0.9");
    const verdict = g.begin("10.0.0.9");
    assert.equal(verdict.refused, true);
    assert.ok(verdict.refused && verdict.retryAfterMs > 0);
    g.begin("10.0.0.9");
    assert.equal(warnings.filter((w) => /from this address refused/.test(w)).length, 1);
    assert.equal(g.begin("10.0.0.10").refused, false, "other addresses are not affected");
  });

  test("the refusal lifts when the failures leave the window", () => {
    const { g, advance } = guard({ perAddress: 2 });
    fail(g, "a", "10.0.0.9");
    fail(g, "a", "10.0.0.9");
    assert.equal(g.begin("10.0.0.9").refused, true);
    advance(300_001);
    assert.equal(g.begin("10.0.0.9").refused, false);
  });

  test("a guesser's parallel attempts count once it has failed", () => {
    const { g } = guard({ perAddress: 3 });
    fail(g, "a", "10.0.0.9");
    assert.equal(g.begin("10.0.0.9").refused, false);
    assert.equal(g.begin("10.0.0.9").refused, false);
    assert.equal(g.begin("10.0.0.9").refused, true, "1 failure + 2 in flight reach the limit");
  });

  test("many clients behind one address log in side by side", () => {
    const { g } = guard({ perAddress: 3 });
    for (let i = 0; i < 50; i++) assert.equal(g.begin("192.0.2.1").refused, false);
  });

  test("an account under attack is slowed, never refused; its owner's usual address is not slowed", () => {
    const { g, warnings } = guard({ perAccount: 3 });
    g.succeeded("alice", "198.51.100.7");
    for (let i = 0; i < 3; i++) fail(g, "alice", `203.0.113.${i}`);
    assert.equal(g.delayMs("alice", "198.51.100.7"), 0, "the owner's address is trusted");
    assert.equal(g.delayMs("alice", "203.0.113.99"), 1000, "a new address waits");
    fail(g, "alice", "203.0.113.50");
    fail(g, "alice", "203.0.113.51");
    assert.equal(g.delayMs("alice", "203.0.113.99"), 4000, "doubling per further failure");
    for (let i = 0; i < 10; i++) fail(g, "alice", `203.0.113.${100 + i}`);
    assert.equal(g.delayMs("alice", "203.0.113.99"), 8000, "capped at maxDelayMs");
    assert.equal(g.begin("203.0.113.99").refused, false, "never refused for the account's sake");
    assert.equal(g.delayMs("bob", "203.0.113.99"), 0, "other accounts are not slowed");
    assert.equal(warnings.filter((w) => /on this account slowed/.test(w)).length, 1);
  });

  test("trust in an address expires", () => {
    const { g, advance } = guard({ perAccount: 1 });
    g.succeeded("alice", "198.51.100.7");
    advance(31 * 86_400_000);
    fail(g, "alice", "203.0.113.1");
    assert.ok(g.delayMs("alice", "198.51.100.7") > 0);
  });
});

describe("login guards shared between cluster nodes", () => {
  test("each guard counts the other's outcomes, without telling them back", () => {
    const a = guard({ perAddress: 4, perAccount: 3 });
    const b = guard({ perAddress: 4, perAccount: 3 });
    const fromA: unknown[] = [];
    const fromB: unknown[] = [];
    a.g.share((o) => {
      fromA.push(o);
      b.g.apply(o);
    });
    b.g.share((o) => {
      fromB.push(o);
      a.g.apply(o);
    });
    for (let i = 0; i < 4; i++) fail(i % 2 ? b.g : a.g, "carol", "192.0.2.9");
    assert.equal(fromA.length, 2);
    assert.equal(fromB.length, 2, "applied outcomes are not published again");
    assert.equal(a.g.begin("192.0.2.9").refused, true, "refused on the first node");
    assert.equal(b.g.begin("192.0.2.9").refused, true, "refused on the second node");
    // A success on one node makes the address trusted for the account on both.
    b.g.succeeded("carol", "198.51.100.1");
    assert.equal(a.g.delayMs("carol", "198.51.100.1"), 0);
    assert.ok(a.g.delayMs("carol", "198.51.100.2") > 0, "carol is under attack on both nodes");
  });
});
