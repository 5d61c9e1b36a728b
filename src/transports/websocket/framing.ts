/**
 * RFC 7395 framing of what the engine writes: the stream opens with <open/> and closes with
 * <close/> (namespace urn:ietf:params:xml:ns:xmpp-framing), and every message is one
 * complete element declaring its namespaces, since there is no enclosing
 * <stream:stream> to inherit them from.
 */
import { SERVER_LANGUAGE } from "../../core/stream/transport.js";
import { escapeAttr } from "../../core/xml/element.js";
import { NS_CLIENT, NS_FRAMING, NS_STREAM } from "../../core/xml/namespaces.js";

export function openElement(attrs: { id: string; from: string; to?: string; version?: string }): string {
  let open = `<open xmlns='${NS_FRAMING}' id='${escapeAttr(attrs.id)}' from='${escapeAttr(attrs.from)}'`;
  if (attrs.to !== undefined) open += ` to='${escapeAttr(attrs.to)}'`;
  return `${open} version='${attrs.version ?? "1.0"}' xml:lang='${SERVER_LANGUAGE}'/>`;
}

export const CLOSE_ELEMENT = `<close xmlns='${NS_FRAMING}'/>`;

/**
 * Adds to a serialized top-level element the namespace declarations a stream header would
 * have given it: `xmlns:stream` for <stream:features/> and <stream:error/>, and the content
 * namespace (jabber:client) for an element written without a default namespace (stanzas).
 * Only the start tag is read, with quoted attribute values skipped.
 */
export function declareNamespaces(xml: string, contentNs = NS_CLIENT): string {
  if (xml.charCodeAt(0) !== 60 /* < */) return xml;
  let nameEnd = 1;
  while (nameEnd < xml.length && !/[\s/>]/.test(xml[nameEnd]!)) nameEnd++;
  const name = xml.slice(1, nameEnd);
  let hasDefault = false;
  let hasStreamPrefix = false;
  // Attribute names outside quoted values, up to the end of the start tag.
  for (let i = nameEnd; i < xml.length; i++) {
    const c = xml[i]!;
    if (c === ">") break;
    if (c === "'" || c === '"') {
      const close = xml.indexOf(c, i + 1);
      if (close < 0) break;
      i = close;
      continue;
    }
    if (c === "x" && /\s/.test(xml[i - 1]!)) {
      if (xml.startsWith("xmlns=", i)) hasDefault = true;
      else if (xml.startsWith("xmlns:stream=", i)) hasStreamPrefix = true;
    }
  }
  let add = "";
  if (name.startsWith("stream:")) {
    if (!hasStreamPrefix) add = ` xmlns:stream='${NS_STREAM}'`;
  } else if (!name.includes(":") && !hasDefault) add = ` xmlns='${contentNs}'`;
  return add === "" ? xml : xml.slice(0, nameEnd) + add + xml.slice(nameEnd);
}
