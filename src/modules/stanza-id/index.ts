/**
 * Stable and unique stanza ids (XEP-0359). Ids are given by the modules that store a
 * message for an account (offline storage, the archive) through this module's API, with
 * `by` = the account's bare JID. This module makes those ids trustworthy (§3 rule 2, §7):
 *
 * - a message an account's client sends loses every `<stanza-id/>` claiming that account,
 *   on the way in (a client cannot forge an id its other devices would trust) and on the
 *   way out (the id the sender's archive gave it, which its carbons copies carry, stays
 *   with its owner: XEP-0313 §3.5);
 * - a message for an account, from anywhere, loses every `<stanza-id/>` claiming that
 *   account before any module handles it.
 *
 * `<origin-id/>` and ids other entities set are left alone (§3 rule 3).
 */
import type { ClientStanzaEvent } from "../../core/events.js";
import { defineModule } from "../../core/module.js";
import { NS_SID } from "../../core/xml/namespaces.js";
import { assignStanzaId, type StanzaIdApi, stanzaIdOf, stripStanzaIds } from "./api.js";

/** After blocking (100), before the modules that archive, copy or deliver messages. */
const STRIP_INBOUND_PRIORITY = 90;
/** Last of all before a client's message is routed. */
const STRIP_OUTBOUND_PRIORITY = -1000;

export default defineModule({
  name: "stanza-id",
  description: "Stable and unique stanza ids on stored and archived messages (XEP-0359)",
  xeps: [{ xep: "0359", version: "0.7.0", status: "complete" }],
  setup(ctx) {
    ctx.addFeature(NS_SID, "account");

    /** A client's message: no `<stanza-id/>` claiming the sender's account goes in or out. */
    const stripSender = ({ stanza, session }: ClientStanzaEvent): false => {
      if (session.jid) stripStanzaIds(stanza, session.jid.bareString);
      return false;
    };
    ctx.hook("pre-message", stripSender, STRIP_INBOUND_PRIORITY);
    ctx.hook("pre-message", stripSender, STRIP_OUTBOUND_PRIORITY);
    for (const event of ["message/bare", "message/full"] as const) {
      ctx.hook(
        event,
        ({ stanza, to }) => {
          if (to.local !== "") stripStanzaIds(stanza, to.bareString);
          return false;
        },
        STRIP_INBOUND_PRIORITY,
      );
    }

    ctx.provide<StanzaIdApi>({ assign: assignStanzaId, stanzaIdOf });
  },
});
