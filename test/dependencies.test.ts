/**
 * Every package the lock file installs runs on the oldest Node.js the project says it
 * supports (`engines.node` of package.json): otherwise `npm ci` warns (EBADENGINE) on
 * that Node and the package may use what it lacks.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "./helpers/server.js";

interface Semver {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
}
const semver = createRequire(import.meta.url)("semver") as Semver;

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
}

const readJson = (file: string) => JSON.parse(readFileSync(path.join(REPO_ROOT, file), "utf8"));

describe("dependencies", () => {
  it("every locked package supports the oldest Node.js of package.json's engines", () => {
    const range = (readJson("package.json") as { engines: { node: string } }).engines.node;
    const oldest = semver.minVersion(range)?.version;
    assert.ok(oldest, `engines.node "${range}" has no lowest version`);
    const lock = readJson("package-lock.json") as { packages: Record<string, LockEntry> };
    const refused: string[] = [];
    let checked = 0;
    for (const [where, entry] of Object.entries(lock.packages)) {
      const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (where === "" || node === undefined) continue;
      checked++;
      if (!semver.satisfies(oldest, node)) refused.push(`${where}@${entry.version}: node ${node}`);
    }
    assert.ok(checked > 10, `only ${checked} locked packages state an engine: is the lock file read?`);
    assert.deepEqual(refused, [], `packages that do not run on Node.js ${oldest}`);
  });
});
