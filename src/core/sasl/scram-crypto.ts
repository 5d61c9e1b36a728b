/** The SCRAM key schedule (RFC 5802 §3) over node:crypto. */
import { createHash, createHmac } from "node:crypto";
import type { ScramHash } from "../storage/types.js";

const NODE_DIGEST: Record<ScramHash, string> = { "SHA-1": "sha1", "SHA-256": "sha256" };

/** The node:crypto name of a SCRAM hash. */
export function nodeDigest(hash: ScramHash): string {
  return NODE_DIGEST[hash];
}

/** Output length of the hash in bytes: the length of keys, proofs and signatures. */
export function digestLength(hash: ScramHash): number {
  return hash === "SHA-1" ? 20 : 32;
}

export function hmac(hash: ScramHash, key: Buffer, data: string | Buffer): Buffer {
  return createHmac(NODE_DIGEST[hash], key).update(data).digest();
}

export function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(NODE_DIGEST[hash]).update(data).digest();
}

/** StoredKey and ServerKey from SaltedPassword. */
export function keysFromSaltedPassword(
  hash: ScramHash,
  salted: Buffer,
): { storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(hash, salted, "Client Key");
  return { storedKey: digest(hash, clientKey), serverKey: hmac(hash, salted, "Server Key") };
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
