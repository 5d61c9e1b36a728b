/**
 * PLAIN (RFC 4616): the password travels in the clear inside TLS and is checked against the stored
 * SCRAM credential. Offered only on secure connections.
 */
import type { ScramCredential, ScramHash } from "../storage/types.js";
import { verifyPasswordAsync } from "./credentials.js";
import { decoyCredential } from "./decoy.js";
import { accountName, isOwnBareJid } from "./identity.js";
import type { SaslContext, SaslExchange, SaslMechanism, SaslResult } from "./mechanism.js";
import { challenge, decodeUtf8, failure, wrongPassword } from "./result.js";

/** Each of authzid, authcid and password; RFC 4616 asks for at least 255 octets. */
const MAX_FIELD_BYTES = 1023;
/** The stronger credential is preferred when an account has both. */
const HASH_PREFERENCE: ScramHash[] = ["SHA-256", "SHA-1"];

class PlainExchange implements SaslExchange {
  private done = false;
  private askedForInitial = false;

  constructor(private readonly ctx: SaslContext) {}

  async step(response: Buffer): Promise<SaslResult> {
    if (this.done) return failure("malformed-request", "the exchange is over");
    if (!this.ctx.secure) {
      this.done = true;
      return failure("encryption-required");
    }
    if (response.length === 0 && !this.askedForInitial) {
      this.askedForInitial = true;
      return challenge(Buffer.alloc(0));
    }
    this.done = true;
    return this.verify(response);
  }

  private async verify(response: Buffer): Promise<SaslResult> {
    const fields = splitMessage(response);
    if (typeof fields === "string") return failure("malformed-request", fields);
    const [authzid, authcid, password] = fields;
    const local = accountName(authcid);
    if (local === undefined) return failure("not-authorized");
    if (authzid !== "" && !isOwnBareJid(authzid, local, this.ctx.domain)) return failure("invalid-authzid");
    const username = this.ctx.accountKey(local);
    let stored: ScramCredential | undefined;
    try {
      stored = await this.credentialFor(username);
    } catch {
      return failure("temporary-auth-failure");
    }
    // An unknown account costs the same PBKDF2 run as a real one, so timing does not tell them apart.
    const cred =
      stored ??
      decoyCredential(username, "SHA-256", { secret: this.ctx.decoySecret, iterations: this.ctx.iterations });
    const ok = await verifyPasswordAsync(password, cred);
    return ok && stored ? { kind: "success", username } : wrongPassword(username);
  }

  private async credentialFor(username: string): Promise<ScramCredential | undefined> {
    for (const hash of HASH_PREFERENCE) {
      const cred = await this.ctx.getCredential(username, hash);
      if (cred) return cred;
    }
    return undefined;
  }
}

/** message = [authzid] NUL authcid NUL passwd; returns the three fields or what is wrong. */
function splitMessage(data: Buffer): [string, string, string] | string {
  const text = decodeUtf8(data);
  if (text === undefined) return "message is not UTF-8";
  const fields = text.split("\0");
  if (fields.length !== 3) return "expected authzid, authcid and password separated by NUL";
  const [authzid, authcid, password] = fields as [string, string, string];
  if (authcid === "" || password === "") return "empty authcid or password";
  for (const f of fields) if (Buffer.byteLength(f, "utf8") > MAX_FIELD_BYTES) return "field too long";
  return [authzid, authcid, password];
}

export const plain: SaslMechanism = {
  name: "PLAIN",
  available: (ctx) => ctx.secure,
  start: (ctx) => new PlainExchange(ctx),
};
