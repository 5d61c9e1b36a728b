/**
 * Stream errors (RFC 6120 §4.9): the condition, an optional text and application
 * condition, and their XML. They belong to the XML layer because its parser is the
 * first to raise them (ill-formed, restricted or oversized input).
 */
import { type XmlElement, x } from "./element.js";
import { NS_STREAM_ERRORS } from "./namespaces.js";

export type StreamErrorCondition =
  | "bad-format"
  | "bad-namespace-prefix"
  | "conflict"
  | "connection-timeout"
  | "host-gone"
  | "host-unknown"
  | "improper-addressing"
  | "internal-server-error"
  | "invalid-from"
  | "invalid-namespace"
  | "invalid-xml"
  | "not-authorized"
  | "not-well-formed"
  | "policy-violation"
  | "remote-connection-failed"
  | "reset"
  | "resource-constraint"
  | "restricted-xml"
  | "see-other-host"
  | "system-shutdown"
  | "undefined-condition"
  | "unsupported-encoding"
  | "unsupported-feature"
  | "unsupported-stanza-type"
  | "unsupported-version";

export class StreamError extends Error {
  readonly condition: StreamErrorCondition;
  readonly text?: string;
  readonly appCondition?: XmlElement;
  /** `see-other-host`: where the client should connect instead (RFC 6120 §4.9.3.19), host or host:port. */
  readonly otherHost?: string;

  constructor(condition: StreamErrorCondition, text?: string, appCondition?: XmlElement) {
    super(text ?? condition);
    this.name = "StreamError";
    this.condition = condition;
    if (text !== undefined) this.text = text;
    if (appCondition) this.appCondition = appCondition;
  }

  /** `see-other-host` naming the address to connect to instead (IPv6 literals in brackets). */
  static seeOtherHost(address: string, text?: string): StreamError {
    const error = new StreamError("see-other-host", text);
    (error as { otherHost?: string }).otherHost = address;
    return error;
  }

  toElement(): XmlElement {
    return x(
      "stream:error",
      null,
      x(this.condition, { xmlns: NS_STREAM_ERRORS }, this.otherHost),
      this.text !== undefined && x("text", { xmlns: NS_STREAM_ERRORS, "xml:lang": "en" }, this.text),
      this.appCondition,
    );
  }
}
