/** Signature checks: libsodium and node:crypto accept and refuse the same proofs. */
import assert from "node:assert/strict";
import { createPrivateKey, sign } from "node:crypto";
import { describe, it } from "node:test";
import {
  type Ed25519Implementation,
  ed25519Implementations,
  generateKeyPair,
  KeyError,
  signatureCheck,
} from "../../src/licensing/index.js";
import { requirePeer } from "../helpers/services.js";

const signer = generateKeyPair();
const other = generateKeyPair();
const message = Buffer.from("switchboard-licence-proof-v1\nexample.org\nstream-1\nnonce");
const signature = sign(null, message, createPrivateKey(signer.privateKeyPem));

const sodiumSkip = await requirePeer("the libsodium binding (npm sodium-native)", () =>
  ed25519Implementations.includes("libsodium") ? true : "sodium-native did not load",
);

function flip(buf: Buffer, index: number): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

for (const impl of ["libsodium", "node:crypto"] as Ed25519Implementation[]) {
  describe(`Ed25519 by ${impl}`, { skip: impl === "libsodium" ? sodiumSkip : false }, () => {
    const check = () => signatureCheck(signer.publicKey, impl);

    it("accepts the signature of the key's holder", () => {
      assert.equal(check()(message, signature), true);
    });

    it("refuses a changed message, a changed signature and another key", () => {
      assert.equal(check()(flip(message, 3), signature), false);
      assert.equal(check()(message, flip(signature, 0)), false);
      assert.equal(check()(message, flip(signature, 40)), false);
      assert.equal(signatureCheck(other.publicKey, impl)(message, signature), false);
    });

    it("refuses a signature of the wrong length without throwing", () => {
      assert.equal(check()(message, signature.subarray(0, 63)), false);
      assert.equal(check()(message, Buffer.concat([signature, Buffer.alloc(1)])), false);
      assert.equal(check()(message, Buffer.alloc(0)), false);
    });

    it("refuses a public key that is not 32 bytes", () => {
      assert.throws(() => signatureCheck(Buffer.alloc(31).toString("base64"), impl), KeyError);
    });

    it("agrees with the other implementation on many signatures", () => {
      for (let i = 0; i < 50; i++) {
        const m = Buffer.from(`message ${i}`);
        const s = sign(null, m, createPrivateKey(signer.privateKeyPem));
        const tampered = i % 2 === 0 ? flip(s, i % 64) : s;
        const expected = signatureCheck(signer.publicKey, "node:crypto")(m, tampered);
        assert.equal(check()(m, tampered), expected, `signature ${i}`);
        assert.equal(expected, i % 2 === 1);
      }
    });
  });
}
