/**
 * Private XML storage (XEP-0049, jabber:iq:private): an account keeps
 * arbitrary XML elements on the server, one per (element name, namespace),
 * readable and writable only by the account itself (forbidden for anyone
 * else). Reserved namespaces (jabber:*, http://jabber.org/*, vcard-temp) are
 * refused with not-acceptable, as is a request without a child element; a get
 * asks for one element only. Each element and the number of elements per
 * account are limited.
 */
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import { NS_PRIVATE } from "../../core/xml/namespaces.js";
import { isSelf } from "../roster/api.js";

/** An element without its own xmlns is in the namespace of its <query/>: jabber:iq:private. */
function namespaceOf(el: XmlElement): string {
  return el.attrs.xmlns ?? NS_PRIVATE;
}

export function isReserved(ns: string): boolean {
  return ns.startsWith("jabber:") || ns.startsWith("http://jabber.org/") || ns === "vcard-temp";
}

/** Storage key in Clark notation: {namespace}name. */
function keyOf(el: XmlElement): string {
  return `{${namespaceOf(el)}}${el.name}`;
}

export default defineModule({
  name: "private",
  description: "Private XML storage for accounts (XEP-0049)",
  xeps: [{ xep: "0049", version: "1.2", status: "complete" }],
  options: z.object({
    /** Largest stored element, in bytes of serialized XML. */
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
    /** Distinct (name, namespace) elements kept per account. */
    maxElements: z.number().int().min(1).default(100),
  }),
  setup(ctx) {
    const { storage, domain } = ctx;
    const store = storage.keyValue("private");
    const { maxBytes, maxElements } = ctx.options;
    ctx.addFeature(NS_PRIVATE, "host");

    /** The child elements of a valid request from the owner. */
    const children = (req: IqRequest): XmlElement[] => {
      if (req.payload.name !== "query") throw new StanzaError("bad-request", "expected a <query/> element");
      if (!isSelf(ctx.accountKey(req.to), domain, req.from)) {
        throw new StanzaError("forbidden", "private data belongs to its account only");
      }
      const elements = req.payload.elements();
      if (elements.length === 0) throw new StanzaError("not-acceptable", "the query needs a child element");
      for (const el of elements) {
        if (isReserved(namespaceOf(el)))
          throw new StanzaError("not-acceptable", `${namespaceOf(el)} is reserved`);
      }
      return elements;
    };

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_PRIVATE }, async (req) => {
      const elements = children(req);
      if (elements.length > 1) throw new StanzaError("bad-request", "ask for one element at a time");
      const wanted = elements[0]!;
      const raw = await store.get(ctx.accountKey(req.to), keyOf(wanted));
      const stored = raw === undefined ? undefined : parseElement(raw);
      if (raw !== undefined && !stored)
        ctx.log.warn({ key: keyOf(wanted) }, "stored private XML is unreadable");
      // Nothing stored: the empty element asked for, as clients expect.
      return x("query", { xmlns: NS_PRIVATE }, stored ?? x(wanted.name, { xmlns: namespaceOf(wanted) }));
    });

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_PRIVATE }, async (req) => {
      const elements = children(req);
      const username = ctx.accountKey(req.to);
      const writes = new Map<string, string>();
      for (const el of elements) {
        const xml = el.toString();
        if (Buffer.byteLength(xml, "utf8") > maxBytes) {
          throw new StanzaError("not-acceptable", `<${el.name}/> is larger than ${maxBytes} bytes`);
        }
        writes.set(keyOf(el), xml);
      }
      const existing = new Set(await store.keys(username));
      const added = [...writes.keys()].filter((k) => !existing.has(k)).length;
      if (existing.size + added > maxElements) {
        throw new StanzaError(
          "not-acceptable",
          `at most ${maxElements} private elements are kept per account`,
        );
      }
      for (const [key, xml] of writes) await store.set(username, key, xml);
    });
  },
});

export { NS_PRIVATE } from "../../core/xml/namespaces.js";
