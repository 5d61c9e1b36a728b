import type { XmlElement } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";

/** A stored offline message back as a stanza; undefined if the stored text is damaged. */
export function parseStoredStanza(xml: string): XmlElement | undefined {
  const el = parseElement(xml);
  return el && el.name === "message" ? el : undefined;
}
