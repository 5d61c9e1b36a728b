/**
 * The type of a message as its recipients must treat it: RFC 6121 §5.2.2 makes a missing or
 * unknown 'type' mean "normal", so routing, offline storage, the archive, carbons and push
 * all decide on this value rather than on the raw attribute.
 */
import type { XmlElement } from "./element.js";

export type MessageType = "normal" | "chat" | "groupchat" | "headline" | "error";

const KNOWN = new Set<string>(["normal", "chat", "groupchat", "headline", "error"]);

export function messageType(stanza: XmlElement): MessageType {
  const type = stanza.attrs.type;
  return type !== undefined && KNOWN.has(type) ? (type as MessageType) : "normal";
}
