/**
 * Server-side processing of subscription stanzas (RFC 6121 §3): the user's
 * server for stanzas its clients send (outbound), the contact's server for
 * stanzas addressed to its accounts (inbound, whether the sender is local or
 * remote). State lives in the roster (subscription, ask, approved) and in the
 * pending-subscription store ("Pending In"); every change of a roster item is
 * pushed to the interested resources.
 */
import type { Jid } from "../../core/jid.js";
import type { RosterItem } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import type { RosterApi } from "../roster/api.js";
import type { PresenceBroker, PresenceServices } from "./broadcast.js";
import {
  hasTo,
  inbound,
  NO_SUBSCRIPTION,
  outbound,
  type PresenceEffect,
  type SubscriptionState,
  type SubscriptionType,
} from "./subscription.js";

export class SubscriptionProcessor {
  constructor(
    private readonly svc: PresenceServices,
    private readonly roster: RosterApi,
    private readonly broker: PresenceBroker,
  ) {}

  /** A subscription stanza from a client of `username` to `contact` (a bare JID). */
  async outbound(username: string, type: SubscriptionType, stanza: XmlElement, contact: Jid): Promise<void> {
    const user = this.svc.accountJid(username);
    const jid = contact.bareString;
    const result = await this.roster.exclusive(username, async () => {
      const { item, state } = await this.load(username, jid);
      const r = outbound(type, state);
      await this.save(username, jid, item, state, r.next);
      return r;
    });
    if (result.route) {
      // §3.1.2: the server stamps the bare JID; subscriptions are between accounts, not resources.
      const out = stanza.clone();
      out.attrs.from = user.toString();
      out.attrs.to = jid;
      await this.svc.router.deliver(out, user, contact);
    }
    if (result.presence) await this.broker.sendPresenceOf(username, contact, result.presence);
    // An approval while the user is subscribed to the contact too: the contact's presence is
    // probed again (from the bare JID: every available resource gets it), as Prosody does
    // (its issue 1121), so that a client that lost track of the contact during the exchange
    // shows it again. RFC 6121 lets a server probe whenever it needs the contact's presence.
    if (
      type === "subscribed" &&
      result.route &&
      hasTo(result.next.subscription) &&
      this.svc.sessions.availableOf(username).length > 0
    ) {
      await this.broker.probe(user, contact);
    }
  }

  /** A subscription stanza from `from` (any domain) to the local account `to`. */
  async inbound(type: SubscriptionType, stanza: XmlElement, from: Jid, to: Jid): Promise<void> {
    const username = this.svc.accountKey(to);
    const user = to.bare();
    const contact = from.bare();
    if (!(await this.exists(username))) {
      // A request to nobody is refused the way a user would refuse it; everything else is dropped.
      if (type === "subscribe") await this.reply(user, contact, "unsubscribed");
      return;
    }
    const delivered = stanza.clone();
    delivered.attrs.from = contact.toString();
    delivered.attrs.to = user.toString();
    let effect: PresenceEffect | undefined;
    let reply: "subscribed" | undefined;
    await this.roster.exclusive(username, async () => {
      const { item, state } = await this.load(username, contact.bareString);
      const r = inbound(type, state);
      // §3.1.3: a request goes to every available resource, not only the most available one;
      // §3.1.6, §3.2.3, §3.3.3: approvals and cancellations go to the interested resources
      // (those that asked for the roster), whether or not they sent presence, and before the
      // roster push of the new state, which gives the clients its context.
      if (r.deliver) {
        const targets =
          type === "subscribe"
            ? this.svc.sessions.availableOf(username)
            : this.svc.sessions.interestedOf(username);
        for (const s of targets) s.send(delivered);
      }
      await this.save(username, contact.bareString, item, state, r.next, delivered);
      effect = r.presence;
      reply = r.reply;
    });
    if (reply) await this.reply(user, contact, reply);
    // A request that waits for the user's answer is acknowledged with unavailable presence,
    // as Prosody does: the requester's client shows the contact as offline until approved,
    // and learns nothing of the user's real presence (RFC 6121 neither asks for this nor
    // forbids it; scripts written against Prosody expect it).
    else if (type === "subscribe") await this.reply(user, contact, "unavailable");
    if (effect) await this.broker.sendPresenceOf(username, contact, effect);
  }

  /** Presence from the account's bare JID to the contact's, on the account's behalf. */
  private async reply(
    user: Jid,
    contact: Jid,
    type: "subscribed" | "unsubscribed" | "unavailable",
  ): Promise<void> {
    const stanza = x("presence", { type, from: user.toString(), to: contact.toString() });
    await this.svc.router.deliver(stanza, user, contact);
  }

  private async exists(username: string): Promise<boolean> {
    return this.svc.sessions.isOnline(username) || (await this.svc.storage.accounts.exists(username));
  }

  private async load(
    username: string,
    contact: string,
  ): Promise<{ item: RosterItem | undefined; state: SubscriptionState }> {
    const item = await this.roster.getItem(username, contact);
    const pendingIn = (await this.svc.storage.roster.getPending(username)).some((p) => p.from === contact);
    const state: SubscriptionState = item
      ? { subscription: item.subscription, ask: item.ask, approved: item.approved, pendingIn }
      : { ...NO_SUBSCRIPTION, pendingIn };
    return { item, state };
  }

  /** Stores the new state: the roster item (created when needed, then pushed) and the pending request. */
  private async save(
    username: string,
    contact: string,
    item: RosterItem | undefined,
    before: SubscriptionState,
    after: SubscriptionState,
    request?: XmlElement,
  ): Promise<void> {
    if (
      before.subscription !== after.subscription ||
      before.ask !== after.ask ||
      before.approved !== after.approved
    ) {
      const base: RosterItem = item ?? {
        jid: contact,
        subscription: "none",
        ask: false,
        approved: false,
        groups: [],
      };
      await this.roster.store(username, {
        ...base,
        subscription: after.subscription,
        ask: after.ask,
        approved: after.approved,
      });
    }
    if (before.pendingIn !== after.pendingIn) {
      if (after.pendingIn && request) {
        await this.svc.storage.roster.addPending(username, { from: contact, stanza: request.toString() });
      } else if (!after.pendingIn) {
        await this.svc.storage.roster.removePending(username, contact);
      }
    }
  }
}
