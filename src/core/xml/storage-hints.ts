/**
 * Message processing hints about storage (XEP-0334), read the same way by every module
 * that keeps messages (the archive, offline storage, room history).
 */
import type { XmlElement } from "./element.js";
import { NS_HINTS } from "./namespaces.js";

/**
 * What a message's storage hints ask: "no-store" (`<no-store/>` or `<no-permanent-store/>`,
 * which win over anything else), "store", or undefined when it carries neither.
 */
export function storageHint(stanza: XmlElement): "store" | "no-store" | undefined {
  let store = false;
  for (const c of stanza.children) {
    if (typeof c === "string" || c.attrs.xmlns !== NS_HINTS) continue;
    if (c.name === "no-store" || c.name === "no-permanent-store") return "no-store";
    if (c.name === "store") store = true;
  }
  return store ? "store" : undefined;
}
