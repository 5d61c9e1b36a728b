/**
 * Push notifications (XEP-0357). A client registers its app server's XMPP push service
 * (a pubsub JID and node, with publish options such as a secret) for its account; when a
 * message arrives for a session that waits for its client to resume it (stream management
 * hibernation: the phone is asleep) or for an account with no connection at all, the
 * server publishes a notification to every registration of the account: the summary form
 * (message count since the account was last connected, last sender), and the message text
 * only when `push.includeBody` is on. A publish answered with an error disables that
 * registration (XEP-0357 §7.1).
 *
 * Registrations are kept per account in the `push` document store; the module also
 * removes them when the account is deleted.
 */
import { StanzaError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { type Jid, tryParseJid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { messageType } from "../../core/xml/message-type.js";
import {
  NS_CARBONS,
  NS_CLIENT,
  NS_DATA,
  NS_PUBSUB,
  NS_PUBSUB_PUBLISH_OPTIONS,
  NS_PUSH,
  NS_PUSH_SUMMARY,
} from "../../core/xml/namespaces.js";
import type { OfflineMessageEvent } from "../message/index.js";
import { pushConfigSection } from "./config.js";

/** One app server registration (XEP-0357 §5). */
export interface PushRegistration {
  /** The XMPP push service. */
  jid: string;
  /** Its node, "" when the client gave none. */
  node: string;
  /** The publish-options form's fields, given back with every publish. */
  options: { var: string; values: string[] }[];
  enabledAt: number;
}

interface PushDocument {
  registrations: PushRegistration[];
}

/** Longest node name and largest publish-options form accepted. */
const MAX_NODE_CHARS = 1024;
const MAX_OPTIONS_BYTES = 4096;
/** Accounts whose registrations are cached in memory. */
const CACHE_SIZE = 10_000;

export default defineModule({
  name: "push",
  description: "Push notifications to a client's app server for hibernated and offline accounts (XEP-0357)",
  xeps: [
    { xep: "0357", version: "0.4.1", status: "complete", notes: "summary form; no body unless configured" },
  ],
  dependencies: ["message"],
  config: pushConfigSection,
  setup(ctx) {
    const { storage, router, clock, log, sessions } = ctx;
    const settings = ctx.config.push;
    const store = storage.documents<PushDocument>("push");
    /** Registrations by bare JID (null: none), read through. */
    const cache = new Map<string, PushRegistration[] | null>();
    /** Messages notified per account since it was last connected (message-count). */
    const counts = new Map<string, number>();
    const pending = new Set<Promise<unknown>>();
    const stats = { published: 0, errors: 0, timeouts: 0, disabled: 0 };

    ctx.addFeature(NS_PUSH, "account");

    const registrationsOf = async (account: string): Promise<PushRegistration[]> => {
      const cached = cache.get(account);
      if (cached !== undefined) return cached ?? [];
      const doc = await store.get(account);
      const regs = doc?.registrations ?? [];
      if (cache.size >= CACHE_SIZE) cache.clear();
      cache.set(account, regs.length > 0 ? regs : null);
      return regs;
    };

    const change = async (
      account: string,
      fn: (regs: PushRegistration[]) => PushRegistration[],
    ): Promise<PushRegistration[]> => {
      const doc = await store.update(account, (cur) => {
        const next = fn(cur?.registrations ?? []);
        return next.length > 0 ? { registrations: next } : undefined;
      });
      const regs = doc?.registrations ?? [];
      cache.set(account, regs.length > 0 ? regs : null);
      return regs;
    };

    // ---- enable / disable ----

    const ownAccount = (req: IqRequest): string => {
      if (req.from.local !== req.to.local || req.from.domain !== req.to.domain)
        throw new StanzaError("forbidden", "push notifications are set by the account itself");
      return req.to.bareString;
    };

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_PUSH }, async (req) => {
      const account = ownAccount(req);
      const el = req.payload;
      const serviceJid = serviceOf(el);
      const service = serviceJid.toString();
      const node = el.attrs.node ?? "";
      if (node.length > MAX_NODE_CHARS) throw new StanzaError("not-acceptable", "node name too long");
      if (el.name === "enable") {
        // The server publishes to the service: the account itself as the service would have the
        // account's own notifications published to it (its PEP), never reaching an app server.
        if (serviceJid.bareString === account)
          throw new StanzaError("not-acceptable", "the push service cannot be the account itself");
        const options = publishOptionsOf(el);
        let full = false;
        await change(account, (regs) => {
          const others = regs.filter((r) => !(r.jid === service && r.node === node));
          if (others.length >= settings.maxRegistrationsPerAccount) {
            full = true;
            return regs;
          }
          // XEP-0357 §5: the same service and node again replaces the publish options.
          return [...others, { jid: service, node, options, enabledAt: clock.now() }];
        });
        if (full)
          throw new StanzaError(
            "resource-constraint",
            `at most ${settings.maxRegistrationsPerAccount} push registrations per account`,
          );
        log.debug({ account, service, node }, "push notifications enabled");
        return;
      }
      if (el.name === "disable") {
        const whole = el.attrs.node === undefined;
        await change(account, (regs) =>
          regs.filter((r) => !(r.jid === service && (whole || r.node === node))),
        );
        return;
      }
      throw new StanzaError("bad-request", `<${el.name}/> is not a push command`);
    });

    // ---- when to notify ----

    // A session waiting for its client to resume it: the stanza is queued, the device asleep.
    ctx.filter(
      "outbound",
      (session, stanza) => {
        if (!session.attached && session.jid && notifiable(stanza)) notify(session.jid.bare(), stanza);
        return stanza;
      },
      -100,
    );

    // No session takes the message; a connected but unavailable one would see it at its next presence.
    ctx.hook(
      "message/offline",
      (ev: OfflineMessageEvent) => {
        // A message coming back from a session that ended was announced when it first arrived.
        if (ev.delayedSince !== undefined || !notifiable(ev.stanza)) return false;
        if (sessions.resourcesOf(ev.to.local, ev.to.domain).some((s) => s.attached)) return false;
        notify(ev.to.bare(), ev.stanza);
        return false;
      },
      10,
    );

    const connected = ({ session }: { session: { jid?: Jid } }) => {
      if (session.jid) counts.delete(session.jid.bareString);
      return false;
    };
    ctx.hook("session/bound", connected);
    ctx.hook("session/resumed", connected);

    ctx.hook("account/deleted", async ({ username }) => {
      const account = ctx.accountJid(username).bareString;
      cache.delete(account);
      counts.delete(account);
      await store.delete(account);
      return false;
    });

    // ---- publishing ----

    function notify(account: Jid, stanza: XmlElement): void {
      const p = publishAll(account.bareString, stanza)
        .catch((err) => log.error({ err }, "push notification failed"))
        .finally(() => pending.delete(p));
      pending.add(p);
    }

    async function publishAll(account: string, stanza: XmlElement): Promise<void> {
      const regs = await registrationsOf(account);
      if (regs.length === 0) return;
      const count = (counts.get(account) ?? 0) + 1;
      counts.set(account, count);
      const body = stanza.getChildText("body") ?? "";
      const summary = x(
        "x",
        { xmlns: NS_DATA, type: "submit" },
        field("FORM_TYPE", [NS_PUSH_SUMMARY], "hidden"),
        field("message-count", [String(count)]),
        field("last-message-sender", [stanza.attrs.from ?? ""]),
        settings.includeBody &&
          field("last-message-body", [[...body].slice(0, settings.maxBodyChars).join("")]),
      );
      await Promise.all(regs.map((reg) => publish(account, reg, summary)));
    }

    async function publish(account: string, reg: PushRegistration, summary: XmlElement): Promise<void> {
      const service = tryParseJid(reg.jid);
      if (!service) return;
      const iq = x(
        "iq",
        { type: "set" },
        x(
          "pubsub",
          { xmlns: NS_PUBSUB },
          x(
            "publish",
            { node: reg.node === "" ? undefined : reg.node },
            x("item", null, x("notification", { xmlns: NS_PUSH }, summary.clone())),
          ),
          reg.options.length > 0 &&
            x(
              "publish-options",
              null,
              x(
                "x",
                { xmlns: NS_DATA, type: "submit" },
                field("FORM_TYPE", [NS_PUBSUB_PUBLISH_OPTIONS], "hidden"),
                ...reg.options.map((o) => field(o.var, o.values)),
              ),
            ),
        ),
      );
      const reply = await router.request(iq, service, settings.publishTimeoutSeconds * 1000);
      if (reply === undefined) {
        stats.timeouts++;
        return;
      }
      if (reply.attrs.type !== "error") {
        stats.published++;
        return;
      }
      // XEP-0357 §7.1: an error disables this service and node for the account.
      stats.errors++;
      stats.disabled++;
      log.info(
        { account, service: reg.jid, node: reg.node },
        "push service answered with an error: disabled",
      );
      await change(account, (regs) => regs.filter((r) => !(r.jid === reg.jid && r.node === reg.node)));
    }

    ctx.metric({
      name: "switchboard_push_notifications_total",
      help: "Push notifications published to app servers (XEP-0357), by outcome",
      type: "counter",
      labelNames: ["outcome"],
      collect: () => [
        [{ outcome: "published" }, stats.published],
        [{ outcome: "error" }, stats.errors],
        [{ outcome: "timeout" }, stats.timeouts],
      ],
    });
    ctx.metric({
      name: "switchboard_push_registrations_disabled_total",
      help: "Push registrations disabled because the app server answered with an error",
      type: "counter",
      collect: () => stats.disabled,
    });

    ctx.onUnload(async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    });
  },
});

