/**
 * Blocking Command (XEP-0191).
 * - IQs (own account only): get the blocklist, block JIDs, unblock some or all.
 *   Every change is pushed to the account's resources that asked for the list.
 * - Inbound (hooks ahead of delivery): from a JID the recipient blocks,
 *   presences and IQ responses are dropped, messages and IQ requests answered
 *   with service-unavailable, so the user appears offline. Presence a user
 *   sends (e.g. broadcast by the server) to a JID they block is dropped too.
 * - Outbound (pre-hooks): a stanza a client sends to a JID it blocks is refused
 *   with not-acceptable + <blocked xmlns='urn:xmpp:blocking:errors'/>.
 * - Blocking sends unavailable presence from each available resource to the
 *   newly blocked JIDs that may see the user's presence (roster "from"/"both",
 *   or a directed presence); unblocking sends them the current presence.
 * An account's own resources are never blocked from one another, and errors and IQ results
 * from the account's own server (answers to its requests) always reach it.
 */
import { z } from "zod";
import { errorReply, StanzaError } from "../../core/errors.js";
import type { ClientStanzaEvent, StanzaEvent } from "../../core/events.js";
import type { HookResult } from "../../core/hooks.js";
import type { IqRequest } from "../../core/iq.js";
import { type Jid, JidError, parseJid, tryParseJid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_BLOCKING, NS_BLOCKING_ERRORS } from "../../core/xml/namespaces.js";
import { isSelf } from "../roster/api.js";
import { BlocklistCache } from "./cache.js";
import { isListed } from "./match.js";

/** Published as ctx.api("blocking"), for modules that must honour blocklists (e.g. presence broadcast). */
export interface BlockingApi {
  /** Does the local account block `jid`? Synchronous when the account's list is cached. */
  isBlocked(username: string, jid: Jid): boolean | Promise<boolean>;
}

type Maybe<T> = T | Promise<T>;

/** Continues with `f` synchronously when `v` is not a promise (the common, cached case). */
function then<T, R>(v: Maybe<T>, f: (t: T) => Maybe<R>): Maybe<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

function blockedError(): StanzaError {
  return new StanzaError("not-acceptable", "You have blocked this JID", {
    type: "cancel",
    appCondition: x("blocked", { xmlns: NS_BLOCKING_ERRORS }),
  });
}

/** The normalised JIDs of the <item/> children of <block/> or <unblock/>. */
function itemJids(payload: XmlElement): string[] {
  const jids = new Set<string>();
  for (const el of payload.elements()) {
    if (el.name !== "item") throw new StanzaError("bad-request", `unexpected <${el.name}/>`);
    const raw = el.attrs.jid;
    if (raw === undefined) throw new StanzaError("bad-request", "an <item/> needs a 'jid' attribute");
    try {
      jids.add(parseJid(raw).toString());
    } catch (err) {
      if (err instanceof JidError) throw new StanzaError("jid-malformed", `${raw}: ${err.message}`);
      throw err;
    }
  }
  return [...jids];
}

