/**
 * Message carbons (XEP-0280): every device of an account sees both sides of its
 * conversations. A resource turns copies on or off for itself (an IQ set with <enable/> or
 * <disable/>, kept as typed per-session state, gone with the session). Then:
 *
 * - a message an account's client sends (the `pre-message` hook) is copied, wrapped in
 *   <sent/>, to the account's other carbons-enabled resources (§8); a message to the
 *   sender's own account is left to the receiving side, so no resource gets it twice;
 * - a message delivered to an account (`message/bare`, `message/full`, before delivery)
 *   is copied, wrapped in <received/>, to each carbons-enabled resource that does not get
 *   the original under RFC 6121 (the message module says which do), never to the resource
 *   that sent it (§7).
 *
 * Only eligible messages are copied (rules.ts, §6.1); <private/> and <no-copy/> keep a
 * message to its addressee (§9). A client binding with Bind 2 (XEP-0386) may send the
 * <enable/> inside its <bind/> request instead of an IQ. Copies go straight to the sessions, so a copy that cannot
 * be delivered never bounces to the original sender (§10.3). Copies carry the stanza-id the
 * archive gave the message (XEP-0313 §3.5), since the archive runs first.
 */
import { StanzaError } from "../../core/errors.js";
import type { ClientStanzaEvent, StanzaEvent } from "../../core/events.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import type { ClientSession } from "../../core/session.js";
import type { XmlElement } from "../../core/xml/element.js";
import { NS_CARBONS } from "../../core/xml/namespaces.js";
import type { MessageApi } from "../message/api.js";
import { type CarbonDirection, carbonCopy, isEligible } from "./rules.js";

/** After the stanza-id rules (90) and the archive (20), before delivery (-10). */
const CARBONS_PRIORITY = 10;

export default defineModule({
  name: "carbons",
  description: "Copies of every 1:1 conversation on each of an account's devices (XEP-0280)",
  xeps: [{ xep: "0280", version: "1.0.1", status: "complete" }],
  dependencies: ["message"],
  setup(ctx) {
    const { sessions } = ctx;
    const enabled = ctx.sessionState<true>();
    const message = ctx.api<MessageApi>("message");
    if (!message) throw new Error("the message module publishes no API");

    ctx.addFeature(NS_CARBONS);

    // XEP-0386: a client binding with Bind 2 may enable carbons inside its <bind/>.
    ctx.addStreamFeature({
      name: "carbons",
      stage: "post-auth",
      offer: () => undefined,
      bind2: {
        var: NS_CARBONS,
        elements: ["enable"],
        enable: (session) => {
          enabled.set(session, true);
          return undefined;
        },
      },
    });

    ctx.handleIq({ target: "both", type: "set", xmlns: NS_CARBONS }, ({ payload, origin, from, to }) => {
      // §4.1, §5.1: only a client of this server, for itself (to its own account or the server).
      const own = to.local === "" ? to.domain === from.domain : to.bareString === from.bareString;
      if (!origin || origin.jid === undefined || !origin.jid.equals(from) || !own)
        throw new StanzaError("not-allowed", "carbons are set by a client of this server for itself");
      if (payload.name === "enable") enabled.set(origin, true);
      else if (payload.name === "disable") enabled.delete(origin);
      else throw new StanzaError("bad-request", `<${payload.name}/> is neither <enable/> nor <disable/>`);
      // §10.1: enabling twice, or disabling twice, is no error.
      return undefined;
    });

    /** Sends copies to the account's carbons-enabled resources, except `skip`. */
    const copyTo = (
      account: Jid,
      original: XmlElement,
      direction: CarbonDirection,
      skip: (s: ClientSession) => boolean,
    ): void => {
      const resources = sessions.resourcesOf(account.local, account.domain);
      if (resources.length < 2 && direction === "sent") return;
      for (const s of resources) {
        if (s.closed || enabled.get(s) !== true || s.jid === undefined || skip(s)) continue;
        s.send(carbonCopy(original, direction, account.bareString, s.jid.toString()));
      }
    };

    ctx.hook(
      "pre-message",
      ({ stanza, session, from, to }: ClientStanzaEvent) => {
        // To the sender's own account: the receiving side copies it (once).
        if (to === undefined || (to.local === from.local && to.domain === from.domain)) return false;
        if (!isEligible(stanza, "sent")) return false;
        copyTo(from, stanza, "sent", (s) => s === session);
        return false;
      },
      CARBONS_PRIORITY,
    );

    const received = ({ stanza, to, origin }: StanzaEvent): false => {
      if (to.local === "" || !isEligible(stanza, "received")) return false;
      if (!sessions.isOnline(to.local, to.domain)) return false;
      const recipients = message.recipientsOf(to);
      copyTo(to, stanza, "received", (s) => s === origin || recipients.includes(s));
      return false;
    };
    ctx.hook("message/bare", received, CARBONS_PRIORITY);
    ctx.hook("message/full", received, CARBONS_PRIORITY);
  },
});
