import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  deriveCredentials,
  deriveCredentialsAsync,
  PasswordError,
  SALT_BYTES,
  verifyPassword,
  verifyPasswordAsync,
} from "../../src/core/sasl/credentials.js";
import { credentialFor } from "./scram-client.js";

const opts = { iterations: 4096, hashes: ["SHA-1", "SHA-256"] as ("SHA-1" | "SHA-256")[] };

describe("deriveCredentials", () => {
  test("one credential per hash, matching RFC 5802 key derivation over its own salt", () => {
    const creds = deriveCredentials("pencil", opts);
    assert.deepEqual(
      creds.map((c) => c.hash),
      ["SHA-1", "SHA-256"],
    );
    for (const c of creds) {
      assert.equal(c.iterations, 4096);
      assert.ok(c.salt.length >= SALT_BYTES && SALT_BYTES >= 16);
      assert.deepEqual(c, credentialFor(c.hash, "pencil", c.salt, c.iterations));
    }
    assert.notDeepEqual(creds[0]!.salt, creds[1]!.salt);
    assert.notDeepEqual(deriveCredentials("pencil", opts)[0]!.salt, creds[0]!.salt);
  });

  test("the iteration count and salt length come from the caller", () => {
    const [c] = deriveCredentials("pencil", { iterations: 5000, hashes: ["SHA-256"], saltBytes: 24 });
    assert.equal(c!.iterations, 5000);
    assert.equal(c!.salt.length, 24);
  });

  test("the async variant gives equivalent credentials", async () => {
    const creds = await deriveCredentialsAsync("pencil", opts);
    assert.equal(creds.length, 2);
    for (const c of creds) assert.deepEqual(c, credentialFor(c.hash, "pencil", c.salt, c.iterations));
  });

  test("the password is SASLprep'd (non-ASCII space → space, soft hyphen → nothing)", () => {
    const [c] = deriveCredentials("a\u00A0b\u00ADc", { iterations: 4096, hashes: ["SHA-256"] });
    assert.deepEqual(c, credentialFor("SHA-256", "a bc", c!.salt, 4096));
    assert.ok(verifyPassword("a bc", c!));
  });

  test("unusable passwords and options are refused", async () => {
    assert.throws(() => deriveCredentials("bell\u0007", opts), PasswordError);
    assert.throws(() => deriveCredentials("", opts), PasswordError);
    assert.throws(() => deriveCredentials("\u00AD", opts), PasswordError);
    await assert.rejects(deriveCredentialsAsync("bell\u0007", opts), PasswordError);
    assert.throws(() => deriveCredentials("pw", { iterations: 0, hashes: ["SHA-1"] }), RangeError);
    assert.throws(() => deriveCredentials("pw", { iterations: 1.5, hashes: ["SHA-1"] }), RangeError);
    assert.throws(() => deriveCredentials("pw", { iterations: 4096, hashes: [] }), RangeError);
    assert.throws(
      () => deriveCredentials("pw", { iterations: 4096, hashes: ["SHA-1", "SHA-1"] }),
      RangeError,
    );
    assert.throws(
      () => deriveCredentials("pw", { iterations: 4096, hashes: ["SHA-1"], saltBytes: 8 }),
      RangeError,
    );
  });
});

describe("verifyPassword", () => {
  const creds = deriveCredentials("correct horse", opts);

  test("accepts the password and refuses others, for each hash", async () => {
    for (const c of creds) {
      assert.equal(verifyPassword("correct horse", c), true);
      assert.equal(verifyPassword("correct horse ", c), false);
      assert.equal(verifyPassword("Correct horse", c), false);
      assert.equal(verifyPassword("", c), false);
      assert.equal(await verifyPasswordAsync("correct horse", c), true);
      assert.equal(await verifyPasswordAsync("wrong", c), false);
    }
  });

  test("a tampered or truncated stored key never matches", () => {
    const c = creds[1]!;
    const serverKey = Buffer.from(c.serverKey);
    serverKey[0]! ^= 1;
    assert.equal(verifyPassword("correct horse", { ...c, serverKey }), false);
    assert.equal(verifyPassword("correct horse", { ...c, storedKey: c.storedKey.subarray(0, 20) }), false);
  });

  test("the RFC 5802 credential verifies 'pencil'", () => {
    const c = credentialFor("SHA-1", "pencil", Buffer.from("QSXCR+Q6sek8bf92", "base64"), 4096);
    assert.ok(verifyPassword("pencil", c));
    assert.ok(!verifyPassword("pencils", c));
  });
});