export default defineModule({
  name: "blocking",
  description: "Blocking of communication with JIDs (XEP-0191)",
  xeps: [{ xep: "0191", version: "1.3", status: "complete" }],
  options: z.object({
    /** Blocked JIDs kept per account. */
    maxItems: z.number().int().min(1).default(1000),
    /** Accounts whose blocklist stays in memory. */
    cacheSize: z.number().int().min(1).default(10_000),
  }),
  setup(ctx) {
    const { storage, sessions, router, domain } = ctx;
    const cache = new BlocklistCache(storage.blocklist, ctx.options.cacheSize);
    let pushSeq = 0;
    ctx.addFeature(NS_BLOCKING, "host");

    const isBlocked = (username: string, jid: Jid): Maybe<boolean> =>
      then(cache.get(username), (list) => isListed(list, jid));

    const ownRequest = (req: IqRequest, name: string | string[]): void => {
      const names = Array.isArray(name) ? name : [name];
      if (!names.includes(req.payload.name))
        throw new StanzaError("bad-request", `unexpected <${req.payload.name}/>`);
      if (!isSelf(ctx.accountKey(req.to), domain, req.from))
        throw new StanzaError("forbidden", "a blocklist is its owner's only");
    };

    /**
     * Sends a block/unblock push to each resource that asked for the blocklist (XEP-0191 §3.3, §3.4),
     * after the IQ result: the core sends that as a promise callback, which runs before setImmediate.
     */
    const push = (username: string, name: "block" | "unblock", jids: string[]): void => {
      setImmediate(() => {
        for (const s of sessions.resourcesOf(username)) {
          if (s.data.get(ctx.name) !== true || s.closed) continue;
          const payload = x(name, { xmlns: NS_BLOCKING }, ...jids.map((jid) => x("item", { jid })));
          s.send(x("iq", { type: "set", id: `blocking-push-${++pushSeq}`, to: s.jid!.toString() }, payload));
        }
      });
    };

    /**
     * Presence to the listed JIDs from each available resource of the account: "unavailable" when they
     * are being blocked, the current presence when unblocked. Only to JIDs that may receive the user's
     * presence: roster contacts with a "from" or "both" subscription, and (when blocking) the targets
     * of directed presence.
     */
    const notify = async (
      username: string,
      jids: string[],
      kind: "unavailable" | "current",
    ): Promise<void> => {
      const available = sessions.availableOf(username);
      if (available.length === 0 || jids.length === 0) return;
      const listed = new Set(jids);
      const blocked = jids.map((j) => parseJid(j));
      const rosterTargets = new Set<string>();
      for (const item of (await storage.roster.get(username)).items) {
        if (item.subscription !== "from" && item.subscription !== "both") continue;
        const contact = tryParseJid(item.jid);
        if (!contact) continue;
        for (const b of blocked) {
          // A full JID item gets presence at that resource only; a domain item reaches every contact there.
          if (b.bareString === contact.bareString) rosterTargets.add(b.toString());
          else if (b.isDomain && contact.domain === b.domain) rosterTargets.add(contact.toString());
        }
      }
      for (const s of available) {
        const targets = new Set(rosterTargets);
        if (kind === "unavailable") {
          for (const d of s.directedPresence) {
            const jid = tryParseJid(d);
            if (jid && isListed(listed, jid)) targets.add(d);
          }
        }
        for (const target of targets) {
          const to = tryParseJid(target);
          if (!to) continue;
          const stanza =
            kind === "unavailable" || !s.presence
              ? x("presence", { type: "unavailable" })
              : s.presence.clone();
          stanza.attrs.from = s.jid!.toString();
          stanza.attrs.to = target;
          await router.deliver(stanza, s.jid!, to);
        }
      }
    };

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_BLOCKING }, async (req) => {
      ownRequest(req, "blocklist");
      const list = await cache.get(ctx.accountKey(req.to));
      // This resource now gets pushes (XEP-0191 §3.3: "resources that have requested the blocklist").
      req.origin?.data.set(ctx.name, true);
      return x("blocklist", { xmlns: NS_BLOCKING }, ...[...list].sort().map((jid) => x("item", { jid })));
    });

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_BLOCKING }, async (req) => {
      ownRequest(req, ["block", "unblock"]);
      const username = ctx.accountKey(req.to);
      const jids = itemJids(req.payload);
      const list = await cache.get(username);

      if (req.payload.name === "block") {
        if (jids.length === 0) throw new StanzaError("bad-request", "<block/> needs at least one <item/>");
        const added = jids.filter((j) => !list.has(j));
        if (list.size + added.length > ctx.options.maxItems) {
          throw new StanzaError("not-acceptable", `at most ${ctx.options.maxItems} JIDs can be blocked`);
        }
        // Before the block takes effect, or the unavailable presence would itself be blocked.
        await notify(username, added, "unavailable");
        await storage.blocklist.add(username, added);
        for (const j of added) list.add(j);
        push(username, "block", jids);
        return;
      }

      const removed = jids.length === 0 ? [...list] : jids.filter((j) => list.has(j));
      await storage.blocklist.remove(username, jids.length === 0 ? undefined : removed);
      for (const j of removed) list.delete(j);
      push(username, "unblock", jids);
      await notify(username, removed, "current");
    });

    /**
     * An error, or an IQ result, from the account's own server: the answer to a request of the
     * user's (an IQ to their own account is answered from the domain when it fails). Blocking
     * the domain JID must not swallow it: RFC 6120 §8.2.3 wants every request answered.
     */
    const isOwnServerReply = (stanza: XmlElement, from: Jid, to: Jid): boolean =>
      from.local === "" &&
      from.resource === "" &&
      from.domain === to.domain &&
      (stanza.attrs.type === "error" || (stanza.name === "iq" && stanza.attrs.type === "result"));

    /** XEP-0191 §3.3: what the server does with a stanza from a JID the recipient blocks. */
    const refuseInbound = (stanza: XmlElement): true => {
      const type = stanza.attrs.type;
      if (stanza.name === "presence") return true;
      if (stanza.name === "iq" && type !== "get" && type !== "set") return true;
      throw new StanzaError("service-unavailable");
    };

    const inbound = (ev: StanzaEvent): Maybe<HookResult> => {
      const { stanza, from, to } = ev;
      if (from.local === to.local && from.domain === to.domain) return false;
      if (isOwnServerReply(stanza, from, to)) return false;
      return then(isBlocked(ctx.accountKey(to), from), (blocked) => {
        if (blocked) return refuseInbound(stanza);
        // Presence the server sends on behalf of a local user who blocks the recipient (e.g. a broadcast).
        if (stanza.name === "presence" && router.isLocalDomain(from.domain) && from.local !== "") {
          return isBlocked(ctx.accountKey(from), to);
        }
        return false;
      });
    };

    const outbound = (ev: ClientStanzaEvent): Maybe<HookResult> => {
      const { stanza, session, to } = ev;
      if (to === undefined || !session.username || isSelf(session.username, domain, to)) return false;
      return then(isBlocked(session.username, to), (blocked) => {
        if (!blocked) return false;
        // Straight to the session: routed, this error "from" the blocked JID would itself be blocked.
        const reply = errorReply(stanza, blockedError());
        if (reply) session.send(reply);
        return true;
      });
    };

    // Ahead of delivery and of every other module's handling.
    const PRIORITY = 100;
    for (const event of [
      "message/bare",
      "message/full",
      "presence/bare",
      "presence/full",
      "iq/bare",
      "iq/full",
    ] as const) {
      ctx.hook(event, inbound, PRIORITY);
    }
    for (const event of ["pre-message", "pre-presence", "pre-iq"] as const)
      ctx.hook(event, outbound, PRIORITY);

    // Every stanza to or from a bound session consults its account's list: read it now, so
    // the first stanzas need not wait for it, and chat between online users does not need
    // the storage (a database that cannot be reached for a moment).
    ctx.hook("session/bound", ({ session }) => {
      if (session.username) {
        const list = cache.get(session.username);
        if (list instanceof Promise) list.catch(() => undefined); // read again on first use
      }
      return false;
    });

    ctx.hook("account/deleted", ({ username }) => {
      cache.forget(username);
    });

    ctx.provide<BlockingApi>({ isBlocked });
  },
});

export { NS_BLOCKING, NS_BLOCKING_ERRORS } from "../../core/xml/namespaces.js";
