/** Record ids that sort by creation time (so listing a store by key lists oldest first). */
import { randomBytes } from "node:crypto";
import type { Instant } from "../licensing/index.js";

/** Last stamp handed out: ids made in the same millisecond still sort in creation order. */
let lastStamp = 0;

/** "<prefix>_<12 base-36 digits: creation time in µs, strictly increasing in this process><8 random hex digits>". */
export function newId(prefix: string, now: Instant): string {
  lastStamp = Math.max(Math.max(0, Math.floor(now)) * 1000, lastStamp + 1);
  return `${prefix}_${lastStamp.toString(36).padStart(12, "0")}${randomBytes(4).toString("hex")}`;
}

const ID_SYNTAX = /^[a-z]{2,4}_[0-9a-z]{12}[0-9a-f]{8}$/;

/** Is `id` shaped like an id of ours with this prefix (checked before it goes into a storage key)? */
export function isId(prefix: string, id: string): boolean {
  return ID_SYNTAX.test(id) && id.startsWith(`${prefix}_`);
}
