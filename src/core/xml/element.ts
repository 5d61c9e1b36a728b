/**
 * A parsed or built XML element: the unit every stanza is made of.
 * Kept deliberately small (no parent pointers, no DOM) so idle sessions and
 * queued stanzas cost little memory.
 */
export type XmlNode = XmlElement | string;

export type Attrs = Record<string, string | undefined>;

const ESCAPE_TEXT = /[&<>]/g;
const ESCAPE_ATTR = /[&<>"']/g;
// Non-global twins for the fast "anything to escape?" test (a /g regex keeps lastIndex between calls).
const NEEDS_TEXT = /[&<>]/;
const NEEDS_ATTR = /[&<>"']/;
const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

export function escapeText(s: string): string {
  return NEEDS_TEXT.test(s) ? s.replace(ESCAPE_TEXT, (c) => ENTITIES[c]!) : s;
}

export function escapeAttr(s: string): string {
  return NEEDS_ATTR.test(s) ? s.replace(ESCAPE_ATTR, (c) => ENTITIES[c]!) : s;
}

export class XmlElement {
  name: string;
  attrs: Attrs;
  children: XmlNode[];

  constructor(name: string, attrs?: Attrs, children?: XmlNode[]) {
    this.name = name;
    this.attrs = attrs ?? {};
    this.children = children ?? [];
  }

  /** The namespace declared on this element (xmlns attribute), if any. */
  get xmlns(): string | undefined {
    return this.attrs.xmlns;
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** Appends a child element and returns it, for building nested trees fluently. */
  c(name: string, attrs?: Attrs): XmlElement {
    const child = new XmlElement(name, attrs);
    this.children.push(child);
    return child;
  }

  /** Appends children (elements or text) and returns this element. */
  append(...nodes: (XmlNode | undefined | null | false)[]): this {
    for (const n of nodes)
      if (n !== undefined && n !== null && n !== false && n !== "") this.children.push(n);
    return this;
  }

  /** Appends text and returns this element. */
  t(text: string): this {
    if (text !== "") this.children.push(text);
    return this;
  }

  /** First child element with this name and (if given) namespace. */
  getChild(name: string, xmlns?: string): XmlElement | undefined {
    for (const c of this.children) {
      if (typeof c !== "string" && c.name === name && (xmlns === undefined || c.attrs.xmlns === xmlns))
        return c;
    }
    return undefined;
  }

  getChildren(name: string, xmlns?: string): XmlElement[] {
    const out: XmlElement[] = [];
    for (const c of this.children) {
      if (typeof c !== "string" && c.name === name && (xmlns === undefined || c.attrs.xmlns === xmlns))
        out.push(c);
    }
    return out;
  }

  /** First child element in the given namespace, whatever its name. */
  getChildByNs(xmlns: string): XmlElement | undefined {
    for (const c of this.children) if (typeof c !== "string" && c.attrs.xmlns === xmlns) return c;
    return undefined;
  }

  elements(): XmlElement[] {
    const out: XmlElement[] = [];
    for (const c of this.children) if (typeof c !== "string") out.push(c);
    return out;
  }

  /** First child element, if any (the payload of an IQ). */
  firstElement(): XmlElement | undefined {
    for (const c of this.children) if (typeof c !== "string") return c;
    return undefined;
  }

  /** Concatenated text children (not recursive). */
  text(): string {
    let s = "";
    for (const c of this.children) if (typeof c === "string") s += c;
    return s;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  removeChildren(name: string, xmlns?: string): this {
    this.children = this.children.filter(
      (c) => typeof c === "string" || c.name !== name || (xmlns !== undefined && c.attrs.xmlns !== xmlns),
    );
    return this;
  }

  /** Deep copy; stanzas are cloned before a module changes one that is delivered to several sessions. */
  clone(): XmlElement {
    return new XmlElement(
      this.name,
      { ...this.attrs },
      this.children.map((c) => (typeof c === "string" ? c : c.clone())),
    );
  }

  toString(): string {
    return serialize(this);
  }
}

/** Serializes an element; undefined attributes are skipped. */
export function serialize(el: XmlElement): string {
  let s = "<" + el.name;
  for (const k in el.attrs) {
    const v = el.attrs[k];
    if (v !== undefined) s += " " + k + '="' + escapeAttr(v) + '"';
  }
  if (el.children.length === 0) return s + "/>";
  s += ">";
  for (const c of el.children) s += typeof c === "string" ? escapeText(c) : serialize(c);
  return s + "</" + el.name + ">";
}

/** Shorthand builder: x("iq", {type: "result"}, x("query", {xmlns}), "text"). */
export function x(
  name: string,
  attrs?: Attrs | null,
  ...children: (XmlNode | undefined | null | false)[]
): XmlElement {
  const el = new XmlElement(name, attrs ?? undefined);
  el.append(...children);
  return el;
}
