/**
 * The roster of each account: storage access serialised per account, the size
 * limit, roster pushes to interested resources (RFC 6121 §2.1.6) and removal
 * with cancellation of the subscriptions (RFC 6121 §2.5.2). Published as
 * ctx.api("roster") (its type is in api.ts) for the presence module and any other user
 * of rosters.
 */
import { StanzaError } from "../../core/errors.js";
import { accountJid, type Jid } from "../../core/jid.js";
import { KeyedLock } from "../../core/keyed-lock.js";
import type { Router } from "../../core/router.js";
import type { SessionDirectory } from "../../core/session-directory.js";
import type { RosterItem, Storage } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import type { RosterApi } from "./api.js";
import { itemElement, NS_ROSTER, removedItemElement } from "./items.js";

/** `username` below is an account key (accountKey()). */
export interface RosterServices {
  /** The primary domain. */
  domain: string;
  storage: Storage;
  sessions: SessionDirectory;
  router: Router;
}

export class RosterService implements RosterApi {
  private readonly lock = new KeyedLock();
  private pushSeq = 0;

  constructor(
    private readonly svc: RosterServices,
    readonly maxItems: number,
  ) {}

  exclusive<T>(username: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(username, fn);
  }

  get(username: string): Promise<{ version: number; items: RosterItem[] }> {
    return this.svc.storage.roster.get(username);
  }

  getItem(username: string, contact: string): Promise<RosterItem | undefined> {
    return this.svc.storage.roster.getItem(username, contact);
  }

  /** `beforePush` runs once the item is stored, before the push (the roster set's result goes first). */
  async store(username: string, item: RosterItem, beforePush?: () => void): Promise<number> {
    const roster = this.svc.storage.roster;
    if (!(await roster.getItem(username, item.jid))) {
      const { items } = await roster.get(username);
      if (items.length >= this.maxItems) {
        throw new StanzaError("not-allowed", `the roster is full (at most ${this.maxItems} items)`);
      }
    }
    const version = await roster.setItem(username, item);
    beforePush?.();
    this.pushItem(username, item, version);
    return version;
  }

  pushItem(
    username: string,
    item: RosterItem | { jid: string; subscription: "remove" },
    version: number,
  ): void {
    const el =
      item.subscription === "remove" ? removedItemElement(item.jid) : itemElement(item as RosterItem);
    for (const session of this.svc.sessions.interestedOf(username)) {
      const push = x(
        "iq",
        { type: "set", id: `push${++this.pushSeq}`, to: session.jid!.toString() },
        x("query", { xmlns: NS_ROSTER, ver: String(version) }, el.clone()),
      );
      session.send(push);
    }
  }

  async removeContact(username: string, contact: Jid, beforePush?: () => void): Promise<boolean> {
    const jid = contact.bareString;
    const removed = await this.exclusive(username, async () => {
      const roster = this.svc.storage.roster;
      const item = await roster.getItem(username, jid);
      if (!item) return undefined;
      const pendingIn = (await roster.getPending(username)).some((p) => p.from === jid);
      if (pendingIn) await roster.removePending(username, jid);
      const version = await roster.removeItem(username, jid);
      beforePush?.();
      this.pushItem(username, { jid, subscription: "remove" }, version);
      return { item, pendingIn };
    });
    if (!removed) return false;
    await this.cancelSubscriptions(username, contact, removed.item, removed.pendingIn);
    return true;
  }

  /**
   * RFC 6121 §2.5.2: unsubscribe if the user was subscribed to the contact (or asked to be),
   * unsubscribed if the contact was subscribed to the user (or asked to be); a contact that
   * loses its subscription also gets unavailable presence from the user's resources (§3.2.2).
   */
  private async cancelSubscriptions(
    username: string,
    contact: Jid,
    item: RosterItem,
    pendingIn: boolean,
  ): Promise<void> {
    const user = accountJid(username, this.svc.domain);
    const hadTo = item.subscription === "to" || item.subscription === "both";
    const hadFrom = item.subscription === "from" || item.subscription === "both";
    const out: { stanza: XmlElement; from: Jid }[] = [];
    const subscription = (type: string) => ({
      stanza: x("presence", { type, from: user.toString(), to: contact.bareString }),
      from: user,
    });
    if (hadTo || item.ask) out.push(subscription("unsubscribe"));
    if (hadFrom || pendingIn) out.push(subscription("unsubscribed"));
    if (hadFrom) {
      for (const s of this.svc.sessions.availableOf(username)) {
        out.push({
          stanza: x("presence", { type: "unavailable", from: s.jid!.toString(), to: contact.bareString }),
          from: s.jid!,
        });
      }
    }
    for (const { stanza, from } of out) await this.svc.router.deliver(stanza, from, contact.bare());
  }
}
