/**
 * Presence (RFC 6121 §3 and §4): the subscription state machine with
 * pre-approval, presence broadcast with probes, directed presence, and
 * delivery of presence to local accounts. Subscription stanzas and probes for
 * local accounts are handled through the `presence/bare|full` events whatever
 * server they come from; what local users send leaves through the router.
 */
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import type { StanzaEvent } from "../../core/events.js";
import { defineModule } from "../../core/module.js";
import { x } from "../../core/xml/element.js";
import { NS_PRE_APPROVAL } from "../../core/xml/namespaces.js";
import type { RosterApi } from "../roster/api.js";
import { PresenceBroker } from "./broadcast.js";
import { SUBSCRIPTION_TYPES, type SubscriptionType } from "./subscription.js";
import { SubscriptionProcessor } from "./subscriptions.js";

export default defineModule({
  name: "presence",
  description: "Presence subscriptions, pre-approval and presence broadcast (RFC 6121 §3, §4)",
  dependencies: ["roster"],
  options: z.object({
    /** Accounts whose last unavailable presence is remembered to answer probes while they are offline. */
    lastUnavailableCache: z.number().int().min(0).default(10_000),
  }),
  setup(ctx) {
    const roster = ctx.api<RosterApi>("roster");
    if (!roster) throw new Error("the roster module is not loaded");
    const broker = new PresenceBroker(ctx, roster, ctx.options);
    const subscriptions = new SubscriptionProcessor(ctx, roster, broker);
    // RFC 6121 §3.4: pre-approved subscription requests are supported.
    ctx.addStreamFeature({
      name: "pre-approval",
      stage: "post-auth",
      offer: () => x("sub", { xmlns: NS_PRE_APPROVAL }),
    });

    ctx.hook("pre-presence", async ({ stanza, session, to }) => {
      const type = stanza.attrs.type;
      if (type === undefined || type === "unavailable") {
        if (to === undefined) {
          if (type === undefined) await broker.available(session, stanza);
          else await broker.unavailable(session, stanza);
          return true;
        }
        await broker.directed(session, stanza, to);
        return false; // the router delivers it
      }
      if (SUBSCRIPTION_TYPES.has(type)) {
        if (to === undefined)
          throw new StanzaError("bad-request", "a subscription stanza needs a 'to' address");
        if (
          to.local !== "" &&
          ctx.router.isLocalDomain(to.domain) &&
          ctx.accountKey(to) === session.username
        ) {
          throw new StanzaError("not-allowed", "an account is always subscribed to itself");
        }
        await subscriptions.outbound(session.username!, type as SubscriptionType, stanza, to.bare());
        return true;
      }
      // Probes (discouraged from clients, §4.3) and errors are routed as they are; without 'to' they mean nothing.
      if (type === "probe" || type === "error") return to === undefined;
      throw new StanzaError("bad-request", `unknown presence type '${type}'`);
    });

    /** Subscriptions and probes concern the account, even when sent to one of its resources (§8.5.3.2.1). */
    const forAccount = async (ev: StanzaEvent): Promise<boolean> => {
      const type = ev.stanza.attrs.type;
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
        await subscriptions.inbound(type as SubscriptionType, ev.stanza, ev.from, ev.to.bare());
        return true;
      }
      if (type === "probe") {
        await broker.answerProbe(ev.from, ev.to.bare());
        return true;
      }
      return false;
    };

    ctx.hook("presence/bare", async (ev) => {
      if (await forAccount(ev)) return true;
      const type = ev.stanza.attrs.type;
      if (type === undefined || type === "unavailable" || type === "error")
        broker.deliverToAccount(ev.stanza, ctx.accountKey(ev.to));
      return true;
    });

    ctx.hook("presence/full", async (ev) => {
      if (await forAccount(ev)) return true;
      const type = ev.stanza.attrs.type;
      if (type === undefined || type === "unavailable" || type === "error")
        broker.deliverToResource(ev.stanza, ev.to);
      return true;
    });

    ctx.hook("session/ended", async ({ session }) => {
      if (!session.jid || !session.username) return;
      if (session.presence !== undefined || session.directedPresence.size > 0)
        await broker.unavailable(session);
    });

    ctx.hook("account/deleted", ({ username }) => {
      broker.forget(username);
    });
  },
});

export { NS_PRE_APPROVAL } from "../../core/xml/namespaces.js";
