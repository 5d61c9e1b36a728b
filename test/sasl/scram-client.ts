/**
 * A SCRAM client written from RFC 5802 §3 and §5 for the tests, independent of the server code:
 * it builds the client messages, checks the server nonce and signature, and can be told to
 * misbehave (wrong channel-binding data, chosen GS2 flag).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import saslprep from "@mongodb-js/saslprep";

export type Hash = "SHA-1" | "SHA-256";

export interface ScramClientOptions {
  hash: Hash;
  username: string;
  password: string;
  authzid?: string;
  /** Client nonce; random by default. */
  nonce?: string;
  /** GS2 flag: "n", "y", or channel binding with its type and the data the client sees on its side. */
  binding?: "n" | "y" | { type: string; data: Buffer };
}

const ALG = { "SHA-1": "sha1", "SHA-256": "sha256" } as const;
const LEN = { "SHA-1": 20, "SHA-256": 32 } as const;

function escapeName(s: string): string {
  return s.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

export class ScramClient {
  readonly nonce: string;
  private readonly gs2Header: string;
  private readonly bare: string;
  private authMessage?: string;
  private saltedPassword?: Buffer;

  constructor(private readonly opts: ScramClientOptions) {
    this.nonce = opts.nonce ?? randomBytes(18).toString("base64");
    const b = opts.binding ?? "n";
    const flag = typeof b === "string" ? b : "p=" + b.type;
    this.gs2Header = flag + "," + (opts.authzid !== undefined ? "a=" + escapeName(opts.authzid) : "") + ",";
    this.bare = "n=" + escapeName(saslprep(opts.username)) + ",r=" + this.nonce;
  }

  first(): string {
    return this.gs2Header + this.bare;
  }

  /** The client-final-message for a server-first-message; throws if the server broke the protocol. */
  final(serverFirst: string): string {
    const m = /^r=([^,]+),s=([^,]+),i=(\d+)$/.exec(serverFirst);
    if (!m) throw new Error("unexpected server-first-message: " + serverFirst);
    const [, nonce, salt, iterations] = m as unknown as [string, string, string, string];
    if (!nonce.startsWith(this.nonce) || nonce === this.nonce)
      throw new Error("server nonce does not extend ours");
    const { hash } = this.opts;
    this.saltedPassword = pbkdf2Sync(
      saslprep(this.opts.password),
      Buffer.from(salt, "base64"),
      Number(iterations),
      LEN[hash],
      ALG[hash],
    );
    const b = this.opts.binding ?? "n";
    const cbData = typeof b === "string" ? Buffer.alloc(0) : b.data;
    const c = Buffer.concat([Buffer.from(this.gs2Header), cbData]).toString("base64");
    const withoutProof = "c=" + c + ",r=" + nonce;
    this.authMessage = this.bare + "," + serverFirst + "," + withoutProof;
    const clientKey = this.mac(this.saltedPassword, "Client Key");
    const storedKey = createHash(ALG[hash]).update(clientKey).digest();
    const signature = this.mac(storedKey, this.authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!));
    return withoutProof + ",p=" + proof.toString("base64");
  }

  /** Does the server-final-message carry the right ServerSignature? */
  verifyServer(serverFinal: string): boolean {
    if (!this.saltedPassword || !this.authMessage) return false;
    const serverKey = this.mac(this.saltedPassword, "Server Key");
    return serverFinal === "v=" + this.mac(serverKey, this.authMessage).toString("base64");
  }

  private mac(key: Buffer, data: string): Buffer {
    return createHmac(ALG[this.opts.hash], key).update(data).digest();
  }
}

/** A SCRAM credential for a password and a given salt, computed per RFC 5802 §3. */
export function credentialFor(hash: Hash, password: string, salt: Buffer, iterations: number) {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, LEN[hash], ALG[hash]);
  const mac = (key: Buffer, data: string) => createHmac(ALG[hash], key).update(data).digest();
  return {
    hash,
    salt,
    iterations,
    storedKey: createHash(ALG[hash]).update(mac(salted, "Client Key")).digest(),
    serverKey: mac(salted, "Server Key"),
  };
}
