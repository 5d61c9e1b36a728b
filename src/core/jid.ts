/**
 * JIDs (RFC 7622). Parts are normalised on parse so that comparing two JIDs is
 * a string comparison:
 * - localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3): width-mapped (NFKC of
 *   full/half-width forms), lower-cased, NFC; RFC 7622 §3.3.1 forbids " & ' / : < > @ and spaces.
 * - domainpart: IDNA2008 via the WHATWG URL host parser (lower-cased, A-labels
 *   turned back into U-labels), trailing dot removed; IP literals accepted.
 * - resourcepart: PRECIS OpaqueString (RFC 8265 §4.2): non-ASCII spaces mapped to
 *   U+0020, NFC; controls forbidden. The code points stringprep maps to nothing (variation
 *   selectors, zero-width joiners and spaces, soft hyphen) are removed rather than refused,
 *   as RFC 6122's resourceprep did and Prosody and ejabberd still do: clients send them in
 *   emoji nicknames ("❤️" is U+2764 U+FE0F), and a peer running stringprep names the same
 *   occupant without them.
 * Each part is limited to 1023 octets (UTF-8).
 */
import { isIPv4, isIPv6 } from "node:net";
import { domainToASCII, domainToUnicode } from "node:url";

export class JidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JidError";
  }
}

