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
