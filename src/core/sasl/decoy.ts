/**
 * Fake credentials for accounts that do not exist, so that a SCRAM server-first-message (salt and
 * iteration count) looks the same for a real and an unknown account and existence is not leaked.
 * The salt is a keyed function of the username: asking twice gives the same answer, as for a real one.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { ScramCredential, ScramHash } from "../storage/types.js";
import { SALT_BYTES } from "./credentials.js";
import { digestLength } from "./scram-crypto.js";

/** Iteration count used when the context does not say (RFC 7677 §4 minimum). */
export const DEFAULT_DECOY_ITERATIONS = 4096;

let processSecret: Buffer | undefined;

function secretOrDefault(secret: Buffer | undefined): Buffer {
  if (secret && secret.length > 0) return secret;
  processSecret ??= randomBytes(32);
  return processSecret;
}

function derive(secret: Buffer, label: string, hash: ScramHash, username: string, length: number): Buffer {
  return createHmac("sha256", secret)
    .update(label + "\0" + hash + "\0" + username)
    .digest()
    .subarray(0, length);
}

export function decoyCredential(
  username: string,
  hash: ScramHash,
  opts: { secret?: Buffer; iterations?: number },
): ScramCredential {
  const secret = secretOrDefault(opts.secret);
  const len = digestLength(hash);
  return {
    hash,
    salt: derive(secret, "salt", hash, username, SALT_BYTES),
    iterations: opts.iterations ?? DEFAULT_DECOY_ITERATIONS,
    // Never revealed; a proof cannot match them short of breaking HMAC, and the caller also refuses by flag.
    storedKey: derive(secret, "stored-key", hash, username, len),
    serverKey: derive(secret, "server-key", hash, username, len),
  };
}
