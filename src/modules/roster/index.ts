/**
 * Roster management (RFC 6121 §2): roster get with versioning (§2.6, the
 * protocol first published as XEP-0237), roster set (add, update, remove),
 * roster pushes to interested resources, and a per-account size limit. The
 * presence module changes subscription states through the API published here.
 */
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { defineModule } from "../../core/module.js";
import type { RosterItem } from "../../core/storage/types.js";
import { x } from "../../core/xml/element.js";
import { NS_ROSTERVER } from "../../core/xml/namespaces.js";
import type { RosterApi } from "./api.js";
import { itemElement, NS_ROSTER, parseRosterSet } from "./items.js";
import { RosterService } from "./service.js";

export type { RosterApi } from "./api.js";
export { NS_ROSTER } from "./items.js";

/** Roster requests are only for the account itself (any of its resources). */
function fromOwner(req: IqRequest): boolean {
  return req.from.local === req.to.local && req.from.domain === req.to.domain;
}

export default defineModule({
  name: "roster",
  description: "Roster management with roster versioning and pushes (RFC 6121 §2)",
  xeps: [{ xep: "0237", status: "complete", notes: "roster versioning as specified in RFC 6121 §2.6" }],
  options: z.object({
    /** Items one roster may hold; adding more is refused with not-allowed. */
    maxItems: z.number().int().min(1).default(1000),
    /** Longest item name in UTF-8 bytes (longer: not-acceptable). */
    maxNameBytes: z.number().int().min(1).default(1023),
    /** Longest group name in UTF-8 bytes (longer: not-acceptable). */
    maxGroupBytes: z.number().int().min(1).default(1023),
    /** Groups one item may be in (more: not-acceptable). */
    maxGroups: z.number().int().min(1).default(64),
  }),
  setup(ctx) {
    const { options } = ctx;
    const service = new RosterService(ctx, options.maxItems);
    ctx.provide<RosterApi>(service);

    ctx.addStreamFeature({
      name: "rosterver",
      stage: "post-auth",
      offer: () => x("ver", { xmlns: NS_ROSTERVER }),
    });

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_ROSTER, name: "query" }, async (req) => {
      // Someone else's roster does not exist as far as they can tell (RFC 6121 §8.5.2.1.3).
      if (!fromOwner(req)) throw new StanzaError("service-unavailable");
      if (req.origin && !req.origin.rosterRequested) {
        req.origin.rosterRequested = true;
        ctx.sessions.updated(req.origin);
      }
      const { version, items } = await service.get(ctx.accountKey(req.to));
      const ver = String(version);
      // RFC 6121 §2.6.3: nothing changed since the client's version → empty result, changes come as pushes.
      if (req.payload.attrs.ver === ver) return undefined;
      return x("query", { xmlns: NS_ROSTER, ver }, ...items.map(itemElement));
    });

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_ROSTER, name: "query" }, async (req) => {
      // RFC 6121 §2.3.3: only the account itself may change its roster.
      if (!fromOwner(req)) throw new StanzaError("forbidden");
      const username = ctx.accountKey(req.to);
      const request = parseRosterSet(req.payload, options);
      // RFC 6121 §2.3.2 allows either order; the result first is what clients (and Prosody) expect.
      const replyFirst = () => req.reply();
      if (request.kind === "remove") {
        if (!(await service.removeContact(username, request.jid, replyFirst))) {
          throw new StanzaError("item-not-found", "no such item in the roster");
        }
        return undefined;
      }
      if (request.jid.equals(req.to.bare())) {
        throw new StanzaError("not-allowed", "an account cannot be in its own roster");
      }
      const jid = request.jid.bareString;
      await service.exclusive(username, async () => {
        const existing = await service.getItem(username, jid);
        // A roster set replaces name and groups; the subscription state is the server's to keep.
        const item: RosterItem = {
          jid,
          subscription: existing?.subscription ?? "none",
          ask: existing?.ask ?? false,
          approved: existing?.approved ?? false,
          groups: request.groups,
        };
        if (request.name !== undefined) item.name = request.name;
        await service.store(username, item, replyFirst);
      });
      return undefined;
    });
  },
});

export { NS_ROSTERVER } from "../../core/xml/namespaces.js";
