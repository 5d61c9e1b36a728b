/**
 * Small helpers to build and inspect stanzas in end-to-end tests. Elements are
 * ltx elements (what @xmpp/client produces; slixmpp's XML is parsed into the same).
 */
import { type Element, xml } from "@xmpp/client";
import parse from "ltx/src/parse.js";

export type { Element };
export { xml };

export const NS = {
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  streams: "urn:ietf:params:xml:ns:xmpp-streams",
  roster: "jabber:iq:roster",
  delay: "urn:xmpp:delay",
  discoInfo: "http://jabber.org/protocol/disco#info",
  ping: "urn:xmpp:ping",
  version: "jabber:iq:version",
  time: "urn:xmpp:time",
  last: "jabber:iq:last",
  vcard: "vcard-temp",
  private: "jabber:iq:private",
  blocking: "urn:xmpp:blocking",
  blockingErrors: "urn:xmpp:blocking:errors",
  rosterver: "urn:xmpp:features:rosterver",
  preapproval: "urn:xmpp:features:pre-approval",
} as const;

export function parseXml(text: string): Element {
  return parse(text);
}

export function bare(jid: string): string {
  const slash = jid.indexOf("/");
  return slash < 0 ? jid : jid.slice(0, slash);
}

let idCounter = 0;
/** A fresh stanza id, readable in logs. */
export function newId(prefix = "e2e"): string {
  return `${prefix}-${++idCounter}-${Math.random().toString(36).slice(2, 7)}`;
}

/** The defined condition and type of a stanza error, or undefined when the stanza is no error. */
export function stanzaError(
  el: Element,
): { type: string | undefined; condition: string | undefined; text?: string } | undefined {
  if (el.attrs.type !== "error") return undefined;
  const err = el.getChild("error");
  if (!err) return { type: undefined, condition: undefined };
  const cond = err.getChildElements().find((c) => c.getNS() === NS.stanzas && c.name !== "text");
  const text = err.getChildText("text", NS.stanzas) ?? undefined;
  return { type: err.attrs.type, condition: cond?.name, ...(text ? { text } : {}) };
}

/** Matchers for Inbox.next/none. */
export const is = {
  message:
    (opts: { from?: string; body?: string; type?: string } = {}) =>
    (el: Element) =>
      el.name === "message" &&
      (opts.from === undefined || el.attrs.from === opts.from) &&
      (opts.body === undefined || el.getChildText("body") === opts.body) &&
      (opts.type === undefined || (el.attrs.type ?? "normal") === opts.type),

  /** Any <message/> carrying a body (the "a chat message arrived" case). */
  anyChat: () => (el: Element) => el.name === "message" && el.getChild("body") !== undefined,

  presence:
    (opts: { from?: string; type?: string; fromBare?: string } = {}) =>
    (el: Element) =>
      el.name === "presence" &&
      (opts.from === undefined || el.attrs.from === opts.from) &&
      (opts.fromBare === undefined ||
        (el.attrs.from !== undefined && bare(el.attrs.from) === opts.fromBare)) &&
      (opts.type === undefined ? el.attrs.type === undefined : el.attrs.type === opts.type),

  iqReply: (id: string) => (el: Element) =>
    el.name === "iq" && el.attrs.id === id && (el.attrs.type === "result" || el.attrs.type === "error"),

  rosterPush: (itemJid?: string) => (el: Element) =>
    el.name === "iq" &&
    el.attrs.type === "set" &&
    el.getChild("query", NS.roster) !== undefined &&
    (itemJid === undefined ||
      el
        .getChild("query", NS.roster)!
        .getChildren("item")
        .some((i) => i.attrs.jid === itemJid)),

  blockingPush: (name: "block" | "unblock") => (el: Element) =>
    el.name === "iq" && el.attrs.type === "set" && el.getChild(name, NS.blocking) !== undefined,
};

/** The single <item/> of a roster push or result, for the given JID. */
export function rosterItem(el: Element, jid: string): Element | undefined {
  return el
    .getChild("query", NS.roster)
    ?.getChildren("item")
    .find((i) => i.attrs.jid === jid);
}

/** A compact summary of a roster item for assertions: "sub=both ask=- approved=-". */
export function itemState(
  item: Element | undefined,
): { subscription: string; ask?: string; approved?: string } | undefined {
  if (!item) return undefined;
  return {
    subscription: item.attrs.subscription ?? "none",
    ...(item.attrs.ask !== undefined ? { ask: item.attrs.ask } : {}),
    ...(item.attrs.approved !== undefined ? { approved: item.attrs.approved } : {}),
  };
}
