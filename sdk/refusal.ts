/**
 * Refusals: the server closes the stream with
 *   <stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
 *     <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>…</text>
 *     <version-too-old xmlns='urn:switchboard:client-licence:0' minimum='5.0' upgrade-url='…'/>
 *   </stream:error>
 * at login or later, on a live session. A client that sent no proof is refused at SASL
 * with a <failure/> first (docs/licensing-protocol.md §3.1), which in SASL2 carries the
 * same condition. This turns either into an Error an application can act on (show the
 * upgrade link, stop reconnecting).
 */
import type { Element } from "@xmpp/client";
import { LICENCE_NS } from "./proof.js";

const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";
const NS_SASL2 = "urn:xmpp:sasl:2";

/** The application conditions the server uses (docs/licensing-protocol.md lists their meaning). */
export type RefusalCondition =
  | "unlicensed-client"
  | "unknown-key"
  | "key-revoked"
  | "licence-revoked"
  | "licence-suspended"
  | "licence-expired"
  | "version-too-old"
  | "version-blocked"
  | "too-many-sessions"
  | "bad-proof";

export class LicenceRefusedError extends Error {
  override readonly name = "LicenceRefusedError";

  constructor(
    /** The application condition, e.g. "version-too-old" (a string, so newer conditions still surface). */
    readonly condition: RefusalCondition | (string & {}),
    /** The human-readable text the server sent (may be empty). */
    readonly text: string,
    /** Every attribute of the condition element (minimum, upgrade-url, from, to, limit, …). */
    readonly details: Readonly<Record<string, string>>,
    /** The stream error condition, normally "policy-violation". */
    readonly streamCondition = "policy-violation",
  ) {
    super(`licence refused: ${condition}${text ? ` - ${text}` : ""}`);
  }

  /** Lowest version accepted (version-too-old). */
  get minimum(): string | undefined {
    return this.details.minimum;
  }

  /** Where to get a version that is accepted (version conditions). */
  get upgradeUrl(): string | undefined {
    return this.details["upgrade-url"];
  }

  /** Most concurrent sessions of the licence (too-many-sessions). */
  get limit(): number | undefined {
    const v = this.details.limit;
    return v === undefined ? undefined : Number(v);
  }
}

/** Reads a <stream:error/> element; undefined when it carries no condition in the licence namespace. */
export function refusalFromStreamError(error: Element): LicenceRefusedError | undefined {
  const children = error.getChildElements();
  const app = children.find((c) => c.getNS() === LICENCE_NS);
  if (!app) return undefined;
  const streamCondition = children.find((c) => c.getNS() === NS_STREAMS && c.name !== "text")?.name;
  const text = error.getChildText("text", NS_STREAMS) ?? "";
  const details: Record<string, string> = {};
  for (const [k, v] of Object.entries(app.attrs)) if (k !== "xmlns" && v !== undefined) details[k] = v;
  return new LicenceRefusedError(app.name, text, details, streamCondition ?? "policy-violation");
}

/**
 * Reads a SASL2 <failure/> (XEP-0388); undefined when it carries no refusal condition in the
 * licence namespace (a refused ticket, <ticket-refused/>, is not a refusal: the client signs).
 */
export function refusalFromSaslFailure(failure: Element): LicenceRefusedError | undefined {
  const app = failure.getChildElements().find((c) => c.getNS() === LICENCE_NS && c.name !== "ticket-refused");
  if (!app) return undefined;
  const details: Record<string, string> = {};
  for (const [k, v] of Object.entries(app.attrs)) if (k !== "xmlns" && v !== undefined) details[k] = v;
  // The stream error that follows the failure is policy-violation.
  return new LicenceRefusedError(app.name, failure.getChildText("text") ?? "", details);
}

/**
 * The licence refusal behind an error thrown or emitted by @xmpp/client (its
 * StreamError, or the SASLError of a SASL2 failure, keeps the element), or undefined
 * when the error is something else.
 */
export function licenceRefusal(err: unknown): LicenceRefusedError | undefined {
  if (err instanceof LicenceRefusedError) return err;
  const element = (err as { element?: Element } | null)?.element;
  if (!element || typeof element.is !== "function") return undefined;
  if (element.is("error", "http://etherx.jabber.org/streams")) return refusalFromStreamError(element);
  if (element.is("failure", NS_SASL2)) return refusalFromSaslFailure(element);
  return undefined;
}
