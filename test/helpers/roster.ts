/** Roster requests (RFC 6121 §2) as stanzas, for any peer. */
import type { Peer } from "./peer.js";
import { type Element, NS, xml } from "./stanza.js";

/** Roster get; `ver` asks for versioning (RFC 6121 §2.6), "" for "I have no cached roster". */
export function rosterGet(peer: Peer, ver?: string): Promise<Element> {
  return peer.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.roster, ver })));
}

export function rosterSet(
  peer: Peer,
  jid: string,
  opts: { name?: string; groups?: string[] } = {},
): Promise<Element> {
  return peer.iq(
    xml(
      "iq",
      { type: "set" },
      xml(
        "query",
        { xmlns: NS.roster },
        xml("item", { jid, name: opts.name }, ...(opts.groups ?? []).map((g) => xml("group", {}, g))),
      ),
    ),
  );
}

export function rosterRemove(peer: Peer, jid: string): Promise<Element> {
  return peer.iq(
    xml(
      "iq",
      { type: "set" },
      xml("query", { xmlns: NS.roster }, xml("item", { jid, subscription: "remove" })),
    ),
  );
}

/** The JIDs listed in a roster result. */
export function rosterJids(result: Element): string[] {
  return (result.getChild("query", NS.roster)?.getChildren("item") ?? []).map((i) => i.attrs.jid ?? "");
}
