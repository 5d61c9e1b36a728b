/**
 * vCard storage (XEP-0054, vcard-temp). An account sets and reads its own
 * vCard (no vCard yet: an empty <vCard/>); anyone may read another account's
 * vCard, and gets service-unavailable both when the account has none and when
 * it does not exist (XEP-0054 §3.3, against directory harvesting). Only the
 * owner may set it (forbidden otherwise). The vCard is kept exactly as sent
 * (photos included), as serialized XML, up to a size limit; setting an empty
 * vCard removes it.
 *
 * Other modules read and change vCards through the API (api.ts); a client's set
 * fires "vcard/setting" before it is stored (a handler may refuse it) and every
 * change fires "vcard/changed" after.
 */
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { KeyedLock } from "../../core/keyed-lock.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import { NS_VCARD } from "../../core/xml/namespaces.js";
import { isSelf } from "../roster/api.js";
import type { VcardApi } from "./api.js";

export type { VcardApi, VcardChangedEvent, VcardSettingEvent } from "./api.js";

const KEY = "vcard";

export default defineModule({
  name: "vcard",
  description: "vCard storage for accounts (XEP-0054)",
  xeps: [{ xep: "0054", version: "1.3.0", status: "complete" }],
  options: z.object({
    /** Largest vCard accepted, in bytes of serialized XML (photos are inline, base64). */
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
  }),
  setup(ctx) {
    const { storage, domain } = ctx;
    const store = storage.keyValue("vcard");
    // Client sets and changes made through the API take turns per account.
    const lock = new KeyedLock();
    ctx.addFeature(NS_VCARD, "host");
    ctx.addFeature(NS_VCARD, "account");

    const checkPayload = (req: IqRequest) => {
      if (req.payload.name !== "vCard") throw new StanzaError("bad-request", "expected a <vCard/> element");
    };

    const load = async (username: string): Promise<XmlElement | undefined> => {
      const raw = await store.get(username, KEY);
      if (raw === undefined) return undefined;
      const vcard = parseElement(raw);
      if (!vcard) ctx.log.warn({ username }, "stored vCard is unreadable; answering as if there were none");
      return vcard;
    };

    /** Stores (or, for an empty or absent vCard, removes) an account's vCard; the caller holds the lock. */
    const save = async (username: string, vcard: XmlElement | undefined): Promise<XmlElement | undefined> => {
      if (!vcard || vcard.elements().length === 0) {
        await store.delete(username, KEY);
        return undefined;
      }
      const xml = vcard.toString();
      if (Buffer.byteLength(xml, "utf8") > ctx.options.maxBytes) {
        throw new StanzaError("not-acceptable", `the vCard is larger than ${ctx.options.maxBytes} bytes`);
      }
      await store.set(username, KEY, xml);
      return vcard;
    };

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_VCARD }, async (req) => {
      checkPayload(req);
      const username = ctx.accountKey(req.to);
      const own = isSelf(username, domain, req.from);
      const vcard = own || (await storage.accounts.exists(username)) ? await load(username) : undefined;
      if (vcard) return vcard;
      if (own) return x("vCard", { xmlns: NS_VCARD });
      throw new StanzaError("service-unavailable");
    });

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_VCARD }, async (req) => {
      checkPayload(req);
      const username = ctx.accountKey(req.to);
      if (!isSelf(username, domain, req.from))
        throw new StanzaError("forbidden", "only the owner may set a vCard");
      const vcard = req.payload;
      const stored = await lock.run(username, async () => {
        if (vcard.elements().length > 0) await ctx.fire("vcard/setting", { username, vcard });
        return save(username, vcard);
      });
      await ctx.fire("vcard/changed", { username, vcard: stored?.clone(), origin: undefined });
    });

    ctx.provide<VcardApi>({
      get: load,
      async update(username, origin, change) {
        const result = await lock.run(username, async () => {
          const next = change(await load(username));
          if (next === false) return { wrote: false as const };
          return { wrote: true as const, stored: await save(username, next) };
        });
        if (!result.wrote) return false;
        await ctx.fire("vcard/changed", { username, vcard: result.stored?.clone(), origin });
        return true;
      },
    });
  },
});

export { NS_VCARD } from "../../core/xml/namespaces.js";
