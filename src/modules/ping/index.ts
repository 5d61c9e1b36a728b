/**
 * XMPP Ping (XEP-0199): the server answers pings to its domain and, on an
 * account's behalf, to the account's bare JID. A ping to someone else's bare
 * JID is answered only to those allowed to see that account's presence, so
 * pings cannot be used to find out which accounts exist (RFC 6121 §8.5.1).
 */
import { StanzaError } from "../../core/errors.js";
import { defineModule } from "../../core/module.js";
import { NS_PING } from "../../core/xml/namespaces.js";
import { accountVisibleTo } from "../roster/api.js";

export default defineModule({
  name: "ping",
  description: "XMPP Ping for the server and its accounts (XEP-0199)",
  xeps: [{ xep: "0199", version: "2.0.1", status: "complete" }],
  setup(ctx) {
    const { storage, domain } = ctx;
    ctx.addFeature(NS_PING, "host");
    ctx.addFeature(NS_PING, "account");

    ctx.handleIq({ target: "both", type: "get", xmlns: NS_PING }, async ({ payload, from, to }) => {
      if (payload.name !== "ping") throw new StanzaError("bad-request", "expected a <ping/> element");
      if (to.local !== "" && !(await accountVisibleTo(storage, domain, ctx.accountKey(to), from))) {
        throw new StanzaError("service-unavailable");
      }
    });
  },
});

export { NS_PING } from "../../core/xml/namespaces.js";