/** The push service of an <enable/> or <disable/>: its 'jid', required and valid. */
function serviceOf(el: XmlElement): Jid {
  const raw = el.attrs.jid;
  if (raw === undefined) throw new StanzaError("bad-request", "the push service 'jid' is required");
  const jid = tryParseJid(raw);
  if (!jid) throw new StanzaError("jid-malformed", "the push service 'jid' is not a valid JID");
  return jid;
}

/** The publish-options form of an <enable/> (XEP-0357 §5), without its FORM_TYPE. */
function publishOptionsOf(el: XmlElement): PushRegistration["options"] {
  const form = el.getChild("x", NS_DATA);
  if (!form) return [];
  if (form.toString().length > MAX_OPTIONS_BYTES)
    throw new StanzaError("not-acceptable", "publish options too large");
  const fields = form.getChildren("field");
  const formType = fields.find((f) => f.attrs.var === "FORM_TYPE")?.getChildText("value");
  if (formType !== NS_PUBSUB_PUBLISH_OPTIONS)
    throw new StanzaError("bad-request", `the form must be of type ${NS_PUBSUB_PUBLISH_OPTIONS}`);
  return fields
    .filter((f) => f.attrs.var !== undefined && f.attrs.var !== "FORM_TYPE")
    .map((f) => ({ var: f.attrs.var!, values: f.getChildren("value").map((v) => v.text()) }));
}

/** A message worth waking a phone for: a chat or normal message with text, not a carbon copy. */
function notifiable(stanza: XmlElement): boolean {
  if (stanza.name !== "message" || (stanza.attrs.xmlns !== undefined && stanza.attrs.xmlns !== NS_CLIENT))
    return false;
  const type = messageType(stanza);
  if (type !== "chat" && type !== "normal") return false;
  if (stanza.getChildByNs(NS_CARBONS)) return false;
  return (stanza.getChildText("body") ?? "") !== "";
}

function field(name: string, values: string[], type?: string): XmlElement {
  return x("field", { var: name, type }, ...values.map((v) => x("value", null, v)));
}
