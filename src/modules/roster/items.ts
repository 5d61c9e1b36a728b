/**
 * Roster items as XML (RFC 6121 §2.1.2) and validation of roster sets
 * (RFC 6121 §2.1.5, §2.3.3, §2.5).
 */
import { StanzaError } from "../../core/errors.js";
import { type Jid, JidError, parseJid } from "../../core/jid.js";
import type { RosterItem } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";

/** The <item/> of a roster result or push, with `ask` and `approved` (RFC 6121 §3.4) when set. */
export function itemElement(item: RosterItem): XmlElement {
  return x(
    "item",
    {
      jid: item.jid,
      name: item.name,
      subscription: item.subscription,
      ask: item.ask ? "subscribe" : undefined,
      approved: item.approved ? "true" : undefined,
    },
    ...item.groups.map((g) => x("group", null, g)),
  );
}

/** The <item/> of a push announcing a removal. */
export function removedItemElement(jid: string): XmlElement {
  return x("item", { jid, subscription: "remove" });
}

export interface RosterLimits {
  /** Longest 'name' attribute, in UTF-8 bytes. */
  maxNameBytes: number;
  /** Longest group name, in UTF-8 bytes. */
  maxGroupBytes: number;
  /** Most groups one item may be in. */
  maxGroups: number;
}

export type RosterSetRequest =
  | { kind: "update"; jid: Jid; name?: string; groups: string[] }
  | { kind: "remove"; jid: Jid };

const KNOWN_SUBSCRIPTIONS = new Set(["none", "to", "from", "both"]);

/**
 * Validates the <query/> of a roster set. Errors follow RFC 6121 §2.3.3:
 * bad-request for structural problems (not exactly one item, duplicate groups,
 * an unusable JID), not-acceptable for names and groups the server will not
 * store. Subscription values none/to/from/both are ignored as §2.1.2.5 requires;
 * only "remove" has a meaning in a roster set.
 */
export function parseRosterSet(query: XmlElement, limits: RosterLimits): RosterSetRequest {
  const children = query.elements();
  if (children.length !== 1 || children[0]!.name !== "item") {
    throw new StanzaError("bad-request", "a roster set must contain exactly one item");
  }
  const item = children[0]!;
  const jid = parseItemJid(item.attrs.jid);
  const subscription = item.attrs.subscription;
  if (subscription === "remove") return { kind: "remove", jid };
  if (subscription !== undefined && !KNOWN_SUBSCRIPTIONS.has(subscription)) {
    throw new StanzaError("bad-request", "unknown subscription value");
  }

  const name = item.attrs.name;
  if (name !== undefined && Buffer.byteLength(name, "utf8") > limits.maxNameBytes) {
    throw new StanzaError("not-acceptable", `the name is longer than ${limits.maxNameBytes} bytes`);
  }
  const groups: string[] = [];
  for (const el of item.elements()) {
    if (el.name !== "group") continue;
    const group = el.text();
    if (group === "") throw new StanzaError("not-acceptable", "a group name may not be empty");
    if (Buffer.byteLength(group, "utf8") > limits.maxGroupBytes) {
      throw new StanzaError("not-acceptable", `a group name is longer than ${limits.maxGroupBytes} bytes`);
    }
    if (groups.includes(group)) throw new StanzaError("bad-request", "the same group is listed twice");
    groups.push(group);
  }
  if (groups.length > limits.maxGroups) {
    throw new StanzaError("not-acceptable", `an item may be in at most ${limits.maxGroups} groups`);
  }
  return { kind: "update", jid, ...(name ? { name } : {}), groups };
}

/** Roster items are bare JIDs (accounts, domains, gateways); anything else is refused. */
function parseItemJid(raw: string | undefined): Jid {
  if (raw === undefined) throw new StanzaError("bad-request", "the item has no jid");
  let jid: Jid;
  try {
    jid = parseJid(raw);
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError("bad-request", `invalid jid: ${err.message}`);
    throw err;
  }
  if (!jid.isBare) throw new StanzaError("bad-request", "roster items are bare JIDs");
  return jid;
}

export { NS_ROSTER } from "../../core/xml/namespaces.js";
