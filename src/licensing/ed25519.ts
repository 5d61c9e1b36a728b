/**
 * Ed25519 signature verification for licence proofs: libsodium (the `sodium-native`
 * binding) when it loads, node:crypto otherwise. On the reference machine libsodium
 * verifies in about 65 µs against OpenSSL 3's 150 µs (`openssl speed ed25519`: 6,300
 * verifications/s), which is the difference between a proof costing about 5 % or about
 * 12 % of a login (`npm run bench`, licence proof section). The fallback keeps the
 * server working on a platform without a prebuilt binding.
 *
 * Both check RFC 8032 signatures; libsodium is the stricter (it rejects small-order keys
 * and non-canonical encodings), which only refuses signatures no honest signer makes.
 * Verification involves no secret, so neither implementation has a timing leak to guard.
 */

import { verify } from "node:crypto";
import { createRequire } from "node:module";
import { toKeyObject } from "./keys.js";

/** Checks signatures by one public key. */
export type SignatureCheck = (message: Buffer, signature: Buffer) => boolean;

interface Sodium {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}

function loadSodium(): Sodium | undefined {
  try {
    return createRequire(import.meta.url)("sodium-native") as Sodium;
  } catch {
    return undefined;
  }
}

const sodium = loadSodium();

export type Ed25519Implementation = "libsodium" | "node:crypto";

/** The implementations this process can use, fastest first. */
export const ed25519Implementations: readonly Ed25519Implementation[] = sodium
  ? ["libsodium", "node:crypto"]
  : ["node:crypto"];

const SIGNATURE_BYTES = 64;

/**
 * A verifier for the stored base64 raw public key (throws KeyError when it is not 32 bytes),
 * by the fastest implementation unless one is named.
 */
export function signatureCheck(
  publicKeyBase64: string,
  implementation: Ed25519Implementation = ed25519Implementations[0] ?? "node:crypto",
): SignatureCheck {
  if (implementation === "libsodium") {
    if (!sodium) throw new Error("libsodium (sodium-native) is not available in this process");
    const lib = sodium;
    // Parsed the node:crypto way as well, so both implementations reject the same malformed keys.
    toKeyObject(publicKeyBase64);
    const raw = Buffer.from(publicKeyBase64, "base64");
    return (message, signature) =>
      signature.length === SIGNATURE_BYTES && lib.crypto_sign_verify_detached(signature, message, raw);
  }
  const key = toKeyObject(publicKeyBase64);
  return (message, signature) => {
    try {
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  };
}
