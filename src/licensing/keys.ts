/**
 * Ed25519 key helpers (node:crypto). Apps' public keys are stored as the raw 32-byte
 * encoding in base64 (RFC 8032 §5.1.5); publishers keep the private key, as PKCS#8 PEM.
 *
 * Node imports any 32 bytes as an Ed25519 public key, so `publicKeyFromInput` checks
 * the encoding itself: a canonical point on the curve, and not one of the small-order
 * points (with those a signature can be valid for many messages).
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyError";
  }
}

export interface GeneratedKeyPair {
  /** Raw 32-byte public key, base64: what the server stores (`app key add`). */
  publicKey: string;
  /** PKCS#8 PEM: stays with the publisher, is embedded in the client. */
  privateKeyPem: string;
}

export function generateKeyPair(): GeneratedKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return {
    publicKey: rawFromKeyObject(publicKey).toString("base64"),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

/**
 * Accepts a public key as base64 of the raw 32 bytes (padding optional) or as a PEM
 * SPKI block ("-----BEGIN PUBLIC KEY-----"), checks that it is a usable Ed25519 key,
 * and returns the canonical base64 of the raw bytes. Throws KeyError otherwise.
 */
export function publicKeyFromInput(input: string): string {
  const text = input.trim();
  let raw: Buffer;
  if (text.includes("-----BEGIN")) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw new KeyError("this is a private key: give the public key (only public keys are stored)");
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: text, format: "pem" });
    } catch (err) {
      throw new KeyError(`not a PEM public key: ${(err as Error).message}`);
    }
    if (key.asymmetricKeyType !== "ed25519") {
      throw new KeyError(`not an Ed25519 key (${key.asymmetricKeyType ?? "unknown type"})`);
    }
    raw = rawFromKeyObject(key);
  } else {
    if (!/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
      throw new KeyError(
        "expected the base64 of a raw 32-byte Ed25519 public key (44 characters) or a PEM block",
      );
    }
    raw = Buffer.from(text, "base64");
    if (raw.length !== 32 || raw.toString("base64").slice(0, 43) !== text.slice(0, 43)) {
      throw new KeyError("the base64 text does not encode exactly 32 bytes");
    }
  }
  checkPoint(raw);
  return raw.toString("base64");
}

/** A KeyObject for crypto.verify from the stored base64 raw public key. */
export function toKeyObject(publicKeyBase64: string): KeyObject {
  const raw = Buffer.from(publicKeyBase64, "base64");
  if (raw.length !== 32) throw new KeyError("an Ed25519 public key has 32 bytes");
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

/** SPKI DER header for Ed25519 (RFC 8410): SEQUENCE { AlgorithmIdentifier id-Ed25519, BIT STRING }. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function rawFromKeyObject(key: KeyObject): Buffer {
  const der = key.export({ format: "der", type: "spki" });
  if (der.length !== 44 || !der.subarray(0, 12).equals(SPKI_PREFIX)) {
    throw new KeyError("unexpected Ed25519 SPKI encoding");
  }
  return Buffer.from(der.subarray(12));
}

// --- Curve arithmetic for the point check (edwards25519, RFC 8032 §5.1) ---

const P = 2n ** 255n - 19n;
const mod = (a: bigint) => ((a % P) + P) % P;

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

const inv = (a: bigint) => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

type Point = { x: bigint; y: bigint };

/** Decodes per RFC 8032 §5.1.3, rejecting non-canonical encodings. */
function decodePoint(raw: Buffer): Point {
  const bytes = Buffer.from(raw);
  const sign = (bytes[31] ?? 0) >> 7;
  bytes[31] = (bytes[31] ?? 0) & 0x7f;
  const y = BigInt(`0x${Buffer.from(bytes).reverse().toString("hex")}`);
  if (y >= P) throw new KeyError("not a canonical Ed25519 point encoding");
  const y2 = (y * y) % P;
  const x2 = mod((y2 - 1n) * inv(D * y2 + 1n));
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = (x * SQRT_M1) % P;
  if (mod(x * x - x2) !== 0n) throw new KeyError("not a point on the Ed25519 curve");
  if (x === 0n && sign === 1) throw new KeyError("not a canonical Ed25519 point encoding");
  if (Number(x & 1n) !== sign) x = P - x;
  return { x, y };
}

/** Twisted Edwards addition (a = -1); complete, so it also doubles. */
function add(p: Point, q: Point): Point {
  const t = (D * p.x * q.x * p.y * q.y) % P;
  return {
    x: mod((p.x * q.y + p.y * q.x) * inv(1n + t)),
    y: mod((p.y * q.y + p.x * q.x) * inv(1n - t)),
  };
}

function checkPoint(raw: Buffer): void {
  let p = decodePoint(raw);
  // The curve's cofactor is 8: a point of small order becomes the neutral element (0, 1) after three doublings.
  for (let i = 0; i < 3; i++) p = add(p, p);
  if (p.x === 0n && p.y === 1n) throw new KeyError("a small-order point is not a usable public key");
}
