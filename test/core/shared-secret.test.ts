import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { sharedSecret } from "../../src/core/storage/shared-secret.js";
import { openStorage } from "../../src/storage/index.js";

const root = mkdtempSync(join(tmpdir(), "switchboard-shared-secret-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => {
  const dir = join(root, `d${++counter}`);
  mkdirSync(dir);
  return dir;
};

describe("shared secrets", () => {
  test("created once: every reader of the same storage gets the same secret, also after a reopen", async () => {
    const dataDir = freshDir();
    const path = join(dataDir, "switchboard.sqlite");
    const storage = await openStorage({ backend: "sqlite", path });
    const together = await Promise.all([1, 2, 3].map(() => sharedSecret(storage, "dialback", freshDir(), 1)));
    assert.equal(together[0]!.length, 32);
    for (const s of together) assert.deepEqual(s, together[0]);
    const other = await sharedSecret(storage, "sasl-decoy", dataDir, 1);
    assert.notDeepEqual(other, together[0], "each name its own secret");
    await storage.close();
    const reopened = await openStorage({ backend: "sqlite", path });
    assert.deepEqual(await sharedSecret(reopened, "dialback", dataDir, 2), together[0]);
    await reopened.close();
  });

  test("a secret an earlier version kept in the data directory is adopted, and the storage then wins", async () => {
    const dataDir = freshDir();
    const legacy = Buffer.from("a secret made by an earlier version of the server");
    mkdirSync(join(dataDir, "secrets"));
    writeFileSync(join(dataDir, "secrets", "dialback"), legacy);
    const storage = await openStorage({ backend: "sqlite", path: join(dataDir, "switchboard.sqlite") });
    assert.deepEqual(await sharedSecret(storage, "dialback", dataDir, 1), legacy);
    // Another node's data directory with a file of its own: the stored secret is the one.
    const otherDir = freshDir();
    mkdirSync(join(otherDir, "secrets"));
    writeFileSync(join(otherDir, "secrets", "dialback"), Buffer.from("another node's file"));
    assert.deepEqual(await sharedSecret(storage, "dialback", otherDir, 2), legacy);
    await storage.close();
  });
});
