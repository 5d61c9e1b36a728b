/**
 * Time-ordered unique ids: UUID version 7 (RFC 9562 §5.7) — 48 bits of Unix milliseconds, then
 * 74 random bits. Archive rows are indexed by their id; random ids (version 4) land on a random
 * page of that index, so once an archive outgrows memory every append reads and rewrites a
 * page of its own, while ids that grow with time are appended at the index's end (measured in
 * docs/benchmarks.md, "Archive row ids"). The random bits keep an id unguessable; the time it
 * reveals is the archive's own timestamp, which the archive shows its reader anyway.
 */
import { randomFillSync } from "node:crypto";

/** Random bytes fetched at once (10 per id): one call into the system's generator per 256 ids. */
const pool = Buffer.alloc(10 * 256);
let poolOffset = pool.length;
const bytes = Buffer.alloc(16);

/** A new UUID version 7 string, e.g. `0193a1c2-7f3e-7a4b-9c2d-5e6f7a8b9c0d`. */
export function timeOrderedId(now: number = Date.now()): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  bytes.writeUIntBE(now, 0, 6);
  pool.copy(bytes, 6, poolOffset, poolOffset + 10);
  poolOffset += 10;
  bytes[6] = 0x70 | (bytes[6]! & 0x0f); // version 7
  bytes[8] = 0x80 | (bytes[8]! & 0x3f); // variant 10
  const h = bytes.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
