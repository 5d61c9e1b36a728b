/**
 * Offline message storage (XEP-0160): messages for accounts with no available
 * resource are stored with a XEP-0203 delay stamp, up to a per-account quota,
 * and delivered when a resource becomes available with non-negative priority. A stored
 * message carries the account's XEP-0359 stanza-id (given here unless the archive gave one).
 * A message handed to a session with stream management (XEP-0198) leaves storage only
 * when the client acknowledges it; without stream management, once it is written to the
 * connection (a connection that dies before the client read it loses it).
 */
import { z } from "zod";
import { defineModule } from "../../core/module.js";
import type { ClientSession } from "../../core/session.js";
import type { XmlElement } from "../../core/xml/element.js";
import { x } from "../../core/xml/element.js";
import { messageType } from "../../core/xml/message-type.js";
import { NS_CHATSTATES, NS_DELAY, NS_HINTS } from "../../core/xml/namespaces.js";
import { storageHint } from "../../core/xml/storage-hints.js";
import type { OfflineMessageEvent } from "../message/index.js";
import type { StanzaIdApi } from "../stanza-id/api.js";
import type { StreamManagementApi } from "../stream-management/api.js";
import { parseStoredStanza } from "./stored.js";

/** XEP-0334 hints and XEP-0085: chat-state-only messages and no-store hints are not kept. */
export function worthStoring(stanza: XmlElement): boolean {
  const hint = storageHint(stanza);
  if (hint !== undefined) return hint === "store";
  const children = stanza.elements();
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
    const { storage, clock } = ctx;
    ctx.addFeature("msgoffline");

    ctx.hook("message/offline", async (ev: OfflineMessageEvent) => {
      const type = messageType(ev.stanza);
      if (type !== "normal" && type !== "chat") return false;
      if (!worthStoring(ev.stanza)) return true; // dropped on purpose: nothing to deliver later
      const stored = ev.stanza.clone();
      // XEP-0359: a stored message carries the account's stable id (the archive's, when it archived it).
      const stanzaIds = ctx.api<StanzaIdApi>("stanza-id");
      const by = ev.to.bareString;
      if (stanzaIds && stanzaIds.stanzaIdOf(stored, by) === undefined) stanzaIds.assign(stored, by);
      stored.removeChildren("delay", NS_DELAY);
      stored.children.push(
        x(
          "delay",
          { xmlns: NS_DELAY, from: ev.to.domain, stamp: xmppStamp(ev.delayedSince ?? clock.now()) },
          "Offline Storage",
        ),
      );
      return storage.offline.push(ctx.accountKey(ev.to), stored.toString(), ctx.options.quota);
    });

    /**
     * Messages handed to a session with stream management stay stored until its client
     * acknowledges them (XEP-0198): ids sent and not yet settled, by account, so a second
     * flush (another resource, a new initial presence) does not send them twice.
     */
    const inFlight = new Map<string, Set<number>>();
    /** Removals and re-deliveries still running (awaited at unload). */
    const pending = new Set<Promise<unknown>>();
    const track = (p: Promise<unknown>) => {
      const tracked = p
        .catch((err) => ctx.log.error({ err }, "offline delivery bookkeeping failed"))
        .finally(() => pending.delete(tracked));
      pending.add(tracked);
    };

    const settle = (session: ClientSession, username: string, id: number, acked: boolean) => {
      const flying = inFlight.get(username);
      const release = () => {
        flying?.delete(id);
        if (flying?.size === 0) inFlight.delete(username);
      };
      if (!acked) {
        // Still stored: another available resource gets it now, else the next one to come.
        release();
        redeliver(session, username);
        return;
      }
      track(storage.offline.remove(username, [id]).finally(release));
    };

    /** Accounts with a re-delivery scheduled (one per account, however many messages came back). */
    const redeliveries = new Set<string>();
    const redeliver = (ended: ClientSession, username: string) => {
      if (redeliveries.has(username)) return;
      redeliveries.add(username);
      setImmediate(() => {
        redeliveries.delete(username);
        const target = ctx.sessions.messageTargets(username).find((s) => s !== ended && !s.closed);
        if (target) track(flush(target));
      });
    };

    const flush = async (session: ClientSession): Promise<void> => {
      const username = session.username;
      if (!username) return;
      const messages = await storage.offline.list(username);
      if (messages.length === 0) return;
      const sm = ctx.api<StreamManagementApi>("stream-management");
      let flying = inFlight.get(username);
      const delivered: number[] = [];
      for (const m of messages) {
        if (session.closed) break;
        if (flying?.has(m.id)) continue;
        if (!flying) {
          flying = new Set();
          inFlight.set(username, flying);
        }
        flying.add(m.id);
        const id = m.id;
        const stanza = parseStoredStanza(m.stanza);
        if (!stanza) {
          ctx.log.warn({ id, username }, "dropping an unreadable offline message");
          delivered.push(id);
          continue;
        }
        if (!sm?.sendAcknowledged(session, stanza, (acked) => settle(session, username, id, acked))) {
          // Without stream management the message counts as delivered once written.
          session.send(stanza);
          delivered.push(id);
        }
        // A backlog larger than the send buffer goes out as fast as the client reads it.
        await session.whenWritable();
      }
      if (delivered.length === 0) return;
      try {
        await storage.offline.remove(username, delivered);
      } finally {
        // In flight until removed, so a concurrent flush does not send them again.
        const current = inFlight.get(username);
        for (const id of delivered) current?.delete(id);
        if (current?.size === 0) inFlight.delete(username);
      }
    };

    ctx.hook("session/available", ({ session }) => flush(session));

    ctx.onUnload(async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    });
  },
});
