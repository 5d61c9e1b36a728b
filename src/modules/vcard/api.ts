/**
 * What other modules use of the vCard module (`ctx.api<VcardApi>("vcard")`): reading an
 * account's stored vCard, changing it on the account's behalf, and the events around a
 * change (avatar conversion, XEP-0398, plugs in here).
 */
import type { XmlElement } from "../../core/xml/element.js";

/** A vCard an account's client is setting, before it is stored. */
export interface VcardSettingEvent {
  /** The account key. */
  readonly username: string;
  /** The vCard as sent (not empty: an empty one is a removal and fires no check). */
  readonly vcard: XmlElement;
}

/** An account's stored vCard changed. */
export interface VcardChangedEvent {
  readonly username: string;
  /** The vCard now stored; undefined when it was removed. */
  readonly vcard: XmlElement | undefined;
  /**
   * The module that changed it on the account's behalf; undefined when the account's own
   * client did. A module that reacts to changes skips its own, so no change echoes back.
   */
  readonly origin: string | undefined;
}

declare module "../../core/events.js" {
  interface ServerEvents {
    /**
     * A client sets its vCard: a handler refuses it by throwing a StanzaError (the client
     * gets that error and nothing is stored).
     */
    "vcard/setting": VcardSettingEvent;
    /** A vCard was stored or removed (by the client or by a module through the API). */
    "vcard/changed": VcardChangedEvent;
  }
}

export interface VcardApi {
  /** The account's stored vCard; undefined when it has none (or it is unreadable). */
  get(username: string): Promise<XmlElement | undefined>;
  /**
   * Changes the account's vCard on its behalf: `change` gets the stored one (undefined for
   * none) and returns the new one (undefined or an empty vCard removes it; `false` leaves it
   * as it was). Runs in turn with the client's own sets, so
   * neither overwrites the other unseen. Throws a StanzaError (not-acceptable) when the result
   * is over the size limit; fires "vcard/changed" with `origin` when something was written.
   * Resolves with whether it wrote.
   */
  update(
    username: string,
    origin: string,
    change: (current: XmlElement | undefined) => XmlElement | undefined | false,
  ): Promise<boolean>;
}
