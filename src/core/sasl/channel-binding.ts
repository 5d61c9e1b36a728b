/**
 * Advertising channel-binding types (XEP-0440), so a client picks one the server supports instead
 * of guessing and failing.
 */
import { type XmlElement, x } from "../xml/element.js";
import { NS_SASL_CB } from "../xml/namespaces.js";

/** The channel-binding types this implementation knows, strongest first (RFC 9266, RFC 5929). */
export const CHANNEL_BINDING_TYPES = ["tls-exporter", "tls-server-end-point", "tls-unique"] as const;

/**
 * <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'> listing the types, for <stream:features/>;
 * undefined when there are none (the element must hold at least one).
 */
export function channelBindingFeature(types: readonly string[]): XmlElement | undefined {
  const unique = [...new Set(types)];
  if (unique.length === 0) return undefined;
  return x(
    "sasl-channel-binding",
    { xmlns: NS_SASL_CB },
    ...unique.map((type) => x("channel-binding", { type })),
  );
}

export { NS_SASL_CB } from "../xml/namespaces.js";
