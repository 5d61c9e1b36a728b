/**
 * The signed bytes of a licence proof, checked against the canonical string of
 * the protocol (docs/licensing-protocol.md), and the signature over them.
 */
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { describe, test } from "node:test";
import { canonicalProofString, licenceProof, loadPrivateKey, proofPayload } from "../../sdk/proof.js";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();

const BINDING = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
const INPUT = {
  domain: "example.net",
  streamId: "c2s-7f3a9",
  nonce: "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
  bindingType: "tls-exporter" as const,
  bindingData: BINDING,
  clientId: "com.example.chat",
  version: "5.0.1",
  platform: "linux",
  keyId: "k1",
};

// Written out by hand from the protocol description, not computed by the code under test.
const EXPECTED =
  "switchboard-client-licence:0\n" +
  "example.net\n" +
  "c2s-7f3a9\n" +
  "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n" +
  "com.example.chat\n" +
  "5.0.1\n" +
  "linux\n" +
  "k1\n" +
  "tls-exporter:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

describe("licence proof", () => {
  test("canonical string: nine lines joined by \\n, no trailing newline", () => {
    assert.equal(canonicalProofString(INPUT), EXPECTED);
    assert.deepEqual(proofPayload(INPUT), Buffer.from(EXPECTED, "utf8"));
  });

  test("without a channel binding the last line is `none:`", () => {
    const { bindingData: _unused, ...rest } = INPUT;
    const s = canonicalProofString({ ...rest, bindingType: "none" });
    assert.equal(s.split("\n").at(-1), "none:");
    assert.equal(s.split("\n").length, 9);
  });

  test("tls-server-end-point is written with its own type name", () => {
    const s = canonicalProofString({ ...INPUT, bindingType: "tls-server-end-point" });
    assert.equal(s.split("\n").at(-1), `tls-server-end-point:${BINDING.toString("base64")}`);
  });

  test("non-ASCII fields are signed as UTF-8", () => {
    const payload = proofPayload({ ...INPUT, domain: "exämple.net" });
    assert.ok(payload.includes(Buffer.from([0xc3, 0xa4])), "ä as UTF-8 bytes");
  });

  test("the signature is Ed25519 over exactly the canonical bytes", () => {
    const sig = Buffer.from(licenceProof({ ...INPUT, privateKey: privateKeyPem }), "base64");
    assert.equal(sig.length, 64);
    assert.ok(verify(null, Buffer.from(EXPECTED, "utf8"), publicKey, sig));
    // The raw 32-byte public key (what the registry stores) verifies too.
    const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
    const fromRaw = createPublicKey({
      key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]),
      format: "der",
      type: "spki",
    });
    assert.ok(verify(null, Buffer.from(EXPECTED, "utf8"), fromRaw, sig));
  });

  test("changing any signed field invalidates the signature", () => {
    const sig = Buffer.from(licenceProof({ ...INPUT, privateKey }), "base64");
    const changes: Partial<typeof INPUT>[] = [
      { domain: "example.org" },
      { streamId: "c2s-other" },
      { nonce: "AAAA" },
      { clientId: "com.example.other" },
      { version: "5.0.2" },
      { platform: "android" },
      { keyId: "k2" },
      { bindingData: Buffer.alloc(32, 1) },
    ];
    for (const change of changes) {
      const other = proofPayload({ ...INPUT, ...change });
      assert.equal(verify(null, other, publicKey, sig), false, `accepted after ${JSON.stringify(change)}`);
    }
  });

  test("a line break in a field is refused (it would shift the lines)", () => {
    assert.throws(() => canonicalProofString({ ...INPUT, version: "5.0\nandroid" }), /line break/);
    assert.throws(() => canonicalProofString({ ...INPUT, clientId: "a\r" }), /line break/);
  });

  test("empty fields and a missing binding are refused", () => {
    assert.throws(() => canonicalProofString({ ...INPUT, keyId: "" }), /keyId is empty/);
    const { bindingData: _unused, ...rest } = INPUT;
    assert.throws(() => canonicalProofString(rest), /no binding data/);
  });

  test("only Ed25519 private keys sign", () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    assert.throws(() => loadPrivateKey(ec), /Ed25519 private key/);
    assert.throws(() => loadPrivateKey(publicKey), /Ed25519 private key/);
    assert.equal(loadPrivateKey(privateKeyPem).asymmetricKeyType, "ed25519");
  });
});
