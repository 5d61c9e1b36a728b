/**
 * The roster module's API for other modules: the service it publishes as ctx.api("roster"),
 * and who may learn about a local account through the server's answers on its behalf
 * (disco, ping, last activity, vCard…). RFC 6121 §8.5.1 and XEP-0030 §8: only the account
 * itself and entities allowed to see its presence, i.e. contacts whose roster item in the
 * account's roster has a subscription of "from" or "both". The server itself is trusted.
 */
import { accountJid, accountKey, type Jid } from "../../core/jid.js";
import type { RosterItem, Storage } from "../../core/storage/types.js";

export interface RosterApi {
  readonly maxItems: number;
  /**
   * Runs `fn` with exclusive use of one account's roster and pending subscriptions.
   * Never route stanzas to other accounts from inside: their handlers take their own lock.
   */
  exclusive<T>(username: string, fn: () => Promise<T>): Promise<T>;
  get(username: string): Promise<{ version: number; items: RosterItem[] }>;
  getItem(username: string, contact: string): Promise<RosterItem | undefined>;
  /**
   * Stores an item and pushes it to the interested resources; returns the new version.
   * A new item beyond maxItems is refused with not-allowed. Call inside exclusive().
   */
  store(username: string, item: RosterItem): Promise<number>;
  /** Pushes one item (or its removal) with the given version to every interested resource. */
  pushItem(
    username: string,
    item: RosterItem | { jid: string; subscription: "remove" },
    version: number,
  ): void;
  /**
   * Removes a contact as a roster set with subscription='remove' does: the item and any
   * pending request go, the subscriptions in both directions are cancelled. Returns false
   * when there was no such item.
   */
  removeContact(username: string, contact: Jid): Promise<boolean>;
}

/**
 * Is `requester` the local account `username` (any of its resources)? `username` is an account
 * key (accountKey()) and `domain` the primary domain, here and below.
 */
export function isSelf(username: string, domain: string, requester: Jid): boolean {
  return requester.local !== "" && accountKey(requester.local, requester.domain, domain) === username;
}

/** May `requester` receive the presence of the local account `username`? */
export async function mayReceivePresence(
  storage: Storage,
  domain: string,
  username: string,
  requester: Jid,
): Promise<boolean> {
  if (isSelf(username, domain, requester)) return true;
  if (requester.isDomain && requester.domain === accountJid(username, domain).domain) return true;
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
