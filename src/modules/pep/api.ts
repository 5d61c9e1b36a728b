/**
 * What other modules use of personal eventing (`ctx.api<PepApi>("pep")`): reading an
 * account's nodes, publishing on its behalf, and the event every publication fires (avatar
 * conversion, XEP-0398, plugs in here).
 */
import type { Jid } from "../../core/jid.js";
import type { XmlElement } from "../../core/xml/element.js";

export type PepAccessModel = "presence" | "open" | "whitelist";

/** An item was published to a node of an account (after it was stored and notified). */
export interface PepPublishedEvent {
  /** The account's bare JID. */
  readonly owner: Jid;
  /** The account key. */
  readonly account: string;
  readonly node: string;
  readonly id: string;
  readonly payload: XmlElement;
  /** The node's access model at publication. */
  readonly accessModel: PepAccessModel;
  /**
   * The module that published on the account's behalf; undefined when the account's own
   * client did. A module that reacts to publications skips its own, so none echoes back.
   */
  readonly origin: string | undefined;
}

declare module "../../core/events.js" {
  interface ServerEvents {
    "pep/published": PepPublishedEvent;
  }
}

/** One stored item of a node, with the node's access model. */
export interface PepItem {
  id: string;
  payload: XmlElement;
  accessModel: PepAccessModel;
}

export interface PepApi {
  /** The item `id` of an account's node, or the node's last item without `id`; undefined when there is none. */
  item(owner: Jid, node: string, id?: string): Promise<PepItem | undefined>;
  /**
   * Publishes an item on the account's behalf, as if its client had: stored, notified to
   * those allowed to see it, and announced with "pep/published" carrying `origin`. A node
   * that does not exist is created with `accessModel` (default: the server's default); an
   * existing node keeps its configuration. Throws a StanzaError as a client's publish would
   * be refused (too many nodes, payload too big).
   */
  publish(
    owner: Jid,
    node: string,
    id: string,
    payload: XmlElement,
    opts: { origin: string; accessModel?: PepAccessModel },
  ): Promise<void>;
}
