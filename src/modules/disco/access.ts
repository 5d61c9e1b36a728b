/**
 * Who may learn about a local account through the server's answers on its
 * behalf (disco, ping, last activity). RFC 6121 §8.5.1 and XEP-0030 §8: only
 * the account itself and entities allowed to see its presence, i.e. contacts
 * whose roster item in the account's roster has a subscription of "from" or
 * "both". The server itself is trusted.
 */
import type { Jid } from "../../core/jid.js";
import type { Storage } from "../../core/storage/types.js";

/** Is `requester` the account `username` of `domain` (any of its resources)? */
export function isSelf(username: string, domain: string, requester: Jid): boolean {
  return requester.local === username && requester.domain === domain;
}

/** May `requester` receive the presence of the local account `username`? */
export async function mayReceivePresence(
  storage: Storage,
  domain: string,
  username: string,
  requester: Jid,
): Promise<boolean> {
  if (isSelf(username, domain, requester)) return true;
  if (requester.isDomain && requester.domain === domain) return true;
  const item = await storage.roster.getItem(username, requester.bareString);
  return item !== undefined && (item.subscription === "from" || item.subscription === "both");
}

/** Does the account exist, and may `requester` see its presence? Otherwise the server answers as if it did not exist. */
export async function accountVisibleTo(
  storage: Storage,
  domain: string,
  username: string,
  requester: Jid,
): Promise<boolean> {
  return (
    (await storage.accounts.exists(username)) && mayReceivePresence(storage, domain, username, requester)
  );
}
