/**
 * Licence tickets: proof resumption, as TLS 1.3 resumes a handshake. After a full Ed25519
 * proof over TLS the server hands the client a ticket and a secret; until the ticket expires
 * the client may prove its licence with an HMAC-SHA256 under that secret over the same
 * canonical bytes (domain, stream, nonce, claim, channel binding) instead of a signature.
 * A verification then costs two HMACs instead of an Ed25519 verification — the difference
 * that matters when a whole network reconnects at once after a restart.
 *
 * Tickets are stateless: the ticket carries the app, key and validity, authenticated by a
 * MAC under a network-wide key kept in storage (so every node and every restart accepts
 * them), and the secret is derived from the ticket under the same key. Nothing about a
 * ticket outlives the key: revoking the app key or the licence refuses its tickets at once,
 * because a ticket proof is judged against the registry like a signature is. A ticket only
 * stands in for the signature; it never outlasts `expiresAt`, and a client cannot extend it
 * (only full proofs are given tickets).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { DocumentStore, Storage } from "../core/storage/types.js";
import type { Instant } from "./model.js";

/** Storage of the network-wide ticket key. */
export const SECRETS_STORE = "licensing-secrets";
const TICKET_KEY = "ticket-key";
/**
 * A ticket's bytes: format version (1 byte), issue and expiry instants (two doubles), client
 * id and key id (each a length byte and UTF-8), then a truncated MAC of all that; base64url.
 */
const FORMAT_VERSION = 1;
const ISSUED_AT = 1;
const EXPIRES_AT = 9;
const HEADER_BYTES = 17;
const MAC_BYTES = 16;
/** Bytes of the HMAC-SHA256 a ticket proof carries. */
export const TICKET_PROOF_BYTES = 32;
/** What a ticket looks like on the wire (the proof parser and the ticket reader agree on it). */
export const TICKET_SYNTAX = /^[A-Za-z0-9_-]{1,512}$/;

export interface TicketClaims {
  clientId: string;
  keyId: string;
  issuedAt: Instant;
  expiresAt: Instant;
}

export interface IssuedTicket {
  /** The ticket, base64url: the client sends it back as is. */
  ticket: string;
  /** The secret the client keeps with it (never sent again). */
  secret: Buffer;
  expiresAt: Instant;
}

interface StoredTicketKey {
  key: string;
  createdAt: Instant;
}

function ticketKeys(storage: Storage): DocumentStore<StoredTicketKey> {
  return storage.documents<StoredTicketKey>(SECRETS_STORE);
}

/**
 * The network's ticket key: read, or created on first use (atomically, so concurrent nodes
 * agree). Read again after every registry change, so the common case writes nothing.
 */
export async function loadTicketKey(storage: Storage, now: Instant): Promise<Buffer> {
  const store = ticketKeys(storage);
  const stored =
    (await store.get(TICKET_KEY)) ??
    (await store.update(
      TICKET_KEY,
      (cur) => cur ?? { key: randomBytes(32).toString("base64"), createdAt: now },
    ));
  if (!stored) throw new Error("the licence ticket key could not be stored");
  return Buffer.from(stored.key, "base64");
}

/** Replaces the ticket key: every ticket issued so far stops being accepted. */
export async function rotateTicketKey(storage: Storage, now: Instant): Promise<void> {
  await ticketKeys(storage).put(TICKET_KEY, { key: randomBytes(32).toString("base64"), createdAt: now });
}

const hmac = (key: Buffer, ...parts: (Buffer | string)[]) => {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest();
};

function lengthPrefixed(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  if (bytes.length > 255) throw new RangeError("ticket field too long");
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

export class TicketBook {
  private macKey!: Buffer;
  private secretKey!: Buffer;

  /** `masterKey` from loadTicketKey; `lifetimeMs` is how long a ticket is accepted after the proof that earned it. */
  constructor(
    masterKey: Buffer,
    readonly lifetimeMs: number,
  ) {
    this.useKey(masterKey);
  }

  /** Switches to another network key (after a rotation): earlier tickets no longer open. */
  useKey(masterKey: Buffer): void {
    // Separate keys for the two uses, so a ticket's MAC says nothing about its secret.
    this.macKey = hmac(masterKey, "switchboard licence ticket mac");
    this.secretKey = hmac(masterKey, "switchboard licence ticket secret");
  }

  issue(clientId: string, keyId: string, now: Instant): IssuedTicket {
    const expiresAt = now + this.lifetimeMs;
    const header = Buffer.alloc(HEADER_BYTES);
    header[0] = FORMAT_VERSION;
    header.writeDoubleBE(now, ISSUED_AT);
    header.writeDoubleBE(expiresAt, EXPIRES_AT);
    const body = Buffer.concat([header, lengthPrefixed(clientId), lengthPrefixed(keyId)]);
    const ticket = Buffer.concat([body, hmac(this.macKey, body).subarray(0, MAC_BYTES)]).toString(
      "base64url",
    );
    return { ticket, secret: this.secretOf(ticket), expiresAt };
  }

  /** The claims of a ticket this network issued (whatever its expiry), or undefined. */
  open(ticket: string): TicketClaims | undefined {
    if (!TICKET_SYNTAX.test(ticket)) return undefined;
    const raw = Buffer.from(ticket, "base64url");
    if (raw.length < HEADER_BYTES + 2 + MAC_BYTES || raw[0] !== FORMAT_VERSION) return undefined;
    const body = raw.subarray(0, raw.length - MAC_BYTES);
    const mac = raw.subarray(raw.length - MAC_BYTES);
    if (!timingSafeEqual(mac, hmac(this.macKey, body).subarray(0, MAC_BYTES))) return undefined;
    let at = HEADER_BYTES;
    const readString = (): string | undefined => {
      const len = body[at];
      if (len === undefined || at + 1 + len > body.length) return undefined;
      const s = body.subarray(at + 1, at + 1 + len).toString("utf8");
      at += 1 + len;
      return s;
    };
    const clientId = readString();
    const keyId = readString();
    if (clientId === undefined || keyId === undefined || at !== body.length) return undefined;
    return {
      clientId,
      keyId,
      issuedAt: body.readDoubleBE(ISSUED_AT),
      expiresAt: body.readDoubleBE(EXPIRES_AT),
    };
  }

  /** The secret that goes with a ticket. */
  secretOf(ticket: string): Buffer {
    return hmac(this.secretKey, ticket);
  }

  /** Does `proof` (the HMAC the client sent) match `payload` under the ticket's secret? Constant time. */
  checkProof(ticket: string, payload: Buffer, proof: Buffer): boolean {
    if (proof.length !== TICKET_PROOF_BYTES) return false;
    return timingSafeEqual(proof, hmac(this.secretOf(ticket), payload));
  }
}
