/**
 * Client versions: dotted numeric strings ("4.7.2009", "5.0", "5.0.1"), validated
 * and compared one way everywhere (registry, proofs, statistics, docs).
 *
 * - Syntax: `^\d+(\.\d+)*$`, at most 8 components of at most 9 digits each (so
 *   every component fits a safe integer and a hostile value stays small).
 * - Components compare as numbers, left to right; missing components count as 0,
 *   so "5" == "5.0" == "5.0.0", and "4.7.2009" < "5.0" < "5.0.1".
 * - Leading zeros carry no meaning: "5.01" == "5.1".
 */
import type { VersionRange } from "./model.js";

export const MAX_VERSION_COMPONENTS = 8;
export const MAX_COMPONENT_DIGITS = 9;

const VERSION_SYNTAX = /^\d{1,9}(?:\.\d{1,9}){0,7}$/;

export class VersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VersionError";
  }
}

export function isValidVersion(v: string): boolean {
  return typeof v === "string" && VERSION_SYNTAX.test(v);
}

/** The numeric components of a version; throws VersionError when it is not a dotted numeric version. */
export function parseVersion(v: string): number[] {
  if (!isValidVersion(v)) {
    throw new VersionError(
      `invalid version "${v}": expected dotted numbers such as 5.0.1 (at most ${MAX_VERSION_COMPONENTS} components of at most ${MAX_COMPONENT_DIGITS} digits)`,
    );
  }
  return v.split(".").map(Number);
}

/** -1, 0 or 1 as `a` is older than, equal to or newer than `b`. Throws VersionError on invalid input. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** True when `from` ≤ `v` ≤ `to`. */
export function inRange(v: string, range: Pick<VersionRange, "from" | "to">): boolean {
  return compareVersions(range.from, v) <= 0 && compareVersions(v, range.to) <= 0;
}

/** Parses "FROM-TO" (or a single version, meaning FROM = TO) into an inclusive range. */
export function parseVersionRange(text: string): VersionRange {
  const [from, to, ...rest] = text.trim().split("-");
  if (from === undefined || rest.length > 0 || (to !== undefined && to.trim() === "")) {
    throw new VersionError(`invalid version range "${text}": expected FROM-TO, e.g. 4.7.0-4.7.3`);
  }
  const range = { from: from.trim(), to: (to ?? from).trim() };
  parseVersion(range.from);
  parseVersion(range.to);
  if (compareVersions(range.from, range.to) > 0) {
    throw new VersionError(`invalid version range "${text}": ${range.from} is newer than ${range.to}`);
  }
  return range;
}

export function formatVersionRange(range: Pick<VersionRange, "from" | "to">): string {
  return range.from === range.to ? range.from : `${range.from}-${range.to}`;
}
