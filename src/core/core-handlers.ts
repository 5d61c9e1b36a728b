/**
 * The few stanza rules that belong to the core rather than to a feature module:
 * IQ dispatch to registered handlers, delivery of IQs to full JIDs, and the
 * legacy session-establishment IQ (RFC 3921 §3, kept for old clients).
 */

import { StanzaError } from "./errors.js";
import type { StanzaEvent } from "./events.js";
import { type IqTarget, iqPayload } from "./iq.js";
import type { CoreServices } from "./services.js";
import { type XmlElement, x } from "./xml/element.js";
import { NS_SESSION } from "./xml/namespaces.js";

export function installCoreHandlers(svc: CoreServices): void {
  const { hooks, iq, router, sessions } = svc;

  const dispatch = (target: IqTarget) => (ev: StanzaEvent) => {
    const { stanza } = ev;
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") {
      if (type === "result" || type === "error") {
        // A reply to an IQ the server sent (Router.request), from the domain or on behalf of
        // an account (its bare JID); otherwise nothing waits for it.
        router.resolveResponse(stanza, ev.to);
        return true;
      }
      throw new StanzaError("bad-request", "IQ type must be get, set, result or error");
    }
    const payload = iqPayload(ev);
    const handler = iq.find(target, type, payload.attrs.xmlns);
    if (!handler) return false;
    let replied = false;
    const answer = (result: XmlElement | undefined | void) => {
      if (replied) return;
      replied = true;
      const reply = x("iq", {
        type: "result",
        id: stanza.attrs.id,
        from: ev.to.toString(),
        to: ev.from.toString(),
      });
      if (result) reply.children.push(result);
      // Replies to a local client skip the hooks: they go straight back to the session that asked.
      if (ev.origin && !ev.origin.closed) {
        reply.attrs.from = stanza.attrs.to === undefined ? undefined : reply.attrs.from;
        ev.origin.send(reply);
      } else return router.deliver(reply, ev.to, ev.from);
    };
    // Once the result is out, a later failure cannot become a second answer.
    const failedAfterReply = (err: unknown) => {
      if (!replied) throw err;
      svc.log.error({ err, id: stanza.attrs.id }, "an IQ handler failed after its result was sent");
    };
    let r: ReturnType<typeof handler>;
    try {
      r = handler({
        stanza,
        payload,
        from: ev.from,
        to: ev.to,
        ...(ev.origin ? { origin: ev.origin } : {}),
        reply: (result) => {
          const sent = answer(result);
          if (sent) sent.catch((err: unknown) => svc.log.error({ err }, "delivering an IQ result failed"));
        },
      });
    } catch (err) {
      failedAfterReply(err);
      return true;
    }
    if (r instanceof Promise) return r.then(answer, failedAfterReply).then(() => true);
    answer(r);
    return true;
  };
  hooks.on("iq/host", dispatch("host"));
  hooks.on("iq/bare", dispatch("bare"));

  hooks.on("iq/full", (ev) => {
    const session = sessions.get(ev.to.local, ev.to.resource, ev.to.domain);
    if (session && !session.closed) {
      session.send(ev.stanza);
      return true;
    }
    const type = ev.stanza.attrs.type;
    if (type === "get" || type === "set") throw new StanzaError("service-unavailable");
    return true;
  });

  iq.register({ target: "bare", type: "set", xmlns: NS_SESSION }, () => undefined);
}
