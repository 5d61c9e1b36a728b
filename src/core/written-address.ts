/**
 * A stanza's 'to' as its sender wrote it, where preparing the address changed it. The router
 * and the server-to-server and component streams put the prepared form into the stanza (what
 * every recipient must see); a service that must tell the sender that its address was changed
 * (a room's status 210, XEP-0045 §7.2.9) asks for the written one.
 */
import type { Jid } from "./jid.js";
import type { XmlElement } from "./xml/element.js";

const written = new WeakMap<XmlElement, string>();

/** Sets the stanza's 'to' to the prepared address, remembering the written one if it differs. */
export function setPreparedTo(stanza: XmlElement, to: Jid): void {
  const asWritten = stanza.attrs.to;
  const prepared = to.toString();
  if (asWritten !== undefined && asWritten !== prepared) written.set(stanza, asWritten);
  stanza.attrs.to = prepared;
}

/** The stanza's 'to' as its sender wrote it. */
export function writtenTo(stanza: XmlElement): string | undefined {
  return written.get(stanza) ?? stanza.attrs.to;
}
