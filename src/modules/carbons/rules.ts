/**
 * Which messages are copied (XEP-0280 §6.1) and how a copy is wrapped (§7, §8: XEP-0297
 * forwarding inside <received/> or <sent/>).
 */
import { type XmlElement, x } from "../../core/xml/element.js";
import { messageType } from "../../core/xml/message-type.js";
import {
  NS_CARBONS,
  NS_CHAT_MARKERS,
  NS_CHATSTATES,
  NS_CLIENT,
  NS_CONFERENCE,
  NS_FORWARD,
  NS_HINTS,
  NS_MUC_USER,
  NS_RECEIPTS,
} from "../../core/xml/namespaces.js";

export type CarbonDirection = "sent" | "received";

/** Payloads of instant messaging that make a message of type normal eligible (§6.1). */
const IM_PAYLOADS = new Set([NS_RECEIPTS, NS_CHATSTATES, NS_CHAT_MARKERS]);

/**
 * Is the message copied to the account's other resources? Never when it is private
 * (<private/> or a XEP-0334 <no-copy/> hint), of type groupchat, headline or error (errors
 * are not matched to the message they answer, so none is copied), already a carbon, or a
 * private message from a room occupant (the room sends those to each joined client).
 */
export function isEligible(message: XmlElement, direction: CarbonDirection): boolean {
  const type = messageType(message);
  if (type !== "chat" && type !== "normal") return false;
  let body = false;
  let imPayload = false;
  let mucUser: XmlElement | undefined;
  let invitation = false;
  for (const c of message.children) {
    if (typeof c === "string") continue;
    const ns = c.attrs.xmlns;
    if (ns === NS_CARBONS) return false; // <private/>, or a carbon itself (<sent/>, <received/>)
    if (ns === NS_HINTS && c.name === "no-copy") return false;
    if (c.name === "body" && ns === undefined) body = true;
    else if (ns !== undefined && IM_PAYLOADS.has(ns)) imPayload = true;
    else if (ns === NS_CONFERENCE && c.name === "x") invitation = true;
    else if (ns === NS_MUC_USER && c.name === "x") {
      mucUser = c;
      if (c.getChild("invite")) invitation = true;
    }
  }
  if (invitation) return true; // XEP-0249 direct and XEP-0045 mediated invitations
  // A private message from an occupant (received from a room's full JID).
  if (mucUser && direction === "received") return false;
  return type === "chat" || body || imPayload;
}

/** The copy for `to` (a full JID of the account `bare`), the original forwarded inside. */
export function carbonCopy(
  original: XmlElement,
  direction: CarbonDirection,
  bare: string,
  to: string,
): XmlElement {
  const inner = original.clone();
  inner.attrs.xmlns = NS_CLIENT;
  return x(
    "message",
    { from: bare, to, type: original.attrs.type },
    x(direction, { xmlns: NS_CARBONS }, x("forwarded", { xmlns: NS_FORWARD }, inner)),
  );
}
