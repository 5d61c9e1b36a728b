/**
 * Reading a XEP-0313 query: the XEP-0004 form (FORM_TYPE urn:xmpp:mam:2 with start, end,
 * with, before-id, after-id, ids, include-groupchat and a full-text search field), the
 * XEP-0059 <set/> (max, after, before) and <flip-page/>. Bad input is a stanza error: an
 * unknown field feature-not-implemented (§4.1.5), a malformed value bad-request.
 */
import { StanzaError } from "../../core/errors.js";
import { type Jid, JidError, parseJid } from "../../core/jid.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DATA, NS_MAM, NS_RSM } from "../../core/xml/namespaces.js";

/** The full-text search field (the name Prosody and ejabberd use too). */
export const FULLTEXT_FIELD = "{urn:xmpp:fulltext:0}fulltext";

export interface ArchiveQuery {
  queryId?: string;
  /** 'with': bare JID, and the resource when a full JID was given. */
  peer?: string;
  peerResource?: string;
  start?: number;
  end?: number;
  /** The form's before-id / after-id (the range), apart from RSM's cursor. */
  beforeId?: string;
  afterId?: string;
  ids?: string[];
  text?: string;
  /** RSM: page size asked (undefined: the server's default). */
  max?: number;
  /** RSM <after/>: the page after this id. */
  after?: string;
  /** RSM <before/>: the page before this id; "" is the last page. */
  before?: string;
  flip: boolean;
}

/** XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, to milliseconds. */
export function parseDateTime(value: string, field: string): number {
  const m = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(value.trim());
  const t = m ? Date.parse(value.trim()) : Number.NaN;
  if (Number.isNaN(t)) throw new StanzaError("bad-request", `${field}: not a XEP-0082 DateTime: ${value}`);
  return t;
}

/**
 * A child in its parent's namespace: the parser leaves out an xmlns equal to the parent's,
 * and elements built here may spell it out.
 */
export function sameNsChild(parent: XmlElement, name: string, ns: string): XmlElement | undefined {
  for (const c of parent.children)
    if (typeof c !== "string" && c.name === name && (c.attrs.xmlns === undefined || c.attrs.xmlns === ns))
      return c;
  return undefined;
}

function single(field: XmlElement, name: string): string {
  const values = field.getChildren("value");
  if (values.length !== 1) throw new StanzaError("bad-request", `${name}: one <value/> expected`);
  return values[0]!.text();
}

export function parseQuery(query: XmlElement): ArchiveQuery {
  if (query.attrs.node !== undefined)
    throw new StanzaError("feature-not-implemented", "archives of pubsub nodes are not served here");
  const q: ArchiveQuery = { flip: sameNsChild(query, "flip-page", NS_MAM) !== undefined };
  if (query.attrs.queryid !== undefined) q.queryId = query.attrs.queryid;

  const form = query.getChild("x", NS_DATA);
  if (form) {
    if (form.attrs.type !== undefined && form.attrs.type !== "submit")
      throw new StanzaError("bad-request", "the query form must be of type submit");
    for (const field of form.getChildren("field")) {
      const name = field.attrs.var;
      switch (name) {
        case "FORM_TYPE":
          if (single(field, name) !== NS_MAM)
            throw new StanzaError("bad-request", `FORM_TYPE must be ${NS_MAM}`);
          break;
        case "with": {
          const raw = single(field, name).trim();
          let jid: Jid;
          try {
            jid = parseJid(raw);
          } catch (err) {
            if (err instanceof JidError) throw new StanzaError("jid-malformed", `with: ${err.message}`);
            throw err;
          }
          q.peer = jid.bareString;
          if (jid.resource !== "") q.peerResource = jid.resource;
          break;
        }
        case "start":
          q.start = parseDateTime(single(field, name), name);
          break;
        case "end":
          q.end = parseDateTime(single(field, name), name);
          break;
        case "before-id":
          q.beforeId = single(field, name);
          break;
        case "after-id":
          q.afterId = single(field, name);
          break;
        case "ids":
          q.ids = field.getChildren("value").map((v) => v.text());
          break;
        case "include-groupchat": {
          // Group chat messages are never in a user's archive here: either answer is honoured.
          const v = single(field, name);
          if (!["true", "false", "1", "0"].includes(v))
            throw new StanzaError("bad-request", "include-groupchat is a boolean");
          break;
        }
        case FULLTEXT_FIELD: {
          const text = field
            .getChildren("value")
            .map((v) => v.text())
            .join(" ")
            .trim();
          if (text !== "") q.text = text;
          break;
        }
        case undefined:
          throw new StanzaError("bad-request", "a form field without var");
        default:
          throw new StanzaError("feature-not-implemented", `unknown query field ${name}`);
      }
    }
  }

  const set = query.getChild("set", NS_RSM);
  if (set) {
    const max = sameNsChild(set, "max", NS_RSM);
    if (max) {
      const n = Number(max.text().trim());
      if (!/^\d+$/.test(max.text().trim()) || !Number.isSafeInteger(n))
        throw new StanzaError("bad-request", "RSM <max/> is a non-negative integer");
      q.max = n;
    }
    const after = sameNsChild(set, "after", NS_RSM);
    const before = sameNsChild(set, "before", NS_RSM);
    if (after && before)
      throw new StanzaError("bad-request", "RSM <after/> and <before/> together: use after-id and before-id");
    if (after) {
      const id = after.text();
      if (id === "") throw new StanzaError("bad-request", "RSM <after/> needs an id");
      q.after = id;
    }
    if (before) q.before = before.text();
    if (sameNsChild(set, "index", NS_RSM))
      throw new StanzaError("feature-not-implemented", "RSM <index/> is not supported");
  }
  return q;
}

/** The form a client asks for (§4.1.5): every field a query may use. */
export function queryForm(): XmlElement {
  const field = (v: string, type: string, ...children: XmlElement[]) =>
    x("field", { var: v, type }, ...children);
  return x(
    "x",
    { xmlns: NS_DATA, type: "form" },
    field("FORM_TYPE", "hidden", x("value", null, NS_MAM)),
    field("with", "jid-single"),
    field("start", "text-single"),
    field("end", "text-single"),
    field("before-id", "text-single"),
    field("after-id", "text-single"),
    field(
      "ids",
      "list-multi",
      x("validate", { xmlns: "http://jabber.org/protocol/xdata-validate", datatype: "xs:string" }, x("open")),
    ),
    field("include-groupchat", "boolean"),
    field(FULLTEXT_FIELD, "text-single"),
  );
}
