/**
 * The licence proof of the Switchboard client-licence protocol
 * (urn:switchboard:client-licence:0): the canonical bytes a client signs with
 * its app's Ed25519 key, and the signature. Pure apart from node:crypto, so any
 * carrier (the stream feature, a future SASL2 <authenticate/>) can reuse it.
 * The protocol is described in docs/licensing-protocol.md.
 */
import { createHmac, createPrivateKey, type KeyObject, sign } from "node:crypto";

/** XML namespace of the protocol's elements. */
export const LICENCE_NS = "urn:switchboard:client-licence:0";

/** First line of the signed string: names the protocol and its version, so a signature means nothing elsewhere. */
export const PROOF_CONTEXT = "switchboard-client-licence:0";

/** Channel-binding types a proof can be bound to; "none" when the server offered no binding. */
export type BindingType = "tls-exporter" | "tls-server-end-point" | "none";

/** Everything the signature covers. */
export interface ProofInput {
  /** The XMPP domain of the stream (the `to` of the client's stream header). */
  domain: string;
  /** The `id` of the server's current stream header. */
  streamId: string;
  /** The nonce from the <licence/> feature, base64 exactly as the server sent it. */
  nonce: string;
  /** The binding type the server offered, or "none". */
  bindingType: BindingType;
  /** The binding data computed from this client's TLS connection (empty for "none"). */
  bindingData?: Uint8Array;
  /** The app's stable public identifier, e.g. "com.example.chat". */
  clientId: string;
  /** Dotted numeric version of the client, e.g. "5.0.1". */
  version: string;
  /** Platform name in lower case, e.g. "linux". */
  platform: string;
  /** Id of the app key that signs. */
  keyId: string;
}

/** Input of licenceProof: the signed fields plus the app's private key (PEM, or a KeyObject). */
export interface SignedProofInput extends ProofInput {
  privateKey: KeyObject | string;
}

/** A field with a line break could shift the lines of the canonical string: refuse it. */
function line(name: string, value: string): string {
  if (typeof value !== "string" || value.length === 0) throw new TypeError(`licence proof: ${name} is empty`);
  if (/[\r\n]/.test(value)) throw new TypeError(`licence proof: ${name} contains a line break`);
  return value;
}

/**
 * The canonical string: these lines joined by "\n" (no trailing newline):
 * context, domain, stream id, nonce, client id, version, platform, key id,
 * and `<binding type>:<base64 binding data>` (or `none:`).
 */
export function canonicalProofString(input: ProofInput): string {
  let binding: string;
  if (input.bindingType === "none") {
    binding = "none:";
  } else {
    if (!input.bindingData || input.bindingData.length === 0) {
      throw new TypeError(`licence proof: no binding data for ${input.bindingType}`);
    }
    binding = `${input.bindingType}:${Buffer.from(input.bindingData).toString("base64")}`;
  }
  return [
    PROOF_CONTEXT,
    line("domain", input.domain),
    line("streamId", input.streamId),
    line("nonce", input.nonce),
    line("clientId", input.clientId),
    line("version", input.version),
    line("platform", input.platform),
    line("keyId", input.keyId),
    binding,
  ].join("\n");
}

/** The signed bytes: UTF-8 of the canonical string. */
export function proofPayload(input: ProofInput): Buffer {
  return Buffer.from(canonicalProofString(input), "utf8");
}

/** Parses a PEM private key once, so a client signing many proofs does not re-parse it. */
export function loadPrivateKey(key: KeyObject | string): KeyObject {
  const k = typeof key === "string" ? createPrivateKey(key) : key;
  if (k.type !== "private" || k.asymmetricKeyType !== "ed25519") {
    throw new TypeError("licence proof: the key must be an Ed25519 private key");
  }
  return k;
}

/** The Ed25519 signature over the canonical bytes, base64: the text of <proof/>. */
export function licenceProof(input: SignedProofInput): string {
  return sign(null, proofPayload(input), loadPrivateKey(input.privateKey)).toString("base64");
}

/**
 * The proof made with a ticket (protocol section 2.5): HMAC-SHA256 keyed with the ticket's
 * secret over the same canonical bytes, base64: the text of a <proof ticket='…'/>.
 */
export function ticketProof(input: ProofInput, secret: Uint8Array): string {
  return createHmac("sha256", secret).update(proofPayload(input)).digest("base64");
}
