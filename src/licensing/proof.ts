/**
 * The proof verifier, shared by every carrier of a proof (the pre-authentication
 * stream feature now, a SASL2 <authenticate/> element later). Given what the
 * proof is bound to, the claim and a registry snapshot, it says whether the app,
 * its key, the signature and a licence are good. Pure apart from the signature
 * check (ed25519.ts; Ed25519 verification does not branch on secrets).
 */
import { type SignatureCheck, signatureCheck } from "./ed25519.js";
import type { AppKey, ClientApp, Instant, Licence } from "./model.js";
import { keyAndLicence } from "./policy.js";
import {
  type ProofClaim,
  type ProofContext,
  proofSignedBytes,
  type Refusal,
  SIGNATURE_BYTES,
} from "./protocol.js";
import type { LicensingSnapshot } from "./registry.js";
import type { TicketBook } from "./tickets.js";
import { isValidVersion } from "./version.js";

export interface ProofInput extends ProofContext {
  proof: ProofClaim;
}

export type ProofVerdict =
  | { ok: true; app: ClientApp; key: AppKey; licence: Licence; resumed: boolean }
  | ({ ok: false; app?: ClientApp; key?: AppKey } & Refusal)
  /** The ticket is not accepted (expired, or not this network's): a signed proof may follow. */
  | { ok: false; ticketRefused: string };

/** Verifiers by the public key's base64 text; an app has few keys, so this stays small. */
const checkCache = new Map<string, SignatureCheck>();
const CHECK_CACHE_MAX = 4096;

function checkFor(publicKey: string): SignatureCheck {
  let check = checkCache.get(publicKey);
  if (!check) {
    check = signatureCheck(publicKey);
    if (checkCache.size >= CHECK_CACHE_MAX) checkCache.clear();
    checkCache.set(publicKey, check);
  }
  return check;
}

const badProof = (text: string): ProofVerdict => ({ ok: false, reason: "bad-proof", text });

/**
 * `tickets` accepts ticket proofs (HMAC under a ticket's secret, tickets.ts) beside
 * signatures; without it every ticket is refused.
 */
export function verifyProof(
  input: ProofInput,
  snapshot: LicensingSnapshot,
  now: Instant,
  tickets?: TicketBook,
): ProofVerdict {
  const { proof } = input;
  if (!isValidVersion(proof.version)) {
    return badProof(`"${proof.version}" is not a dotted numeric version such as 5.0.1`);
  }
  if (input.bindingType !== undefined && input.bindingData === undefined) {
    return badProof(`the ${input.bindingType} channel binding is not available on this stream`);
  }
  const signature = Buffer.from(proof.signature, "base64");
  const { ticket } = proof;
  if (ticket !== undefined) {
    const claims = tickets?.open(ticket);
    if (!tickets || !claims) return { ok: false, ticketRefused: "this ticket is not valid on this network" };
    if (now >= claims.expiresAt) return { ok: false, ticketRefused: "the ticket has expired" };
    if (claims.clientId !== proof.clientId || claims.keyId !== proof.keyId) {
      return badProof("the ticket was issued to another app or key");
    }
  } else if (signature.length !== SIGNATURE_BYTES) {
    return badProof("an Ed25519 signature has 64 bytes");
  }

  const app = snapshot.apps.get(proof.clientId);
  const key = snapshot.keys.get(proof.clientId)?.get(proof.keyId);
  if (!app || !key) {
    return {
      ok: false,
      reason: "unknown-key",
      text: `key "${proof.keyId}" is not registered for client "${proof.clientId}"`,
      ...(app ? { app } : {}),
    };
  }
  let valid: boolean;
  try {
    const payload = proofSignedBytes(input, proof);
    valid =
      ticket !== undefined && tickets
        ? tickets.checkProof(ticket, payload, signature)
        : checkFor(key.publicKey)(payload, signature);
  } catch {
    valid = false;
  }
  // The signature is checked before the key's status, so only the key's holder learns it was revoked.
  if (!valid) return { ...badProof("the signature does not match this stream"), app, key };
  const standing = keyAndLicence(snapshot, app, key, now);
  if ("reason" in standing) return { ok: false, ...standing, app, key };
  return { ok: true, app, key, licence: standing.licence, resumed: ticket !== undefined };
}
