/** XEP-0198 sequence arithmetic (wrapping at 2^32) and the unacknowledged-stanza queue. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  advance,
  distance,
  H_MODULUS,
  HandledCountTooHigh,
  parseH,
  restoredQueue,
  UnackedQueue,
} from "../../src/modules/stream-management/queue.js";

const MAX = H_MODULUS - 1;

describe("h arithmetic", () => {
  test("advance wraps from 2^32 - 1 to 0 (XEP-0198 §4)", () => {
    assert.equal(advance(0), 1);
    assert.equal(advance(MAX), 0);
    assert.equal(advance(MAX - 1, 3), 1);
  });

  test("distance counts across the wrap", () => {
    assert.equal(distance(5, 5), 0);
    assert.equal(distance(5, 9), 4);
    assert.equal(distance(MAX, 0), 1);
    assert.equal(distance(MAX - 2, 2), 5);
    // Going backwards is a huge forward distance, never a negative one.
    assert.equal(distance(9, 5), H_MODULUS - 4);
  });

  test("parseH accepts unsignedInt values only", () => {
    assert.equal(parseH("0"), 0);
    assert.equal(parseH("4294967295"), MAX);
    for (const bad of [undefined, "", "-1", "4294967296", "1.5", "0x10", " 1", "99999999999"])
      assert.equal(parseH(bad), undefined, String(bad));
  });
});

describe("the unacknowledged queue", () => {
  test("acks remove the oldest items and keep acked + length = sent", () => {
    const q = new UnackedQueue<string>();
    for (const s of ["a", "b", "c", "d"]) q.push(s);
    assert.equal(q.sent, 4);
    assert.deepEqual(q.ack(2), ["a", "b"]);
    assert.deepEqual(q.pending(), ["c", "d"]);
    assert.deepEqual(q.ack(2), [], "the same h again acknowledges nothing");
    assert.deepEqual(q.ack(4), ["c", "d"]);
    assert.equal(q.length, 0);
  });

  test("an h above what was sent throws and changes nothing", () => {
    const q = new UnackedQueue<number>();
    q.push(1);
    q.push(2);
    assert.throws(
      () => q.ack(3),
      (e: unknown) => e instanceof HandledCountTooHigh && e.h === 3 && e.sendCount === 2,
    );
    q.ack(2);
    assert.throws(() => q.ack(2 + 1), HandledCountTooHigh);
    assert.equal(q.acked, 2);
  });

  test("an h behind the last acknowledged one acknowledges nothing and changes nothing", () => {
    const q = new UnackedQueue<string>();
    for (const s of ["a", "b", "c"]) q.push(s);
    assert.deepEqual(q.ack(1), ["a"]);
    // @xmpp/client sends <a h='1'/> then <a h='0'/> when stanzas came with <enabled/>.
    assert.deepEqual(q.ack(0), []);
    assert.equal(q.acked, 1);
    assert.deepEqual(q.pending(), ["b", "c"]);
    assert.deepEqual(q.ack(3), ["b", "c"], "later acknowledgements count from the last good h");
  });

  test("an h further behind than everything ever acknowledged is too high (a wrap-around distance)", () => {
    const q = new UnackedQueue<number>();
    for (let i = 0; i < 3; i++) q.push(i);
    q.ack(2);
    assert.throws(
      () => q.ack(MAX),
      (e: unknown) => e instanceof HandledCountTooHigh && e.h === MAX && e.sendCount === 3,
    );
    assert.equal(q.acked, 2);
  });

  test("a resumed queue knows what was acknowledged before it (stale h across a resumption)", () => {
    const q = restoredQueue(5, ["f", "g"]);
    assert.deepEqual(q.ack(3), [], "behind the 5 acknowledged before the resumption");
    assert.deepEqual(q.ack(6), ["f"]);
  });

  test("counting continues across 2^32", () => {
    const q = new UnackedQueue<number>();
    q.sent = MAX - 1;
    q.acked = MAX - 1;
    for (let i = 0; i < 4; i++) q.push(i);
    assert.equal(q.sent, 2, "wrapped");
    assert.deepEqual(q.ack(MAX), [0]);
    assert.deepEqual(q.ack(0), [1]);
    assert.deepEqual(q.ack(2), [2, 3]);
    assert.equal(q.length, 0);
  });

  test("memory follows what is unacknowledged (the acknowledged prefix is compacted)", () => {
    const q = new UnackedQueue<number>();
    for (let i = 0; i < 10_000; i++) {
      q.push(i);
      if (i % 10 === 9) q.ack(q.sent);
    }
    assert.equal(q.length, 0);
    const items = (q as unknown as { items: number[] }).items;
    assert.ok(items.length <= 64, `${items.length} items kept`);
  });

  test("a queue acknowledged to the end keeps none of its stanzas (an idle session holds none)", () => {
    const q = new UnackedQueue<{ stanza: string }>();
    for (const s of ["iq result", "presence", "ping result"]) q.push({ stanza: s });
    q.ack(2);
    const items = (): unknown[] => (q as unknown as { items: unknown[] }).items;
    assert.equal(items().length - q.length, 2, "a partly acknowledged queue may keep its prefix");
    q.ack(3);
    assert.equal(q.length, 0);
    assert.equal(items().length, 0);
    q.push({ stanza: "message" });
    assert.deepEqual(q.pending(), [{ stanza: "message" }]);
    assert.equal(q.sent, 4);
    assert.equal(q.acked, 3);
  });

  test("drain hands back everything unacknowledged", () => {
    const q = new UnackedQueue<string>();
    q.push("x");
    q.push("y");
    q.ack(1);
    assert.deepEqual(q.drain(), ["y"]);
    assert.equal(q.length, 0);
  });
});
