/** Stanza and stream errors (RFC 6120 §8.3 and §4.9) as values and as XML. */
import { XmlElement, x } from "./xml/element.js";
import { NS_STANZAS } from "./xml/namespaces.js";

export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

export type StanzaErrorCondition =
  | "bad-request"
  | "conflict"
  | "feature-not-implemented"
  | "forbidden"
  | "gone"
  | "internal-server-error"
  | "item-not-found"
  | "jid-malformed"
  | "not-acceptable"
  | "not-allowed"
  | "not-authorized"
  | "policy-violation"
  | "recipient-unavailable"
  | "redirect"
  | "registration-required"
  | "remote-server-not-found"
  | "remote-server-timeout"
  | "resource-constraint"
  | "service-unavailable"
  | "subscription-required"
  | "undefined-condition"
  | "unexpected-request";

const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  "bad-request": "modify",
  conflict: "cancel",
  "feature-not-implemented": "cancel",
  forbidden: "auth",
  gone: "cancel",
  "internal-server-error": "cancel",
  "item-not-found": "cancel",
  "jid-malformed": "modify",
  "not-acceptable": "modify",
  "not-allowed": "cancel",
  "not-authorized": "auth",
  "policy-violation": "modify",
  "recipient-unavailable": "wait",
  redirect: "modify",
  "registration-required": "auth",
  "remote-server-not-found": "cancel",
  "remote-server-timeout": "wait",
  "resource-constraint": "wait",
  "service-unavailable": "cancel",
  "subscription-required": "auth",
  "undefined-condition": "cancel",
  "unexpected-request": "wait",
};

/** Thrown by handlers to answer the stanza with an error; the router turns it into XML. */
export class StanzaError extends Error {
  readonly condition: StanzaErrorCondition;
  readonly type: StanzaErrorType;
  readonly text?: string;
  readonly appCondition?: XmlElement;
  /** When false, the error reply does not carry the original payload back (it may hold a secret). */
  readonly echoPayload: boolean;

  constructor(
    condition: StanzaErrorCondition,
    text?: string,
    opts?: { type?: StanzaErrorType; appCondition?: XmlElement; echoPayload?: boolean },
  ) {
    super(text ?? condition);
    this.name = "StanzaError";
    this.condition = condition;
    this.type = opts?.type ?? DEFAULT_TYPE[condition];
    if (text !== undefined) this.text = text;
    if (opts?.appCondition) this.appCondition = opts.appCondition;
    this.echoPayload = opts?.echoPayload ?? true;
  }

  /** The same error without the original payload in its reply. */
  withoutPayload(): StanzaError {
    return new StanzaError(this.condition, this.text, {
      type: this.type,
      ...(this.appCondition ? { appCondition: this.appCondition } : {}),
      echoPayload: false,
    });
  }

  toElement(by?: string): XmlElement {
    return x(
      "error",
      { type: this.type, by },
      x(this.condition, { xmlns: NS_STANZAS }),
      this.text !== undefined && x("text", { xmlns: NS_STANZAS, "xml:lang": "en" }, this.text),
      this.appCondition,
    );
  }
}

/**
 * Builds the error reply to a stanza (RFC 6120 §8.3.1): swaps from/to, keeps id,
 * sets type='error', keeps the original payload for messages and presences.
 * Returns undefined when the stanza is itself an error (never answer an error with one).
 */
export function errorReply(stanza: XmlElement, error: StanzaError, by?: string): XmlElement | undefined {
  if (stanza.attrs.type === "error") return undefined;
  const reply = new XmlElement(stanza.name, {
    from: stanza.attrs.to,
    to: stanza.attrs.from,
    id: stanza.attrs.id,
    type: "error",
  });
  if (error.echoPayload && stanza.name !== "iq") {
    for (const c of stanza.children) if (typeof c !== "string") reply.children.push(c);
  } else if (error.echoPayload) {
    const payload = stanza.firstElement();
    if (payload) reply.children.push(payload);
  }
  reply.children.push(error.toElement(by));
  return reply;
}

export { NS_STANZAS, NS_STREAM_ERRORS as NS_STREAMS } from "./xml/namespaces.js";
export { StreamError, type StreamErrorCondition } from "./xml/stream-error.js";
