/**
 * FAST tokens as stored (XEP-0484): per account and client (the SASL2 user-agent id), two
 * slots as the XEP's implementation notes suggest — the token in use and one issued but not
 * used yet — so a client that missed the new token can still log in with the old one.
 *
 * A token is never stored: only its SHA-256. Tokens are longer than the HMAC block (64
 * bytes), and HMAC replaces such a key with its hash (RFC 2104 §2), so HMAC keyed with the
 * stored hash is HMAC keyed with the token: the HT mechanisms' proofs are computed from it.
 * Whoever reads the store can therefore compute proofs too (as for any HT mechanism, the
 * server must be able to); it does not learn the tokens the clients hold.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { KeyValueStore, ScramCredential } from "../../core/storage/types.js";

/** The key-value store of the tokens (per account: deleted with the account). */
export const FAST_STORE = "fast-tokens";
/** 72 random bytes: a 96-character token, longer than SHA-256's 64-byte HMAC block. */
const TOKEN_BYTES = 72;

export interface StoredToken {
  /** SHA-256 of the token (base64): the HMAC key of the proofs (see above). */
  key: string;
  /** The mechanism the token was requested for; it is valid with that one only. */
  mechanism: string;
  issuedAt: number;
  expiresAt: number;
  /** The highest `count` accepted with this token (replay protection). */
  count?: number;
}

export interface ClientTokens {
  /** The client's SASL2 user-agent id, and what it said of itself (unverified). */
  agentId: string;
  software?: string;
  device?: string;
  /** The account's password when the tokens were issued (a tag of its credentials): a new one voids them. */
  credentialTag: string;
  /** The token the client last logged in with. */
  current?: StoredToken;
  /** Issued and not used yet; it becomes `current` at its first use, which voids the old one. */
  next?: StoredToken;
  lastUsedAt?: number;
}

export function newToken(): { token: string; key: Buffer } {
  const token = randomBytes(TOKEN_BYTES).toString("base64");
  return { token, key: createHash("sha256").update(token, "utf8").digest() };
}

/** draft-schmaus-kitten-sasl-ht: HMAC(token, "Initiator" || cb-data) or "Responder". */
export function htProof(key: Buffer, role: "Initiator" | "Responder", cbData: Buffer): Buffer {
  return createHmac("sha256", key).update(role, "utf8").update(cbData).digest();
}

/** Constant-time comparison of a proof with the expected one. */
export function sameProof(expected: Buffer, given: Buffer): boolean {
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Changes whenever the password does (every new password gets new salts). */
export function credentialTag(credentials: readonly ScramCredential[]): string {
  const h = createHash("sha256");
  for (const c of credentials) h.update(c.hash).update(c.salt).update(c.storedKey);
  return h.digest("base64url").slice(0, 22);
}

function storeKey(agentId: string): string {
  return `client:${createHash("sha256").update(agentId, "utf8").digest("base64url")}`;
}

/** The tokens of each account's clients in a key-value store. */
export class FastTokens {
  constructor(private readonly kv: KeyValueStore) {}

  async get(username: string, agentId: string): Promise<ClientTokens | undefined> {
    return parse(await this.kv.get(username, storeKey(agentId)));
  }

  put(username: string, tokens: ClientTokens): Promise<void> {
    return this.kv.set(username, storeKey(tokens.agentId), JSON.stringify(tokens));
  }

  delete(username: string, agentId: string): Promise<void> {
    return this.kv.delete(username, storeKey(agentId));
  }

  async list(username: string): Promise<ClientTokens[]> {
    const out: ClientTokens[] = [];
    for (const key of await this.kv.keys(username)) {
      if (!key.startsWith("client:")) continue;
      const tokens = parse(await this.kv.get(username, key));
      if (tokens) out.push(tokens);
    }
    return out;
  }

  /** Removes every token of the account; returns how many clients had some. */
  async deleteAll(username: string): Promise<number> {
    let n = 0;
    for (const key of await this.kv.keys(username)) {
      if (!key.startsWith("client:")) continue;
      await this.kv.delete(username, key);
      n++;
    }
    return n;
  }
}

function parse(text: string | undefined): ClientTokens | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as ClientTokens;
    return typeof value.agentId === "string" && typeof value.credentialTag === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
