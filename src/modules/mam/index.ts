/**
 * Message archive management (XEP-0313 1.1, urn:xmpp:mam:2 with #extended): each
 * account's 1:1 messages, both directions, in `Storage.messages("mam")` (owned by
 * accounts, so deleted with them).
 *
 * What is archived (§6.1.1, kept simple): messages of type chat or normal with a <body/>,
 * or with a XEP-0334 <store/> hint; never with <no-store/> or <no-permanent-store/>, never
 * carbons, group chat, headlines or errors. A message is archived once per account: for
 * the sender as it leaves (`pre-message`), for the recipient as it arrives
 * (`message/bare|full`), after blocking and before carbons and delivery; a message an
 * account sends to itself is archived once, as sent. The message does not wait for the
 * write (its stanza-id is given first); the storage shows the write to any later query. Only
 * while the store's queue of appends is full does the message wait, for room (its sender's
 * next stanzas wait behind it), so a flood goes at the pace of the storage. The archive id is the message's
 * XEP-0359 stanza-id (`by` = the account): the recipient's copy carries it, and so do the
 * carbons of both sides; the sender's id is stripped before the message leaves (§3.5).
 *
 * Queries (an IQ set to the account's bare JID, from the account only) filter by start,
 * end, with, before-id, after-id, ids and full text, page with RSM (max, after, before,
 * <before/> for the last page) and <flip-page/>; results go to the asking session as
 * <message><result><forwarded><delay/>…, then the IQ result with <fin/> (complete, and
 * <set/> with first, last and count). Preferences are XEP-0441's; messages older than
 * `archive.retentionDays` are removed by a scheduled cleanup.
 */
import { randomBytes } from "node:crypto";
import { StanzaError } from "../../core/errors.js";
import type { ClientStanzaEvent, StanzaEvent } from "../../core/events.js";
import type { IqRequest } from "../../core/iq.js";
import type { Jid } from "../../core/jid.js";
import { failureKind, LogThrottle } from "../../core/log-throttle.js";
import { defineModule } from "../../core/module.js";
import { roomWithin } from "../../core/storage/append-room.js";
import { type ArchivedMessage, ArchiveIdNotFound, type MessageQuery } from "../../core/storage/types.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import { messageType } from "../../core/xml/message-type.js";
import { NS_CARBONS, NS_CLIENT, NS_DELAY, NS_FORWARD, NS_MAM, NS_RSM } from "../../core/xml/namespaces.js";
import { storageHint } from "../../core/xml/storage-hints.js";
import type { RosterApi } from "../roster/api.js";
import type { StanzaIdApi } from "../stanza-id/api.js";
import type { MamApi } from "./api.js";
import { archiveConfigSection } from "./config.js";
import { type ArchivePrefs, modeFor, parsePrefs, parseStoredPrefs, prefsElement } from "./prefs.js";
import { parseQuery, queryForm } from "./query.js";

/** After blocking (100) and the stanza-id rules (90), before carbons (10) and delivery (-10). */
const ARCHIVE_PRIORITY = 20;
const PREFS_KEY = "prefs";
/** Accounts whose preferences are kept in memory (cleared when full). */
const PREFS_CACHE_SIZE = 10_000;

/** The query reading and the form of XEP-0313, for other archives served over it (group chat rooms). */
export { type ArchiveQuery, parseQuery, queryForm } from "./query.js";

export const NS_MAM_EXTENDED = `${NS_MAM}#extended`;
export const NS_MAM_GROUPCHAT_FIELD = `${NS_MAM}#groupchat-field`;

/** Is the message one a user archive keeps? (See the module comment.) */
export function worthArchiving(stanza: XmlElement): boolean {
  const type = messageType(stanza);
  if (type !== "chat" && type !== "normal") return false;
  const hint = storageHint(stanza);
  if (hint === "no-store") return false;
  let body = false;
  for (const c of stanza.children) {
    if (typeof c === "string") continue;
    const ns = c.attrs.xmlns;
    if (ns === NS_CARBONS) return false;
    if (c.name === "body" && ns === undefined) body = true;
  }
  return body || hint === "store";
}

