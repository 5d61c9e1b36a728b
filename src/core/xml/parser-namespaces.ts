/**
 * Namespaces in XML 1.0 for the stream parser: resolves prefixed names against the
 * declarations in scope and enforces the namespace well-formedness rules (bound prefixes,
 * reserved prefixes, no duplicate expanded attribute names). The tokenizer underneath runs
 * without namespace processing because this layer does the same checks for less work.
 */
import { NS_XML, NS_XMLNS } from "./namespaces.js";

/** A namespace rule was broken: the caller reports it as not-well-formed. */
export class NamespaceError extends Error {
  override name = "NamespaceError";
}

/** The declarations made on one element, chained to its ancestors' scope. */
export class NsScope {
  constructor(
    readonly parent: NsScope | null,
    /** the default namespace in force ("" when none) */
    readonly defaultNs: string,
    private readonly prefixes: Map<string, string> | null,
  ) {}

  /**
   * This element's own declarations as one string: equal strings, equal scopes (same parent).
   * NUL separates the parts: XML 1.0 allows it nowhere, not even as a character reference, so
   * no namespace name can make one header's key another's.
   */
  declarationsKey(): string {
    let key = this.defaultNs;
    if (this.prefixes) for (const [prefix, uri] of this.prefixes) key += `\0${prefix}\0${uri}`;
    return key;
  }

  resolve(prefix: string): string | undefined {
    for (let s: NsScope | null = this; s !== null; s = s.parent) {
      const uri = s.prefixes?.get(prefix);
      if (uri !== undefined) return uri;
    }
    return prefix === "xml" ? NS_XML : undefined;
  }
}

export const ROOT_SCOPE = new NsScope(null, "", null);

/** Stream headers' scopes by their declarations, shared (see sharedHeaderScope). */
const HEADER_SCOPES = new Map<string, NsScope>();
/** Past this many different headers, new ones keep their own scope (a peer cannot grow the cache). */
const MAX_HEADER_SCOPES = 64;

/**
 * The scope a stream header declared, shared with every stream that declared the same: an
 * idle stream otherwise keeps its own map of the same two declarations, and strings that
 * hold on to the whole chunk its header came in.
 */
export function sharedHeaderScope(scope: NsScope): NsScope {
  if (scope.parent !== ROOT_SCOPE) return scope;
  const key = scope.declarationsKey();
  const known = HEADER_SCOPES.get(key);
  if (known) return known;
  if (HEADER_SCOPES.size < MAX_HEADER_SCOPES) HEADER_SCOPES.set(key, scope);
  return scope;
}

/** One element after namespace processing. */
export interface ResolvedElement {
  /** local name, without prefix */
  local: string;
  /** namespace name ("" for none) */
  ns: string;
  /** the scope its children resolve against */
  scope: NsScope;
  /**
   * Attributes: unprefixed ones and xml:* as written; other prefixed ones keep their prefix and
   * get the matching xmlns:prefix declaration beside them; all other declarations are dropped.
   */
  attrs: Record<string, string>;
}

const COLON = 58;

/**
 * Characters allowed in XML names but not at the start of one. The tokenizer has already
 * checked every character as a NameChar and the first as a NameStartChar, so after splitting
 * a QName only the first character of the local part needs this extra check.
 */
function isNameStart(code: number): boolean {
  return !(
    code === 0x2d ||
    code === 0x2e ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0xb7 ||
    (code >= 0x300 && code <= 0x36f) ||
    code === 0x203f ||
    code === 0x2040
  );
}

/** Index of the colon in a QName, -1 for an unprefixed name; throws for a malformed QName. */
function qnameColon(name: string): number {
  const colon = name.indexOf(":");
  if (colon === -1) return -1;
  if (colon === 0 || colon === name.length - 1 || name.indexOf(":", colon + 1) !== -1)
    throw new NamespaceError(`malformed qualified name: ${name}`);
  if (!isNameStart(name.charCodeAt(colon + 1))) throw new NamespaceError(`malformed qualified name: ${name}`);
  return colon;
}

function checkDeclaration(prefix: string, uri: string): void {
  if (prefix === "xmlns") throw new NamespaceError("the xmlns prefix must not be declared");
  if (prefix === "xml") {
    if (uri !== NS_XML) throw new NamespaceError("the xml prefix must not be rebound");
    return;
  }
  if (uri === "") throw new NamespaceError(`prefix ${prefix} undeclared (not allowed in XML 1.0)`);
  if (uri === NS_XML || uri === NS_XMLNS)
    throw new NamespaceError(`reserved namespace ${uri} bound to prefix ${prefix}`);
  if (prefix === "" || prefix.indexOf(":") !== -1 || !isNameStart(prefix.charCodeAt(0)))
    throw new NamespaceError(`malformed prefix: ${prefix}`);
}

