/**
 * From the identities a SASL client sends to the account it logs in to (RFC 6120 §6.3.8).
 */
import { normalizeDomain, normalizeLocal, tryParseJid } from "../jid.js";
import { saslprep } from "./saslprep.js";

/** The account name for an authentication identity: SASLprep, then JID localpart rules; undefined if invalid. */
export function accountName(authcid: string): string | undefined {
  const prepared = saslprep(authcid);
  if (prepared === undefined || prepared === "") return undefined;
  try {
    return normalizeLocal(prepared);
  } catch {
    return undefined;
  }
}

/** An authorization identity is accepted only when it is the user's own bare JID. */
export function isOwnBareJid(authzid: string, username: string, domain: string): boolean {
  const jid = tryParseJid(authzid);
  if (!jid?.isBare || jid.local !== username) return false;
  try {
    return jid.domain === normalizeDomain(domain);
  } catch {
    return false;
  }
}

/**
 * The account a client claims in its initial SASL response, before anything is
 * verified (SCRAM's n=, PLAIN's authcid). Used only to pick a policy before the
 * password is checked; authentication itself still decides who the user is.
 */
export function claimedAccount(mechanism: string, initial: Buffer): string | undefined {
  try {
    if (mechanism.startsWith("SCRAM-")) {
      const msg = initial.toString("utf8");
      const bare = /^(?:n|y|p=[^,]+),[^,]*,(.*)$/s.exec(msg)?.[1];
      const n = bare && /^n=([^,]*)/.exec(bare)?.[1];
      return n ? accountName(n.replace(/=2C/g, ",").replace(/=3D/g, "=")) : undefined;
    }
    if (mechanism.startsWith("HT-")) {
      // The HT family (draft-schmaus-kitten-sasl-ht): authcid NUL hashed token.
      const end = initial.indexOf(0);
      return end > 0 ? accountName(initial.subarray(0, end).toString("utf8")) : undefined;
    }
    if (mechanism === "PLAIN") {
      const parts = initial.toString("utf8").split("\0");
      return parts.length === 3 && parts[1] ? accountName(parts[1]) : undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}
