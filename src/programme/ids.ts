/** Record ids that sort by creation time (so listing a store by key lists oldest first). */
import { randomBytes } from "node:crypto";
import type { Instant } from "../modules/licensing/model.js";

/** "<prefix>_<time, base 36, 9 digits><10 random hex digits>". */
export function newId(prefix: string, now: Instant): string {
  return `${prefix}_${Math.max(0, Math.floor(now)).toString(36).padStart(9, "0")}${randomBytes(5).toString("hex")}`;
}

const ID_SYNTAX = /^[a-z]{2,4}_[0-9a-z]{9}[0-9a-f]{10}$/;

/** Is `id` shaped like an id of ours with this prefix (checked before it goes into a storage key)? */
export function isId(prefix: string, id: string): boolean {
  return ID_SYNTAX.test(id) && id.startsWith(`${prefix}_`);
}
