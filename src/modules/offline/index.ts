/**
 * Offline message storage (XEP-0160): messages for accounts with no available
 * resource are stored with a XEP-0203 delay stamp, up to a per-account quota,
 * and delivered when a resource becomes available with non-negative priority. A stored
 * message carries the account's XEP-0359 stanza-id (given here unless the archive gave one).
 */
import { z } from "zod";
import type { StanzaEvent } from "../../core/events.js";
import { defineModule } from "../../core/module.js";
import type { XmlElement } from "../../core/xml/element.js";
import { x } from "../../core/xml/element.js";
import { NS_CHATSTATES, NS_DELAY, NS_HINTS } from "../../core/xml/namespaces.js";
import type { StanzaIdApi } from "../stanza-id/api.js";
import { parseStoredStanza } from "./stored.js";

/** XEP-0334 hints and XEP-0085: chat-state-only messages and no-store hints are not kept. */
export function worthStoring(stanza: XmlElement): boolean {
  const children = stanza.elements();
  if (
    children.some(
      (c) => c.attrs.xmlns === NS_HINTS && (c.name === "no-store" || c.name === "no-permanent-store"),
    )
  ) {
    return false;
  }
  if (children.some((c) => c.attrs.xmlns === NS_HINTS && c.name === "store")) return true;
  if (stanza.getChild("body")) return true;
  return children.some(
    (c) => c.attrs.xmlns !== NS_CHATSTATES && c.attrs.xmlns !== NS_HINTS && c.name !== "thread",
  );
}

/** XEP-0082 date-time without fractions, always UTC. */
export function xmppStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export default defineModule({
  name: "offline",
  description: "Stores messages for offline accounts and delivers them at login (XEP-0160, XEP-0203)",
  xeps: [
    { xep: "0160", version: "1.0.1", status: "complete" },
    { xep: "0203", version: "2.0", status: "complete" },
  ],
  dependencies: ["message"],
  options: z.object({
    /** Messages kept per account; further messages are bounced with service-unavailable. */
    quota: z.number().int().min(0).default(500),
  }),
  setup(ctx) {
    const { storage, domain, clock } = ctx;
    ctx.addFeature("msgoffline");

    ctx.hook("message/offline", async (ev: StanzaEvent) => {
      const type = ev.stanza.attrs.type ?? "normal";
      if (type !== "normal" && type !== "chat") return false;
      if (!worthStoring(ev.stanza)) return true; // dropped on purpose: nothing to deliver later
      const stored = ev.stanza.clone();
      // XEP-0359: a stored message carries the account's stable id (the archive's, when it archived it).
      const stanzaIds = ctx.api<StanzaIdApi>("stanza-id");
      const by = ev.to.bareString;
      if (stanzaIds && stanzaIds.stanzaIdOf(stored, by) === undefined) stanzaIds.assign(stored, by);
      stored.removeChildren("delay", NS_DELAY);
      stored.children.push(
        x("delay", { xmlns: NS_DELAY, from: domain, stamp: xmppStamp(clock.now()) }, "Offline Storage"),
      );
      return storage.offline.push(ev.to.local, stored.toString(), ctx.options.quota);
    });

    ctx.hook("session/available", async ({ session }) => {
      if (!session.username) return;
      const messages = await storage.offline.list(session.username);
      if (messages.length === 0) return;
      const delivered: number[] = [];
      for (const m of messages) {
        if (session.closed) break;
        const stanza = parseStoredStanza(m.stanza);
        if (stanza) session.send(stanza);
        else ctx.log.warn({ id: m.id, username: session.username }, "dropping an unreadable offline message");
        delivered.push(m.id);
      }
      await storage.offline.remove(session.username, delivered);
    });
  },
});