const MAX_PART_OCTETS = 1023;
const LOCAL_FORBIDDEN = /["&'/:<>@\s]/u;
// Controls (Cc), plus code points PRECIS disallows in every class: unassigned, surrogates,
// default-ignorable code points (zero-width spaces and joiners, which make look-alike names).
const CONTROL = /[\p{Cc}\p{Cs}\p{Cn}\p{Default_Ignorable_Code_Point}]/u;
// IdentifierClass (RFC 8264 §4.2): ASCII printable, or LetterDigits (Ll Lu Lo Nd Lm Mn Mc).
const IDENTIFIER_CHAR = /^[\x21-\x7e\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
// IdentifierClass excludes symbols-for-space and any kind of space; FreeformClass allows spaces but not controls.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g;
// RFC 3454 table B.1, "commonly mapped to nothing" (resourceprep's first step).
// biome-ignore lint/suspicious/noMisleadingCharacterClass: each code point is removed on its own, joined to its base or not
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// Halfwidth and fullwidth forms: the only NFKC mapping PRECIS width-mapping applies.
const WIDE_OR_NARROW = /[\uFF01-\uFFEE]/gu;

function octets(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

export function normalizeLocal(raw: string): string {
  if (raw === "") throw new JidError("empty localpart");
  let s = raw.replace(WIDE_OR_NARROW, (c) => c.normalize("NFKC"));
  s = s.toLowerCase().normalize("NFC");
  if (LOCAL_FORBIDDEN.test(s)) throw new JidError("localpart contains a forbidden character");
  if (CONTROL.test(s)) throw new JidError("localpart contains a disallowed code point");
  for (const ch of s) {
    // Symbols, punctuation beyond ASCII, and characters with compatibility forms (HasCompat) are not identifiers.
    if (ch.charCodeAt(0) > 0x7e && (!IDENTIFIER_CHAR.test(ch) || ch.normalize("NFKC") !== ch)) {
      throw new JidError("localpart contains a character not allowed in identifiers");
    }
  }
  if (octets(s) > MAX_PART_OCTETS) throw new JidError("localpart too long");
  return s;
}

export function normalizeDomain(raw: string): string {
  let s = raw.endsWith(".") ? raw.slice(0, -1) : raw;
  if (s === "") throw new JidError("empty domainpart");
  if (s.startsWith("[") && s.endsWith("]")) {
    const inner = s.slice(1, -1);
    if (!isIPv6(inner)) throw new JidError("domainpart is not a valid IPv6 literal");
    // One spelling per address, so that [::1] and [0::1] are the same JID.
    return "[" + new URL(`http://[${inner}]/`).hostname.slice(1, -1) + "]";
  }
  if (/[\s/@:?#\\[\]<>%]/u.test(s)) throw new JidError("domainpart contains a forbidden character");
  const ascii = domainToASCII(s);
  if (ascii === "") throw new JidError("domainpart is not a valid domain name");
  // The URL host parser reads "123" or "0x7f.1" as IPv4 numbers; a JID domain is only a name or a dotted quad.
  if (isIPv4(ascii) && !isIPv4(s)) throw new JidError("domainpart is not a valid domain name");
  s = ascii.includes("xn--") ? domainToUnicode(ascii) : ascii;
  if (octets(s) > MAX_PART_OCTETS) throw new JidError("domainpart too long");
  for (const label of ascii.split(".")) {
    if (label.length === 0 || label.length > 63) throw new JidError("domainpart has an invalid label");
  }
  return s;
}

export function normalizeResource(raw: string): string {
  const s = raw.replace(MAPPED_TO_NOTHING, "").replace(NON_ASCII_SPACE, " ").normalize("NFC");
  if (s === "") throw new JidError("empty resourcepart");
  if (CONTROL.test(s)) throw new JidError("resourcepart contains a disallowed code point");
  if (octets(s) > MAX_PART_OCTETS) throw new JidError("resourcepart too long");
  return s;
}

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  private str?: string;

  /** Parts must already be normalised; use parseJid() or Jid.of() for raw input. */
  private constructor(local: string, domain: string, resource: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  static of(local: string | undefined, domain: string, resource?: string): Jid {
    return new Jid(
      local ? normalizeLocal(local) : "",
      normalizeDomain(domain),
      resource ? normalizeResource(resource) : "",
    );
  }

  /** Builds a JID from parts that are known to be normalised already (hot path). */
  static trusted(local: string, domain: string, resource = ""): Jid {
    return new Jid(local, domain, resource);
  }

  get isBare(): boolean {
    return this.resource === "";
  }

  get isDomain(): boolean {
    return this.local === "" && this.resource === "";
  }

  bare(): Jid {
    return this.resource === "" ? this : new Jid(this.local, this.domain, "");
  }

  withResource(resource: string): Jid {
    return new Jid(this.local, this.domain, normalizeResource(resource));
  }

  /** The bare JID as a string (localpart@domain or domain). */
  get bareString(): string {
    return this.local ? this.local + "@" + this.domain : this.domain;
  }

  equals(other: Jid | undefined): boolean {
    return (
      !!other &&
      other.local === this.local &&
      other.domain === this.domain &&
      other.resource === this.resource
    );
  }

  toString(): string {
    if (this.str === undefined) {
      this.str = this.bareString + (this.resource ? "/" + this.resource : "");
    }
    return this.str;
  }
}

/** The resourcepart of an address as written, not prepared (RFC 7622 §3.1: after the first '/'). */
export function resourceAsWritten(input: string): string | undefined {
  const slash = input.indexOf("/");
  return slash === -1 ? undefined : input.slice(slash + 1);
}

/** Parses and normalises a JID; throws JidError when it is invalid (→ jid-malformed). */
export function parseJid(input: string): Jid {
  if (octets(input) > 3071) throw new JidError("JID too long");
  // RFC 7622 §3.1: the resourcepart begins at the first '/', the localpart ends at the first '@' before it.
  const resource = resourceAsWritten(input);
  const head = resource === undefined ? input : input.slice(0, input.length - resource.length - 1);
  const at = head.indexOf("@");
  const local = at === -1 ? undefined : head.slice(0, at);
  const domain = at === -1 ? head : head.slice(at + 1);
  if (local === "") throw new JidError("empty localpart");
  if (resource === "") throw new JidError("empty resourcepart");
  return Jid.of(local, domain, resource);
}

export function tryParseJid(input: string | undefined): Jid | undefined {
  if (input === undefined) return undefined;
  try {
    return parseJid(input);
  } catch {
    return undefined;
  }
}

/**
 * The key of a local account in storage, sessions and commands: the bare localpart on the
 * primary domain (so a server that served one domain keeps its data as it was), and
 * "local@domain" on another served domain (a virtual host). A localpart never contains '@'
 * (RFC 7622 §3.3.1), so the two forms cannot collide. Every account key is built here.
 */
export function accountKey(local: string, domain: string, primaryDomain: string): string {
  return domain === primaryDomain ? local : `${local}@${domain}`;
}

/** The bare JID of the account an accountKey() names. */
export function accountJid(key: string, primaryDomain: string): Jid {
  const at = key.indexOf("@");
  return at < 0 ? Jid.trusted(key, primaryDomain) : Jid.trusted(key.slice(0, at), key.slice(at + 1));
}
