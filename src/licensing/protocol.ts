/**
 * The client-licence wire protocol (namespace urn:switchboard:client-licence:0):
 * the pre-authentication stream feature, the client's <proof/>, the server's
 * <success/>, the canonical bytes a proof signs, and refusals as stream errors
 * (policy-violation with an application-specific condition). docs/licensing-protocol.md
 * describes it for client developers.
 */
import { StreamError } from "../core/errors.js";
import { type XmlElement, x } from "../core/xml/element.js";
import { NS_LICENCE } from "../core/xml/namespaces.js";
import type { Instant, PolicyMode, RefusalReason } from "./model.js";
import { type IssuedTicket, TICKET_SYNTAX } from "./tickets.js";

/** First line of the signed text: names the protocol and its version. */
export const PROOF_CONTEXT = "switchboard-client-licence:0";
/** Random bytes in a nonce. */
export const NONCE_BYTES = 32;
/** Ed25519 signatures are 64 bytes. */
export const SIGNATURE_BYTES = 64;

/** The channel-binding types a proof may bind to, best first (RFC 9266, RFC 5929). */
export const PROOF_BINDING_TYPES = ["tls-exporter", "tls-server-end-point"] as const;

/** What the client claims in a proof; the signature is base64 as sent. */
export interface ProofClaim {
  clientId: string;
  version: string;
  platform: string;
  keyId: string;
  /** Ed25519 signature, or with `ticket` the HMAC-SHA256 under the ticket's secret. */
  signature: string;
  /** A ticket from an earlier <success/> (tickets.ts): the proof is then an HMAC. */
  ticket?: string;
  /** The offered channel-binding type the client bound to (absent: the first offered). */
  bindingType?: string;
}

/** Everything a proof is bound to, besides the claim. */
export interface ProofContext {
  domain: string;
  streamId: string;
  /** The nonce as sent (base64). */
  nonce: string;
  /** The binding type offered with the nonce, or undefined when none was offered. */
  bindingType: string | undefined;
  bindingData: Buffer | undefined;
}

/** Field syntax: none of them may contain the newline that separates the signed lines. */
const CLIENT_ID = /^[a-z0-9._-]{1,128}$/;
const PLATFORM = /^[A-Za-z0-9._-]{1,64}$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The bytes a proof signs: UTF-8 of the lines joined by "\n" (no trailing newline):
 * context, domain, stream id, nonce, client id, version, platform, key id, and
 * `<binding type>:<base64 binding data>` (or `none:` when no binding was offered).
 */
export function proofSignedBytes(ctx: ProofContext, claim: Omit<ProofClaim, "signature">): Buffer {
  const binding =
    ctx.bindingType === undefined
      ? "none:"
      : `${ctx.bindingType}:${(ctx.bindingData ?? Buffer.alloc(0)).toString("base64")}`;
  return Buffer.from(
    [
      PROOF_CONTEXT,
      ctx.domain,
      ctx.streamId,
      ctx.nonce,
      claim.clientId,
      claim.version,
      claim.platform,
      claim.keyId,
      binding,
    ].join("\n"),
    "utf8",
  );
}

/**
 * The bindings a stream offers for proofs, best first: tls-exporter (TLS 1.3) and
 * tls-server-end-point; none without TLS. A client binds to the first it can compute.
 */
export function proofBindingTypes(available: readonly string[]): string[] {
  return PROOF_BINDING_TYPES.filter((t) => available.includes(t));
}

/** The stream feature: a fresh nonce, the mode now, the next enforce instant, the binding types. */
export function licenceFeature(opts: {
  nonce: string;
  mode: PolicyMode;
  cutoff: Instant | undefined;
  bindingTypes: readonly string[];
}): XmlElement {
  return x(
    "licence",
    {
      xmlns: NS_LICENCE,
      mode: opts.mode,
      cutoff: opts.cutoff === undefined ? undefined : isoInstant(opts.cutoff),
    },
    x("nonce", null, opts.nonce),
    ...opts.bindingTypes.map((type) => x("channel-binding", { type })),
  );
}

export type ParsedProof = { ok: true; claim: ProofClaim } | { ok: false; text: string };

