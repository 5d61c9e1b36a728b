/**
 * Filters on every client session's stanzas, in the manner of ejabberd's
 * c2s_handle_recv / c2s_handle_send hooks and xmpp.js's middleware: an inbound filter
 * sees each stanza a client sends before routing, an outbound filter each stanza on its
 * way to a client. A filter returns the stanza (the same or another) to let it pass, or
 * undefined to take it (it was handled, queued or dropped). Stream management counters,
 * carbons and client state indication plug in here as modules.
 */
import type { ClientSession } from "./session.js";
import type { XmlElement } from "./xml/element.js";

export type StanzaFilter = (session: ClientSession, stanza: XmlElement) => XmlElement | undefined;
export type FilterDirection = "inbound" | "outbound";

interface Entry {
  filter: StanzaFilter;
  priority: number;
  seq: number;
}

export class StanzaFilters {
  private readonly chains: Record<FilterDirection, StanzaFilter[]> = { inbound: [], outbound: [] };
  private readonly entries: Record<FilterDirection, Entry[]> = { inbound: [], outbound: [] };
  private seq = 0;

  /** Adds a filter (higher priority runs first); returns the function that removes it. */
  add(direction: FilterDirection, filter: StanzaFilter, priority = 0): () => void {
    const entry = { filter, priority, seq: this.seq++ };
    this.entries[direction].push(entry);
    this.rebuild(direction);
    return () => {
      const list = this.entries[direction];
      const i = list.indexOf(entry);
      if (i >= 0) list.splice(i, 1);
      this.rebuild(direction);
    };
  }

  /** Runs a chain: the stanza to go on with, or undefined when a filter took it. */
  run(direction: FilterDirection, session: ClientSession, stanza: XmlElement): XmlElement | undefined {
    const chain = this.chains[direction];
    let current: XmlElement | undefined = stanza;
    for (let i = 0; i < chain.length && current !== undefined; i++) current = chain[i]!(session, current);
    return current;
  }

  private rebuild(direction: FilterDirection): void {
    this.chains[direction] = [...this.entries[direction]]
      .sort((a, b) => b.priority - a.priority || a.seq - b.seq)
      .map((e) => e.filter);
  }
}