/**
 * Resolves one start tag. `raw` maps attribute names as written to their values.
 * `inheritedNs` is the namespace that needs no xmlns attribute on the output (the parent's,
 * or the stream's content namespace for a top-level element; null: always write xmlns).
 * With `keepDeclarations` (the stream header) attributes are returned exactly as written.
 */
export function resolveElement(
  name: string,
  raw: Record<string, string>,
  parent: NsScope,
  inheritedNs: string | null,
  keepDeclarations = false,
): ResolvedElement {
  const colon = qnameColon(name);
  // An unprefixed element's namespace depends only on xmlns, so the usual case is one pass
  // that already puts xmlns first in the output (so it serializes first).
  let ns = colon === -1 ? (raw.xmlns ?? parent.defaultNs) : "";
  const attrs: Record<string, string> =
    colon === -1 && !keepDeclarations && ns !== inheritedNs ? { xmlns: ns } : {};
  let defaultNs: string | undefined;
  let prefixes: Map<string, string> | null = null;
  let prefixedAttrs = false;
  // Object.keys: saxes hands a null-prototype (dictionary) object, where for-in is slower.
  const names = Object.keys(raw);
  for (let i = 0; i < names.length; i++) {
    const attr = names[i]!;
    const value = raw[attr]!;
    if (attr.charCodeAt(0) === 120 /* x */ && attr.startsWith("xmlns")) {
      if (attr.length === 5) {
        if (value === NS_XML || value === NS_XMLNS)
          throw new NamespaceError(`reserved namespace ${value} used as default namespace`);
        defaultNs = value;
        if (keepDeclarations) attrs[attr] = value;
        continue;
      }
      if (attr.charCodeAt(5) === COLON) {
        const prefix = attr.slice(6);
        checkDeclaration(prefix, value);
        if (prefixes === null) prefixes = new Map();
        prefixes.set(prefix, value);
        if (keepDeclarations) attrs[attr] = value;
        continue;
      }
    }
    if (attr.indexOf(":") !== -1) {
      // Needs every declaration of this element first: handled after the loop.
      prefixedAttrs = true;
      if (keepDeclarations) attrs[attr] = value;
    } else if (attr === "__proto__") {
      // Plain assignment would set the prototype instead of an attribute.
      Object.defineProperty(attrs, attr, { value, enumerable: true, writable: true, configurable: true });
    } else attrs[attr] = value;
  }
  const scope =
    defaultNs === undefined && prefixes === null
      ? parent
      : new NsScope(parent, defaultNs ?? parent.defaultNs, prefixes);

  let local = name;
  if (colon !== -1) {
    const prefix = name.slice(0, colon);
    if (prefix === "xmlns") throw new NamespaceError("elements must not have the xmlns prefix");
    const uri = scope.resolve(prefix);
    if (uri === undefined) throw new NamespaceError(`unbound namespace prefix: ${prefix}`);
    local = name.slice(colon + 1);
    ns = uri;
    if (!keepDeclarations && ns !== inheritedNs) attrs.xmlns = ns;
  }
  if (prefixedAttrs) checkPrefixedAttributes(raw, scope, keepDeclarations ? null : attrs);
  return { local, ns, scope, attrs };
}

/**
 * Checks prefixed attributes (bound prefix, no two with the same expanded name) and, when
 * `out` is given, copies them there with the declarations they need.
 */
function checkPrefixedAttributes(
  raw: Record<string, string>,
  scope: NsScope,
  out: Record<string, string> | null,
): void {
  let seen: Set<string> | null = null;
  for (const attr in raw) {
    const colon = attr.indexOf(":");
    if (colon === -1) continue;
    if (attr.startsWith("xmlns:")) continue;
    qnameColon(attr);
    const prefix = attr.slice(0, colon);
    if (prefix === "xml") {
      // Always bound, and no other prefix may share its namespace: cannot collide.
      if (out) out[attr] = raw[attr]!;
      continue;
    }
    const uri = scope.resolve(prefix);
    if (uri === undefined) throw new NamespaceError(`unbound namespace prefix: ${prefix}`);
    const expanded = `{${uri}}${attr.slice(colon + 1)}`;
    seen ??= new Set();
    if (seen.has(expanded)) throw new NamespaceError(`duplicate attribute: ${expanded}`);
    seen.add(expanded);
    if (out) {
      out[attr] = raw[attr]!;
      out[`xmlns:${prefix}`] = uri;
    }
  }
}

export { NS_XML, NS_XMLNS } from "./namespaces.js";
