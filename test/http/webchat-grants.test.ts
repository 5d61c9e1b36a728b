/** The web chat's grants (src/http/webchat/grants.ts): address, expiry, one account. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebChatGrants } from "../../src/http/webchat/grants.js";

function grants(max?: number) {
  let now = 1_000_000;
  const g = new WebChatGrants({ ttlMs: 60_000, now: () => now, ...(max ? { max } : {}) });
  return { g, advance: (ms: number) => (now += ms) };
}

test("a grant is good only from the address it was issued to", () => {
  const { g } = grants();
  const id = g.issue("192.0.2.1");
  assert.ok(g.use(id, "192.0.2.1"));
  assert.equal(g.use(id, "192.0.2.2"), undefined);
  assert.equal(g.use("unknown", "192.0.2.1"), undefined);
  assert.equal(g.use(undefined, "192.0.2.1"), undefined);
});

test("a grant ends ttl after its last use", () => {
  const { g, advance } = grants();
  const id = g.issue("192.0.2.1");
  advance(50_000);
  assert.ok(g.use(id, "192.0.2.1"), "used before its end: extended");
  advance(50_000);
  assert.ok(g.use(id, "192.0.2.1"));
  advance(60_001);
  assert.equal(g.use(id, "192.0.2.1"), undefined);
});

test("a grant binds to the first authenticated account; claims do not bind it", () => {
  const { g } = grants();
  const id = g.issue("192.0.2.1");
  const first = g.use(id, "192.0.2.1")!;
  assert.equal(first.allows("mallory", false), true, "an unverified claim is allowed to proceed…");
  assert.equal(first.allows("alice", true), true, "…and does not bind: alice authenticates");
  assert.equal(first.allows("alice", true), true);
  assert.equal(first.allows("bob", false), false);
  assert.equal(g.use(id, "192.0.2.1")!.allows("bob", true), false, "a later connection with it: alice only");
});

test("at most `max` grants are kept, the least recently used go first", () => {
  const { g } = grants(2);
  const a = g.issue("192.0.2.1");
  const b = g.issue("192.0.2.1");
  g.use(a, "192.0.2.1");
  g.issue("192.0.2.1");
  assert.equal(g.size, 2);
  assert.ok(g.use(a, "192.0.2.1"));
  assert.equal(g.use(b, "192.0.2.1"), undefined);
});
