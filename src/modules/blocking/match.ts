/**
 * JID matching of blocklist items (XEP-0191 §3.6, as in XEP-0016):
 * user@domain/resource matches only that resource; user@domain matches the
 * bare JID and any of its resources; domain/resource matches only that JID;
 * domain matches the domain and every JID at it.
 */
import type { Jid } from "../../core/jid.js";

/** Does any item of the (normalised) blocklist match `jid`? */
export function isListed(list: ReadonlySet<string>, jid: Jid): boolean {
  if (list.size === 0) return false;
  return list.has(jid.toString()) || list.has(jid.bareString) || list.has(jid.domain);
}
