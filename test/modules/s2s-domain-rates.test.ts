/** Per remote domain rate limits of federation (core/domain-rates.ts). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DomainRateLimits } from "../../src/core/domain-rates.js";

const DEFAULTS = { stanzasPerSecond: 10, burstStanzas: 5, bytesPerSecond: 1000, burstBytes: 2000 };

describe("DomainRateLimits", () => {
  test("a domain's burst passes, then each stanza waits for its share of the rate", () => {
    let now = 0;
    const rates = new DomainRateLimits(DEFAULTS, {}, undefined, () => now);
    for (let i = 0; i < 5; i++) assert.equal(rates.stanza("peer.example"), 0, `stanza ${i} of the burst`);
    assert.equal(rates.stanza("peer.example"), 100, "one stanza over: 100 ms at 10/s");
    assert.equal(rates.stanza("peer.example"), 200);
    now = 1000;
    assert.equal(rates.stanza("peer.example"), 0, "a second later the debt is paid and there is room");
  });

  test("the allowance is the domain's, not a stream's: every caller for one domain shares it", () => {
    const rates = new DomainRateLimits(DEFAULTS, {}, undefined, () => 0);
    // Two streams of one domain take from the same bucket.
    for (let i = 0; i < 3; i++) rates.stanza("peer.example");
    for (let i = 0; i < 2; i++) rates.stanza("peer.example");
    assert.ok(rates.stanza("peer.example") > 0);
    assert.equal(rates.stanza("other.example"), 0, "another domain has its own allowance");
    assert.deepEqual(rates.throttledCounts(), [["peer.example", 1]]);
  });

  test("per-domain settings override the defaults key by key; 0 is unlimited", () => {
    const rates = new DomainRateLimits(
      DEFAULTS,
      { "big.example": { stanzasPerSecond: 0 } },
      undefined,
      () => 0,
    );
    assert.deepEqual(rates.rateOf("big.example"), { ...DEFAULTS, stanzasPerSecond: 0 });
    for (let i = 0; i < 10_000; i++) assert.equal(rates.stanza("big.example"), 0);
    assert.equal(rates.bytes("big.example", 2000), 0);
    assert.equal(rates.bytes("big.example", 500), 500, "its byte limit is still the default");
  });

  test("a throttled domain is reported once a minute, not once per stanza", () => {
    let now = 0;
    const reports: string[] = [];
    const rates = new DomainRateLimits(
      DEFAULTS,
      {},
      (domain, what) => reports.push(`${domain} ${what}`),
      () => now,
    );
    for (let i = 0; i < 50; i++) rates.stanza("peer.example");
    assert.deepEqual(reports, ["peer.example stanzas"]);
    now = 61_000;
    for (let i = 0; i < 50; i++) rates.stanza("peer.example");
    assert.equal(reports.length, 2);
  });
});
