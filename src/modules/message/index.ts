/**
 * Message routing rules of RFC 6121 §8.5 for local accounts: full JIDs,
 * bare JIDs (highest-priority available resources), and messages for accounts
 * with no available resource (handed to offline storage through the
 * `message/offline` event, or bounced).
 */

import { StanzaError } from "../../core/errors.js";
import type { StanzaEvent } from "../../core/events.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { type ClientSession, isAvailable } from "../../core/session.js";
import { messageType } from "../../core/xml/message-type.js";
import { stripStanzaIds } from "../stanza-id/api.js";
import type { MessageApi } from "./api.js";

/** Delivery runs after every module that looks at, archives or copies a message (higher priorities). */
const MESSAGE_DELIVERY_PRIORITY = -10;

/** A message for offline storage. */
export interface OfflineMessageEvent extends StanzaEvent {
  /**
   * When the server first tried to deliver it, for a message that comes back later (stream
   * management re-queues what a client never acknowledged): its XEP-0203 stamp. Default: now.
   */
  delayedSince?: number;
}

declare module "../../core/events.js" {
  interface ServerEvents {
    /** A message for an account with no available resource; offline storage claims it (RFC 6121 §8.5.2.2). */
    "message/offline": OfflineMessageEvent;
  }
}

export default defineModule({
  name: "message",
  description: "Delivers messages to local accounts and resources (RFC 6121 §8.5)",
  setup(ctx) {
    const { sessions, storage } = ctx;

    /** RFC 6121 §8.5.2: bare JID of a local account. */
    const toBare = (ev: StanzaEvent): boolean | Promise<boolean> => {
      const type = messageType(ev.stanza);
      if (type === "error") return true; // §8.5.2.1.1: silently ignored
      if (type === "groupchat") throw new StanzaError("service-unavailable");
      const username = ctx.accountKey(ev.to);
      if (type === "headline") {
        // Headlines go to every available non-negative resource, and nowhere when there is none.
        for (const s of sessions.availableOf(username)) if (s.priority >= 0) s.send(ev.stanza);
        return true;
      }
      const targets = sessions.messageTargets(username);
      if (targets.length > 0) {
        for (const s of targets) s.send(ev.stanza);
        return true;
      }
      return offline(ev);
    };

    const offline = async (ev: StanzaEvent): Promise<boolean> => {
      // A bounce carries the message back: not the id the recipient's archive gave it (or
      // would have, for an account that does not exist).
      const bounce = (error: StanzaError) => {
        stripStanzaIds(ev.stanza, ev.to.bareString);
        return error;
      };
      if (!(await storage.accounts.exists(ctx.accountKey(ev.to))))
        throw bounce(new StanzaError("service-unavailable"));
      if (await ctx.fire("message/offline", ev)) return true;
      throw bounce(new StanzaError("service-unavailable", "the recipient is offline"));
    };

    const boundSession = (to: Jid): ClientSession | undefined => {
      const session = sessions.get(to.local, to.resource, to.domain);
      return session && !session.closed && session.bound ? session : undefined;
    };

    ctx.hook("message/bare", toBare, MESSAGE_DELIVERY_PRIORITY);

    /** RFC 6121 §8.5.3: full JID. */
    ctx.hook(
      "message/full",
      (ev) => {
        const session = boundSession(ev.to);
        if (session) {
          session.send(ev.stanza);
          return true;
        }
        const type = messageType(ev.stanza);
        if (type === "error" || type === "headline") return true;
        if (type === "groupchat") throw new StanzaError("service-unavailable");
        // §8.5.3.2.1: normal and chat are treated as if addressed to the bare JID.
        return toBare(ev);
      },
      MESSAGE_DELIVERY_PRIORITY,
    );

    // For modules that need to know where a message is delivered live (carbons).
    ctx.provide<MessageApi>({
      isAvailable,
      recipientsOf(to) {
        const session = to.resource === "" ? undefined : boundSession(to);
        return session ? [session] : sessions.messageTargets(to.local, to.domain);
      },
    });
  },
});