/** Reads a <proof/> element; every field is checked for syntax before anything is looked up. */
export function parseProof(el: XmlElement): ParsedProof {
  if (el.name !== "proof") return { ok: false, text: `<${el.name}/> is not a licence proof` };
  const clientId = el.attrs["client-id"];
  const version = el.attrs.version;
  const platform = el.attrs.platform;
  const keyId = el.attrs["key-id"];
  const ticket = el.attrs.ticket;
  const bindingType = el.attrs["channel-binding"];
  const signature = el.text().replace(/\s+/g, "");
  if (clientId === undefined || !CLIENT_ID.test(clientId))
    return { ok: false, text: "the proof needs a client-id of lower-case letters, digits, '.', '_' or '-'" };
  // Dotted numeric syntax is checked by the verifier with the shared version rules.
  if (version === undefined || version.length > 100 || version.includes("\n"))
    return { ok: false, text: "the proof needs a version" };
  if (platform === undefined || !PLATFORM.test(platform))
    return { ok: false, text: "the proof needs a platform of letters, digits, '.', '_' or '-'" };
  if (keyId === undefined || !KEY_ID.test(keyId))
    return { ok: false, text: "the proof needs a key-id of letters, digits, '.', '_' or '-'" };
  if (signature.length % 4 !== 0 || !BASE64.test(signature))
    return { ok: false, text: "the signature is not base64" };
  if (ticket !== undefined && !TICKET_SYNTAX.test(ticket))
    return { ok: false, text: "the ticket is not base64url text of at most 512 characters" };
  if (bindingType !== undefined && !(PROOF_BINDING_TYPES as readonly string[]).includes(bindingType))
    return { ok: false, text: `"${bindingType}" is not a channel-binding type a proof can use` };
  const claim: ProofClaim = { clientId, version, platform, keyId, signature };
  if (ticket !== undefined) claim.ticket = ticket;
  if (bindingType !== undefined) claim.bindingType = bindingType;
  return { ok: true, claim };
}

/**
 * The server's answer to an accepted proof, with the recommended version when the client is
 * behind it, and a ticket for later logins when this proof earned one.
 */
export function successElement(
  recommended?: { version: string; url: string | undefined },
  ticket?: IssuedTicket,
): XmlElement {
  return x(
    "success",
    { xmlns: NS_LICENCE },
    recommended && x("recommended", { version: recommended.version, url: recommended.url }),
    ticket &&
      x(
        "ticket",
        { expires: isoInstant(ticket.expiresAt), secret: ticket.secret.toString("base64") },
        ticket.ticket,
      ),
  );
}

/**
 * The answer to a ticket the server does not accept (expired, or issued under a replaced
 * key): not an error, the nonce stays good for one signed proof on the same stream.
 */
export function ticketRefusedElement(text: string): XmlElement {
  return x("ticket-refused", { xmlns: NS_LICENCE }, x("text", null, text));
}

/** Why a client is refused: the condition, a human text, and the condition's machine-readable details. */
export interface Refusal {
  reason: RefusalReason;
  text: string;
  /** Attributes of the condition element (minimum, from, to, upgrade-url, limit, info-url). */
  details?: Record<string, string | undefined>;
}

/** A refusal's machine-readable part: the condition element in the licence namespace. */
export function refusalCondition(r: Refusal): XmlElement {
  return x(r.reason, { xmlns: NS_LICENCE, ...r.details });
}

/** The stream error that carries a refusal: policy-violation, the text, and the licence condition. */
export function refusalError(r: Refusal): StreamError {
  return new StreamError("policy-violation", r.text, refusalCondition(r));
}

/**
 * The SASL failure condition of a login refused for want of a licence: the one that
 * mainstream clients show with the server's text (or, Conversations, with a link to the
 * address in it) and after which they do not retry at once (docs/licensing-protocol.md §3.1).
 */
export const REFUSAL_SASL_CONDITION = "account-disabled";

/**
 * The message a live session of a client that proved no licence gets just before it is
 * closed: mainstream clients do not show a stream error's text, but they show a headline
 * from their server (docs/licensing-protocol.md §3.1). The body stands on its own (some
 * clients show only the body) and ends with the refusal's text, whose address is last;
 * the condition is the stream error's, for programs.
 */
export function refusalNotice(domain: string, to: string, r: Refusal, id: string): XmlElement {
  return x(
    "message",
    { type: "headline", from: domain, to, id },
    x("subject", null, "Disconnected: this client is not admitted on this network"),
    x("body", null, `You have been disconnected, and the same client will be refused again. ${r.text}`),
    refusalCondition(r),
  );
}

/** A warning headline's machine-readable part, beside its human body. */
export function warningElement(opts: {
  cutoff: Instant | undefined;
  infoUrl: string | undefined;
}): XmlElement {
  return x("unlicensed-client", {
    xmlns: NS_LICENCE,
    cutoff: opts.cutoff === undefined ? undefined : isoInstant(opts.cutoff),
    "info-url": opts.infoUrl,
  });
}

/**
 * The machine-readable part of a warning to an unlicensed interconnection in warn mode:
 * `<unlicensed-peer/>` (federation) or `<unlicensed-gateway/>` (component), with the domain,
 * the cutoff and where licences are explained.
 */
export function interconnectWarningElement(opts: {
  reason: "unlicensed-peer" | "unlicensed-gateway";
  domain: string;
  cutoff: Instant | undefined;
  infoUrl: string | undefined;
}): XmlElement {
  return x(opts.reason, {
    xmlns: NS_LICENCE,
    domain: opts.domain,
    cutoff: opts.cutoff === undefined ? undefined : isoInstant(opts.cutoff),
    "info-url": opts.infoUrl,
  });
}

/** An instant as RFC 3339 / XEP-0082 UTC date-time without milliseconds when they are zero. */
export function isoInstant(t: Instant): string {
  return new Date(t).toISOString().replace(/\.000Z$/, "Z");
}

export { NS_LICENCE } from "../core/xml/namespaces.js";
