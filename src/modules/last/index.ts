/**
 * Last Activity (XEP-0012).
 * - To the domain: the server's uptime in seconds.
 * - To an account's bare JID: seconds since its last logout and the status of
 *   its last unavailable presence, recorded when a client sends it and when a
 *   session ends. The server answers itself (it does not ask the account's
 *   clients): 0 while the account has an available resource (XEP-0012 §4; a
 *   connected one that sent unavailable presence is not), item-not-found when no logout was
 *   ever recorded. Only the account and those allowed to see its presence
 *   (subscription "from" or "both") get an answer; others get forbidden, and
 *   unknown accounts service-unavailable (RFC 6121 §8.5.1).
 * - To a full JID: the request is delivered to the client only for requesters
 *   allowed to see the account's presence, others get forbidden (§4).
 */
import { StanzaError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { defineModule } from "../../core/module.js";
import { x } from "../../core/xml/element.js";
import { NS_LAST } from "../../core/xml/namespaces.js";
import { mayReceivePresence } from "../roster/api.js";

const KEY = "logout";

interface Logout {
  /** Milliseconds since the epoch. */
  at: number;
  status: string;
}

function parseLogout(raw: string | undefined): Logout | undefined {
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<Logout>;
    if (typeof v.at === "number" && typeof v.status === "string") return { at: v.at, status: v.status };
  } catch {
    // an unreadable record counts as none
  }
  return undefined;
}

export default defineModule({
  name: "last",
  description: "Last activity of accounts and uptime of the server (XEP-0012)",
  xeps: [{ xep: "0012", version: "2.0", status: "complete" }],
  setup(ctx) {
    const { storage, sessions, clock, domain } = ctx;
    const store = storage.keyValue("lastactivity");
    const startedAt = clock.now();
    const seconds = (since: number) => Math.max(0, Math.floor((clock.now() - since) / 1000));

    ctx.addFeature(NS_LAST, "host");
    ctx.addFeature(NS_LAST, "account");

    const checkPayload = (req: IqRequest) => {
      if (req.payload.name !== "query") throw new StanzaError("bad-request", "expected a <query/> element");
    };

    ctx.handleIq({ target: "host", type: "get", xmlns: NS_LAST }, (req) => {
      checkPayload(req);
      return x("query", { xmlns: NS_LAST, seconds: String(seconds(startedAt)) });
    });

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_LAST }, async (req) => {
      checkPayload(req);
      const username = ctx.accountKey(req.to);
      if (!(await storage.accounts.exists(username))) throw new StanzaError("service-unavailable");
      if (!(await mayReceivePresence(storage, domain, username, req.from)))
        throw new StanzaError("forbidden");
      if (sessions.availableOf(username).length > 0) return x("query", { xmlns: NS_LAST, seconds: "0" });
      const last = parseLogout(await store.get(username, KEY));
      if (!last) throw new StanzaError("item-not-found", "no logout recorded for this account");
      return x("query", { xmlns: NS_LAST, seconds: String(seconds(last.at)) }, last.status);
    });

    // §4: a query to a full JID reaches the client only if the requester may see the account's presence.
    ctx.hook(
      "iq/full",
      ({ stanza, from, to }) => {
        if (stanza.attrs.type !== "get" || stanza.firstElement()?.attrs.xmlns !== NS_LAST) return false;
        return mayReceivePresence(storage, domain, ctx.accountKey(to), from).then((allowed) => {
          if (!allowed) throw new StanzaError("forbidden");
          return false;
        });
      },
      10,
    );

    const recordLogout = async (username: string, status: string): Promise<void> => {
      // The session of a deleted account ends after its data is gone: nothing to record then.
      if (!(await storage.accounts.exists(username))) return;
      await store.set(username, KEY, JSON.stringify({ at: clock.now(), status } satisfies Logout));
    };

    // The status of the unavailable presence a client sends before it goes (no 'to': a broadcast). Ahead
    // of the presence module, which claims broadcasts; this hook only looks.
    ctx.hook(
      "pre-presence",
      async ({ stanza, session, to }) => {
        if (to === undefined && stanza.attrs.type === "unavailable") {
          const status = stanza.getChildText("status") ?? "";
          session.data.set(ctx.name, status);
          // Recorded now, not only when the session ends: a client still connected but
          // unavailable has gone as far as its contacts can tell.
          if (session.username) await recordLogout(session.username, status);
        }
        return false;
      },
      50,
    );

    ctx.hook("session/ended", async ({ session }) => {
      if (!session.username) return;
      const status = session.data.get(ctx.name);
      await recordLogout(session.username, typeof status === "string" ? status : "");
    });
  },
});

export { NS_LAST } from "../../core/xml/namespaces.js";
