/**
 * XEP-0359 stable stanza ids, for the modules that store or archive messages (offline
 * storage, the message archive, carbons): read, assign and strip `<stanza-id/>` elements.
 *
 * The id an account's message carries (`by` = the account's bare JID) is the server's own
 * claim; the stanza-id module strips any such element a sender put in (§3 rule 2), so a
 * `<stanza-id/>` with that `by` on a message leaving the server was set here.
 */
import { tryParseJid } from "../../core/jid.js";
import { timeOrderedId } from "../../core/time-ordered-id.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_SID } from "../../core/xml/namespaces.js";

/** Published as ctx.api("stanza-id"): present only while the module (and its spoof protection) runs. */
export interface StanzaIdApi {
  /** Gives the message a new `<stanza-id by=…/>` (replacing one with the same `by`); returns the id. */
  assign(message: XmlElement, by: string): string;
  /** The id the message carries for `by`, if any. */
  stanzaIdOf(message: XmlElement, by: string): string | undefined;
}

/** A new id: a UUID version 7 (time-ordered, 74 random bits: unguessable; see core/time-ordered-id.ts). */
export function newStanzaId(): string {
  return timeOrderedId();
}

/** The normalised form of a 'by' attribute (a bare JID), or the raw value when it is no JID. */
function normalisedBy(by: string): string {
  return tryParseJid(by)?.toString() ?? by;
}

function isStanzaIdBy(el: XmlElement, by: string): boolean {
  if (el.name !== "stanza-id" || el.attrs.xmlns !== NS_SID) return false;
  const attr = el.attrs.by;
  return attr !== undefined && (attr === by || normalisedBy(attr) === by);
}

/** The id of the message's `<stanza-id/>` whose `by` is `by` (a normalised bare JID). */
export function stanzaIdOf(message: XmlElement, by: string): string | undefined {
  for (const c of message.children) {
    if (typeof c !== "string" && isStanzaIdBy(c, by)) return c.attrs.id;
  }
  return undefined;
}

/** Removes every `<stanza-id/>` claiming `by`; true when there was one. */
export function stripStanzaIds(message: XmlElement, by: string): boolean {
  const before = message.children.length;
  message.children = message.children.filter((c) => typeof c === "string" || !isStanzaIdBy(c, by));
  return message.children.length !== before;
}

/** Sets the message's `<stanza-id/>` for `by` (at most one per `by`, §3 rule 4); returns the id. */
export function assignStanzaId(message: XmlElement, by: string, id: string = newStanzaId()): string {
  stripStanzaIds(message, by);
  message.children.push(x("stanza-id", { xmlns: NS_SID, id, by }));
  return id;
}