/** XEP-0082 date-time in UTC, with milliseconds when they are not zero. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

export default defineModule({
  name: "mam",
  description: "Per-account message archives with queries, paging and preferences (XEP-0313, XEP-0441)",
  xeps: [
    { xep: "0313", version: "1.1.3", status: "complete", notes: "user archives; no group chat messages" },
    { xep: "0441", version: "0.2.0", status: "complete" },
    { xep: "0059", version: "1.0", status: "partial", notes: "max, after, before; no index" },
  ],
  dependencies: ["stanza-id"],
  config: archiveConfigSection,
  setup(ctx) {
    const { storage, clock, log } = ctx;
    const settings = ctx.config.archive;
    const archive = storage.messages("mam", { ownedByAccounts: true });
    const prefsStore = storage.keyValue("mam-prefs");
    const stanzaIds = ctx.api<StanzaIdApi>("stanza-id");
    if (!stanzaIds) throw new Error("the stanza-id module publishes no API");
    const stats = { archived: 0, failed: 0, pruned: 0, queries: 0 };
    /** A full disk fails every append: one line per kind of failure and window. */
    const failures = new LogThrottle(log);
    ctx.onUnload(() => failures.stop());

    for (const feature of [NS_MAM, NS_MAM_EXTENDED, NS_MAM_GROUPCHAT_FIELD])
      ctx.addFeature(feature, "account");

    // ---- preferences ----

    const prefsCache = new Map<string, ArchivePrefs>();
    const defaults = (): ArchivePrefs => ({ default: settings.defaultMode, always: [], never: [] });
    /** Synchronous when the account's preferences are cached (the common case on the message path). */
    /** Reads in progress, so messages arriving meanwhile wait for the same one, in order. */
    const loading = new Map<string, Promise<ArchivePrefs>>();
    const prefsOf = (username: string): ArchivePrefs | Promise<ArchivePrefs> => {
      const cached = prefsCache.get(username) ?? loading.get(username);
      if (cached) return cached;
      const load = prefsStore
        .get(username, PREFS_KEY)
        .then((json) => {
          const prefs = parseStoredPrefs(json) ?? defaults();
          if (prefsCache.size >= PREFS_CACHE_SIZE) prefsCache.clear();
          prefsCache.set(username, prefs);
          return prefs;
        })
        .finally(() => loading.delete(username));
      loading.set(username, load);
      return load;
    };
    ctx.hook("account/deleted", ({ username }) => {
      prefsCache.delete(username);
    });

    /** Does the owner's archive take a message with `peer`? */
    const archives = (owner: string, peer: Jid): boolean | Promise<boolean> => {
      const decide = (prefs: ArchivePrefs): boolean | Promise<boolean> => {
        const mode = modeFor(prefs, peer.bareString, peer.toString());
        if (mode !== "roster") return mode === "always";
        const roster = ctx.api<RosterApi>("roster");
        const item = roster
          ? roster.getItem(owner, peer.bareString)
          : storage.roster.getItem(owner, peer.bareString);
        return item.then((i) => i !== undefined);
      };
      const prefs = prefsOf(owner);
      return prefs instanceof Promise ? prefs.then(decide) : decide(prefs);
    };

    // ---- archiving ----

    /**
     * Archives the message. The message goes on at once (its stanza-id is given before the
     * write): the storage keeps an owner's appends in the order they are made and shows them
     * to every later query, so the archive follows the order of delivery (§3.1). While the
     * store's queue is full, the append and the message wait for room (backpressure); the
     * messages waiting go on in the order they came.
     */
    const record = (
      owner: string,
      ownerBare: string,
      stanza: XmlElement,
      peer: Jid,
      direction: "in" | "out",
    ): undefined | Promise<void> => {
      const room = roomWithin(archive, settings.maxAppendWaitSeconds * 1000);
      if (room)
        return room.then((taken) => {
          if (taken) append(owner, ownerBare, stanza, peer, direction);
          else {
            stats.failed++;
            failures.error(
              "archive-full",
              { owner, waitedSeconds: settings.maxAppendWaitSeconds },
              "the archive did not take appends in time: a message went on without being archived",
            );
          }
        });
      append(owner, ownerBare, stanza, peer, direction);
      return undefined;
    };

    const append = (
      owner: string,
      ownerBare: string,
      stanza: XmlElement,
      peer: Jid,
      direction: "in" | "out",
    ) => {
      archive
        .append({
          id: stanzaIds.assign(stanza, ownerBare),
          owner,
          peer: peer.bareString,
          peerResource: peer.resource,
          at: clock.now(),
          direction,
          stanza: stanza.toString(),
          text: stanza.getChildText("body") ?? "",
        })
        .then(
          (ok) => {
            if (ok) stats.archived++;
          },
          async (err: unknown) => {
            // A message for an account that does not exist is bounced by the message module.
            if (await storage.accounts.exists(owner).catch(() => true)) {
              stats.failed++;
              failures.error(failureKind(err), { err, owner }, "archiving a message failed");
            }
          },
        );
    };

    /** Archives when the preferences say so; synchronous when they are cached. */
    const maybeRecord = (
      owner: string,
      ownerBare: string,
      stanza: XmlElement,
      peer: Jid,
      direction: "in" | "out",
    ) => {
      const yes = archives(owner, peer);
      if (yes === true) {
        const waited = record(owner, ownerBare, stanza, peer, direction);
        return waited ? waited.then(() => false) : false;
      }
      if (yes instanceof Promise)
        return yes.then(
          async (y) => {
            if (y) await record(owner, ownerBare, stanza, peer, direction);
            return false;
          },
          (err: unknown) => {
            // The preferences (or the roster they refer to) could not be read: the message
            // goes on, not archived, as when the archive's own write fails.
            stats.failed++;
            failures.error(failureKind(err), { err, owner }, "archiving a message failed");
            return false;
          },
        );
      return false;
    };

    ctx.hook(
      "pre-message",
      ({ stanza, session, from, to }: ClientStanzaEvent) => {
        const owner = session.username;
        if (!owner || !worthArchiving(stanza)) return false;
        return maybeRecord(owner, from.bareString, stanza, to ?? from.bare(), "out");
      },
      ARCHIVE_PRIORITY,
    );

    const received = ({ stanza, from, to, origin }: StanzaEvent) => {
      if (to.local === "" || !worthArchiving(stanza)) return false;
      // Sent by the account itself: archived once already, as it left.
      const owner = ctx.accountKey(to);
      if (origin && origin.username === owner && from.bareString === to.bareString) return false;
      return maybeRecord(owner, to.bareString, stanza, from, "in");
    };
    ctx.hook("message/bare", received, ARCHIVE_PRIORITY);
    ctx.hook("message/full", received, ARCHIVE_PRIORITY);

    // ---- queries ----

    /** The archive is its owner's only (§7.1): forbidden to anyone else. */
    const ownerOf = (req: IqRequest): string => {
      if (req.to.local === "" || req.from.bareString !== req.to.bareString)
        throw new StanzaError("forbidden", "an archive is open to its owner only");
      return ctx.accountKey(req.to);
    };

    /** The message that carries one result to the client (§4.2). */
    const resultMessage = (m: ArchivedMessage, archiveJid: string, to: string, queryId?: string) => {
      const original = parseElement(m.stanza);
      if (original) original.attrs.xmlns = NS_CLIENT;
      return x(
        "message",
        { from: archiveJid, to, id: randomBytes(6).toString("base64url") },
        x(
          "result",
          { xmlns: NS_MAM, id: m.id, ...(queryId !== undefined ? { queryid: queryId } : {}) },
          x(
            "forwarded",
            { xmlns: NS_FORWARD },
            x("delay", { xmlns: NS_DELAY, stamp: stamp(m.at) }),
            original,
          ),
        ),
      );
    };

    const runQuery = async (req: IqRequest): Promise<XmlElement> => {
      const owner = ownerOf(req);
      const q = parseQuery(req.payload);
      stats.queries++;
      const filters: MessageQuery = {
        owner,
        ...(q.peer !== undefined ? { peer: q.peer } : {}),
        ...(q.peerResource !== undefined ? { peerResource: q.peerResource } : {}),
        ...(q.start !== undefined ? { start: q.start } : {}),
        ...(q.end !== undefined ? { end: q.end } : {}),
        ...(q.ids !== undefined ? { ids: q.ids } : {}),
        ...(q.text !== undefined ? { text: q.text } : {}),
      };
      // §4.1.3: every id named must be in the archive.
      if (q.ids !== undefined && q.ids.length > 0) {
        const known = await archive.count({ owner, ids: q.ids });
        if (known !== new Set(q.ids).size)
          throw new StanzaError("item-not-found", "an id is not in the archive");
      }
      const backwards = q.before !== undefined;
      const page: MessageQuery = {
        ...filters,
        limit: Math.min(q.max ?? settings.defaultPageSize, settings.maxPageSize),
        ...(backwards ? { newestFirst: true } : {}),
      };
      // The range (form) and the cursor (RSM) may bound the same side: the tighter one wins.
      const afterId = await tighter(owner, q.afterId, q.after, "after");
      const beforeId = await tighter(owner, q.beforeId, q.before || undefined, "before");
      if (afterId !== undefined) page.afterId = afterId;
      if (beforeId !== undefined) page.beforeId = beforeId;

      let messages: ArchivedMessage[] = [];
      let complete: boolean;
      try {
        if (page.limit === 0) {
          // RSM <max>0</max>: the count only. Unknown ids still fail.
          await archive.query({ ...page, limit: 1 });
          complete = false;
        } else {
          const r = await archive.query(page);
          messages = backwards ? r.messages.reverse() : r.messages;
          complete = r.complete;
        }
      } catch (err) {
        if (err instanceof ArchiveIdNotFound)
          throw new StanzaError("item-not-found", `${err.id} is not in the archive`);
        throw err;
      }
      // The size of the whole result set, where one count tells it: not for an after-id/before-id range.
      const count =
        q.afterId === undefined && q.beforeId === undefined ? await archive.count(filters) : undefined;
      if (count === 0) complete = true;

      const archiveJid = req.to.bareString;
      const to = req.from.toString();
      const send = (el: XmlElement) => {
        if (req.origin && !req.origin.closed) req.origin.send(el);
        else void ctx.router.deliver(el, req.to, req.from);
      };
      for (const m of q.flip ? [...messages].reverse() : messages) {
        send(resultMessage(m, archiveJid, to, q.queryId));
        // A page of large messages goes out as fast as the client reads it.
        if (req.origin && !req.origin.closed) await req.origin.whenWritable();
      }

      const set = x("set", { xmlns: NS_RSM });
      if (messages.length > 0) {
        // The index is given where it costs nothing: a forward page from the start of the set.
        const first = x("first", null, messages[0]!.id);
        if (!backwards && q.after === undefined) first.attrs.index = "0";
        set.append(first, x("last", null, messages.at(-1)!.id));
      }
      if (count !== undefined) set.append(x("count", null, String(count)));
      return x("fin", { xmlns: NS_MAM, ...(complete ? { complete: "true" } : {}) }, set);
    };

    /**
     * Of two ids bounding the same side of a query (the form's after-id and RSM's <after/>,
     * or before-id and <before/>), the one closer to the other end. Both must exist.
     */
    const tighter = async (
      owner: string,
      rangeId: string | undefined,
      cursorId: string | undefined,
      side: "after" | "before",
    ): Promise<string | undefined> => {
      if (rangeId === undefined || cursorId === undefined || rangeId === cursorId) return rangeId ?? cursorId;
      try {
        // Is the cursor inside the range (after after-id, or before before-id)?
        const inside = await archive.query({
          owner,
          ids: [cursorId],
          limit: 1,
          ...(side === "after" ? { afterId: rangeId } : { beforeId: rangeId }),
        });
        if (inside.messages.length > 0) return cursorId;
        if (!(await archive.get(owner, cursorId))) throw new ArchiveIdNotFound(cursorId);
        return rangeId;
      } catch (err) {
        if (err instanceof ArchiveIdNotFound)
          throw new StanzaError("item-not-found", `${err.id} is not in the archive`);
        throw err;
      }
    };

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_MAM }, async (req) => {
      if (req.payload.name === "query") return runQuery(req);
      if (req.payload.name === "prefs") {
        const owner = ownerOf(req);
        const prefs = parsePrefs(req.payload, settings.maxPreferenceJids);
        await prefsStore.set(owner, PREFS_KEY, JSON.stringify(prefs));
        prefsCache.set(owner, prefs);
        return prefsElement(prefs);
      }
      throw new StanzaError("feature-not-implemented", `<${req.payload.name}/> is not served`);
    });

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_MAM }, async (req) => {
      const owner = ownerOf(req);
      switch (req.payload.name) {
        case "query":
          return x("query", { xmlns: NS_MAM }, queryForm());
        case "prefs":
          return prefsElement(await prefsOf(owner));
        case "metadata": {
          // §5: the first and last messages of the archive; empty when there is none.
          const [first] = (await archive.query({ owner, limit: 1 })).messages;
          const [last] = (await archive.query({ owner, limit: 1, newestFirst: true })).messages;
          const el = x("metadata", { xmlns: NS_MAM });
          if (first && last)
            el.append(
              x("start", { id: first.id, timestamp: stamp(first.at) }),
              x("end", { id: last.id, timestamp: stamp(last.at) }),
            );
          return el;
        }
        default:
          throw new StanzaError("feature-not-implemented", `<${req.payload.name}/> is not served`);
      }
    });

    // ---- retention ----

    /** Removes messages older than the retention period (none when it is 0: forever). */
    const pruneExpired = async (): Promise<number> => {
      if (settings.retentionDays <= 0) return 0;
      const n = await archive.prune(clock.now() - settings.retentionDays * 86_400_000);
      stats.pruned += n;
      if (n > 0)
        log.info({ removed: n, retentionDays: settings.retentionDays }, "expired archived messages removed");
      return n;
    };
    if (settings.retentionDays > 0) {
      const cleanup = () => {
        pruneExpired().catch((err: unknown) =>
          log.error({ err }, "removing expired archived messages failed"),
        );
      };
      ctx.setTimeout(cleanup, 5_000);
      ctx.setInterval(cleanup, settings.cleanupIntervalMinutes * 60_000);
    }
    ctx.provide<MamApi>({ pruneExpired });

    ctx.metric({
      name: "switchboard_archive_messages_total",
      help: "Messages archived (XEP-0313), one per account archive they went into",
      type: "counter",
      collect: () => stats.archived,
    });
    ctx.metric({
      name: "switchboard_archive_failures_total",
      help: "Messages delivered but not archived because the archive write failed (a full disk, a database that is down)",
      type: "counter",
      collect: () => stats.failed,
    });
    ctx.metric({
      name: "switchboard_archive_queries_total",
      help: "Archive queries answered",
      type: "counter",
      collect: () => stats.queries,
    });
    ctx.metric({
      name: "switchboard_archive_pruned_total",
      help: "Archived messages removed by the retention cleanup",
      type: "counter",
      collect: () => stats.pruned,
    });
  },
});
