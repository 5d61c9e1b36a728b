import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import { mechanismsFor, type SaslResult } from "../../src/core/sasl/mechanism.js";
import { plain } from "../../src/core/sasl/plain.js";
import type { ScramCredential } from "../../src/core/storage/types.js";
import { fakeContext } from "./context.js";

const ITER = 4096;
const accounts: Record<string, ScramCredential[]> = {
  juliet: deriveCredentials("r0m30myr0m30", { iterations: ITER, hashes: ["SHA-1", "SHA-256"] }),
  // An account imported with SHA-1 only; PLAIN must still work.
  romeo: deriveCredentials("balcony", { iterations: ITER, hashes: ["SHA-1"] }),
  // Soft hyphen is mapped to nothing by SASLprep: the stored password is "IX".
  ix: deriveCredentials("I\u00ADX", { iterations: ITER, hashes: ["SHA-256"] }),
};

async function login(message: string | Buffer, secure = true): Promise<SaslResult> {
  const ctx = fakeContext(accounts, { secure, iterations: ITER });
  return plain.start(ctx).step(typeof message === "string" ? Buffer.from(message, "utf8") : message);
}

function condition(r: SaslResult): string | undefined {
  return r.kind === "failure" ? r.condition : undefined;
}

describe("PLAIN", () => {
  test("right password, without authzid", async () => {
    assert.deepEqual(await login("\0juliet\0r0m30myr0m30"), { kind: "success", username: "juliet" });
  });

  test("right password, with the user's own bare JID as authzid", async () => {
    const r = await login("juliet@example.com\0juliet\0r0m30myr0m30");
    assert.deepEqual(r, { kind: "success", username: "juliet" });
  });

  test("authcid is normalised; SHA-1-only accounts work; SASLprep maps the password", async () => {
    assert.deepEqual(await login("\0JULIET\0r0m30myr0m30"), { kind: "success", username: "juliet" });
    assert.deepEqual(await login("\0romeo\0balcony"), { kind: "success", username: "romeo" });
    assert.deepEqual(await login("\0ix\0IX"), { kind: "success", username: "ix" });
  });

  test("another identity as authzid is invalid-authzid", async () => {
    assert.equal(condition(await login("romeo@example.com\0juliet\0r0m30myr0m30")), "invalid-authzid");
    assert.equal(
      condition(await login("juliet@example.com/balcony\0juliet\0r0m30myr0m30")),
      "invalid-authzid",
    );
  });

  test("wrong password and unknown account give the same failure", async () => {
    const wrong = await login("\0juliet\0wrong");
    const unknown = await login("\0nobody\0wrong");
    // Both are checked passwords that were wrong: guesses, which the login limits count.
    const guess = { kind: "failure", condition: "not-authorized", passwordChecked: true };
    assert.deepEqual(wrong, { ...guess, username: "juliet" });
    assert.deepEqual(unknown, { ...guess, username: "nobody" });
  });

  test("a password with a prohibited character never matches", async () => {
    assert.equal(condition(await login("\0juliet\0r0m30\u0007myr0m30")), "not-authorized");
  });

  test("malformed messages", async () => {
    for (const m of [
      "juliet\0r0m30myr0m30",
      "\0juliet\0r0m30myr0m30\0",
      "\0\0r0m30myr0m30",
      "\0juliet\0",
      "\0" + "j".repeat(1024) + "\0pw",
    ]) {
      assert.equal(condition(await login(m)), "malformed-request", JSON.stringify(m.slice(0, 40)));
    }
    assert.equal(condition(await login(Buffer.from([0, 0x6a, 0, 0xff]))), "malformed-request");
  });

  test("an invalid authcid is not-authorized", async () => {
    assert.equal(condition(await login("\0jul iet\0pw")), "not-authorized");
  });

  test("no initial response: empty challenge, then the credentials", async () => {
    const ex = plain.start(fakeContext(accounts));
    assert.deepEqual(await ex.step(Buffer.alloc(0)), { kind: "challenge", data: Buffer.alloc(0) });
    assert.deepEqual(await ex.step(Buffer.from("\0juliet\0r0m30myr0m30")), {
      kind: "success",
      username: "juliet",
    });
    assert.equal(condition(await ex.step(Buffer.from("\0juliet\0r0m30myr0m30"))), "malformed-request");
  });

  test("not offered without TLS, and refused if tried anyway", async () => {
    const insecure = fakeContext(accounts, { secure: false });
    assert.equal(plain.available(insecure), false);
    assert.ok(!mechanismsFor(insecure).some((m) => m.name === "PLAIN"));
    assert.ok(mechanismsFor(fakeContext(accounts)).some((m) => m.name === "PLAIN"));
    assert.equal(condition(await login("\0juliet\0r0m30myr0m30", false)), "encryption-required");
  });
});
