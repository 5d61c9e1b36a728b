/**
 * Password hashes and single-use tokens of the portal.
 *
 * Passwords: scrypt (RFC 7914) with a random 16-byte salt per password; the parameters are
 * stored in the hash so they can be raised later without invalidating older hashes. Checking
 * compares in constant time. Tokens (email verification, password reset): 32 random bytes,
 * sent in a link, stored only as their SHA-256 (a leaked database holds no usable token).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

const LOG2_N = 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 256;

function derive(password: string, salt: Buffer, log2n: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** log2n;
  return new Promise((resolve, reject) => {
    // scrypt needs 128·N·r bytes; allow twice that so the default 32 MiB cap does not refuse it.
    scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Unicode-normalised so the same password typed on two keyboards hashes the same. */
function normalise(password: string): string {
  return password.normalize("NFKC");
}

/** A reason the password is not acceptable, or undefined. */
export function passwordProblem(password: string): string | undefined {
  if (typeof password !== "string") return "a password is required";
  const n = [...normalise(password)].length;
  if (n < MIN_PASSWORD_LENGTH) return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`;
  if (n > MAX_PASSWORD_LENGTH) return `the password must have at most ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(normalise(password), salt, LOG2_N, R, P);
  return ["scrypt", LOG2_N, R, P, salt.toString("base64"), key.toString("base64")].join("$");
}

/** Checks a password against a stored hash in constant time; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [log2n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![log2n, r, p].every((v) => Number.isInteger(v) && v > 0) || log2n > 20 || r > 32 || p > 16)
    return false;
  const salt = Buffer.from(parts[4]!, "base64");
  const expected = Buffer.from(parts[5]!, "base64");
  if (expected.length !== KEY_LENGTH) return false;
  const key = await derive(normalise(String(password)), salt, log2n, r, p);
  return timingSafeEqual(key, expected);
}

let dummy: Promise<string> | undefined;

/**
 * A hash of no one's password: checked when an address has no account, so a login attempt
 * takes as long whether or not the address is registered.
 */
export function dummyPasswordHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(24).toString("base64"));
  return dummy;
}

/** A new token for a link, and the hash under which it is stored. */
export function newToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: tokenHash(token) };
}

export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Tokens are 43 characters of base64url; anything else is not worth a lookup. */
export function isTokenShaped(token: unknown): token is string {
  return typeof token === "string" && /^[A-Za-z0-9_-]{43}$/.test(token);
}
