/**
 * Turning passwords into SCRAM credentials, the only form in which a password is kept, and checking a
 * password against them (for PLAIN). PBKDF2 is slow by design: the async variants run it on the libuv
 * thread pool so bulk imports and PLAIN logins do not stall the event loop.
 */
import { pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import type { ScramCredential, ScramHash } from "../storage/types.js";
import { saslprep } from "./saslprep.js";
import { digestLength, keysFromSaltedPassword, nodeDigest } from "./scram-crypto.js";

const pbkdf2Async = promisify(pbkdf2);

/** Salt length of new credentials, in bytes. */
export const SALT_BYTES = 16;

export interface DeriveOptions {
  iterations: number;
  hashes: ScramHash[];
  /** Salt length in bytes, at least SALT_BYTES (the default). */
  saltBytes?: number;
}

/** The password cannot be used: empty, or refused by SASLprep. */
export class PasswordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PasswordError";
  }
}

function preparePassword(password: string): string {
  const prepared = saslprep(password);
  if (prepared === undefined) throw new PasswordError("password contains a prohibited character");
  if (prepared === "") throw new PasswordError("password is empty");
  return prepared;
}

function checkOptions(opts: DeriveOptions): number {
  if (!Number.isInteger(opts.iterations) || opts.iterations < 1) {
    throw new RangeError("iterations must be a positive integer");
  }
  if (opts.hashes.length === 0) throw new RangeError("at least one hash is required");
  if (new Set(opts.hashes).size !== opts.hashes.length) throw new RangeError("hashes must not repeat");
  const saltBytes = opts.saltBytes ?? SALT_BYTES;
  if (!Number.isInteger(saltBytes) || saltBytes < SALT_BYTES) {
    throw new RangeError(`salt must be at least ${SALT_BYTES} bytes`);
  }
  return saltBytes;
}

function credential(hash: ScramHash, salt: Buffer, iterations: number, salted: Buffer): ScramCredential {
  return { hash, salt, iterations, ...keysFromSaltedPassword(hash, salted) };
}

/** Derives one credential per hash, each with its own random salt. Throws PasswordError or RangeError. */
export function deriveCredentials(password: string, opts: DeriveOptions): ScramCredential[] {
  const saltBytes = checkOptions(opts);
  const prepared = preparePassword(password);
  return opts.hashes.map((hash) => {
    const salt = randomBytes(saltBytes);
    const salted = pbkdf2Sync(prepared, salt, opts.iterations, digestLength(hash), nodeDigest(hash));
    return credential(hash, salt, opts.iterations, salted);
  });
}

/** deriveCredentials on the thread pool. */
export async function deriveCredentialsAsync(
  password: string,
  opts: DeriveOptions,
): Promise<ScramCredential[]> {
  const saltBytes = checkOptions(opts);
  const prepared = preparePassword(password);
  return Promise.all(
    opts.hashes.map(async (hash) => {
      const salt = randomBytes(saltBytes);
      const salted = await pbkdf2Async(prepared, salt, opts.iterations, digestLength(hash), nodeDigest(hash));
      return credential(hash, salt, opts.iterations, salted);
    }),
  );
}

function matches(cred: ScramCredential, salted: Buffer): boolean {
  const { storedKey, serverKey } = keysFromSaltedPassword(cred.hash, salted);
  if (cred.storedKey.length !== storedKey.length || cred.serverKey.length !== serverKey.length) return false;
  // Both comparisons always run, so the time taken does not depend on which key differs.
  const a = timingSafeEqual(cred.storedKey, storedKey);
  const b = timingSafeEqual(cred.serverKey, serverKey);
  return a && b;
}

/** Does the password match the credential? Compares in constant time; a password SASLprep refuses never matches. */
export function verifyPassword(password: string, cred: ScramCredential): boolean {
  const prepared = saslprep(password);
  if (!prepared) return false;
  const salted = pbkdf2Sync(
    prepared,
    cred.salt,
    cred.iterations,
    digestLength(cred.hash),
    nodeDigest(cred.hash),
  );
  return matches(cred, salted);
}

/** verifyPassword on the thread pool. */
export async function verifyPasswordAsync(password: string, cred: ScramCredential): Promise<boolean> {
  const prepared = saslprep(password);
  if (!prepared) return false;
  const salted = await pbkdf2Async(
    prepared,
    cred.salt,
    cred.iterations,
    digestLength(cred.hash),
    nodeDigest(cred.hash),
  );
  return matches(cred, salted);
}
