/**
 * SCRAM-SHA-1 client side (RFC 5802), without channel binding ("n,,"), as a benchmark client
 * needs it. The PBKDF2 result is cached per (password, salt, iterations) the way real clients
 * cache it, so the generator's CPU goes into the protocol rather than into key stretching.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

interface DerivedKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export class ScramKeyCache {
  private readonly keys = new Map<string, DerivedKeys>();
  /** PBKDF2 computations done (cache misses). */
  derivations = 0;

  get(password: string, salt: Buffer, iterations: number): DerivedKeys {
    const key = `${iterations}\u0000${salt.toString("base64")}\u0000${password}`;
    let keys = this.keys.get(key);
    if (!keys) {
      const salted = pbkdf2Sync(password, salt, iterations, 20, "sha1");
      const clientKey = hmac(salted, "Client Key");
      keys = { clientKey, storedKey: sha1(clientKey), serverKey: hmac(salted, "Server Key") };
      this.keys.set(key, keys);
      this.derivations++;
    }
    return keys;
  }
}

/** One SCRAM-SHA-1 exchange. */
export class ScramSha1Client {
  private readonly clientFirstBare: string;
  private readonly clientNonce: string;
  private expectedServerSignature: Buffer | undefined;

  constructor(
    username: string,
    private readonly password: string,
    private readonly cache: ScramKeyCache,
  ) {
    this.clientNonce = randomBytes(18).toString("base64");
    this.clientFirstBare = `n=${escapeName(username)},r=${this.clientNonce}`;
  }

  /** Base64 payload of the initial <auth/>. */
  initialResponse(): string {
    return Buffer.from(`n,,${this.clientFirstBare}`).toString("base64");
  }

  /** Base64 payload answering the server-first message (itself base64). */
  respond(challengeB64: string): string {
    const serverFirst = Buffer.from(challengeB64, "base64").toString();
    const fields = parseFields(serverFirst);
    const nonce = fields.get("r");
    const salt = fields.get("s");
    const iterations = Number(fields.get("i"));
    if (!nonce?.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new Error(`SCRAM: server nonce does not extend ours: ${serverFirst}`);
    }
    if (!salt || !Number.isInteger(iterations) || iterations < 1) {
      throw new Error(`SCRAM: bad server-first message: ${serverFirst}`);
    }
    const keys = this.cache.get(this.password, Buffer.from(salt, "base64"), iterations);
    const finalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${finalWithoutProof}`;
    const signature = hmac(keys.storedKey, authMessage);
    const proof = Buffer.alloc(signature.length);
    for (let i = 0; i < proof.length; i++) proof[i] = keys.clientKey[i]! ^ signature[i]!;
    this.expectedServerSignature = hmac(keys.serverKey, authMessage);
    return Buffer.from(`${finalWithoutProof},p=${proof.toString("base64")}`).toString("base64");
  }

  /** Checks the server signature carried by <success/> (base64 "v=…"). */
  verifySuccess(successB64: string): boolean {
    if (!this.expectedServerSignature) return false;
    const v = parseFields(Buffer.from(successB64, "base64").toString()).get("v");
    if (!v) return false;
    const got = Buffer.from(v, "base64");
    return (
      got.length === this.expectedServerSignature.length && timingSafeEqual(got, this.expectedServerSignature)
    );
  }
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac("sha1", key).update(text).digest();
}

function sha1(data: Buffer): Buffer {
  return createHash("sha1").update(data).digest();
}

function escapeName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function parseFields(message: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq === 1) fields.set(part[0]!, part.slice(2));
  }
  return fields;
}
