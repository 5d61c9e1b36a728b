/**
 * Personal eventing (XEP-0163): every account is a publish-subscribe service (the PEP
 * subset of XEP-0060) at its bare JID. Its owner publishes (nodes are created on first
 * publish, with publish-options as configuration and as preconditions, which is what
 * XEP-0223 private storage and XEP-0402 bookmarks need), retracts, configures and deletes;
 * others retrieve items as the node's access model allows (presence: contacts with a
 * "from" or "both" subscription; open; whitelist: the owner only).
 *
 * Notifications are filtered (XEP-0163 §4.2): they go to the owner's resources and to the
 * online contacts allowed to see them whose entity capabilities (XEP-0115) carry
 * "<node>+notify"; such an entity gets the last item of each node it wants when its
 * presence arrives. Capabilities are learned with one disco#info per verification string
 * and trusted only when their hash checks out.
 *
 * The account's disco#items list its nodes (XEP-0060 §5.2), each only to those its access
 * model lets retrieve it.
 *
 * Other modules read items and publish on an account's behalf through the API (api.ts);
 * every publication, the client's or a module's, fires "pep/published".
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import type { IqRequest } from "../../core/iq.js";
import { type Jid, parseJid } from "../../core/jid.js";
import { KeyedLock } from "../../core/keyed-lock.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";
import {
  NS_CAPS,
  NS_DATA,
  NS_DISCO_INFO,
  NS_PUBSUB,
  NS_PUBSUB_EVENT,
  NS_PUBSUB_OWNER,
} from "../../core/xml/namespaces.js";
import type { DiscoApi, DiscoItem } from "../disco/index.js";
import { mayReceivePresence } from "../roster/api.js";
import type { PepApi } from "./api.js";
import { type Caps, CapsCache, capsVer, Interest, notifyNodes } from "./caps.js";
import {
  applyForm,
  CONFIG_FIELDS,
  configForm,
  DEFAULT_CONFIG,
  formFields,
  meetsPreconditions,
  NODE_CONFIG_FORM,
  type NodeConfig,
  PepNodes,
  PUBLISH_OPTIONS_FORM,
  pubsubError,
  type StoredItem,
  type StoredNode,
} from "./nodes.js";

/** What the account's PEP service supports, advertised on its bare JID (XEP-0060 §10). */
const PUBSUB_FEATURES = [
  "access-open",
  "access-presence",
  "access-whitelist",
  "auto-create",
  "auto-subscribe",
  "config-node",
  "create-and-configure",
  "create-nodes",
  "delete-items",
  "delete-nodes",
  "filtered-notifications",
  "item-ids",
  "last-published",
  "multi-items",
  "persistent-items",
  "publish",
  "publish-options",
  "purge-nodes",
  "retract-items",
  "retrieve-items",
];

/** A node name: up to 256 characters, no control characters, not starting with white space. */
const validNodeName = (name: string) => name.length <= 256 && !/^\s|\p{Cc}/u.test(name);

export default defineModule({
  name: "pep",
  description: "Personal eventing: a publish-subscribe service on every account (XEP-0163, XEP-0223)",
  xeps: [
    { xep: "0163", version: "1.2.2", status: "complete" },
    { xep: "0060", version: "1.26.0", status: "partial", notes: "the PEP subset: no explicit subscriptions" },
    { xep: "0223", version: "1.1.1", status: "complete" },
    {
      xep: "0115",
      version: "1.6.0",
      status: "partial",
      notes: "verified capabilities for notification filtering",
    },
  ],
  options: z.object({
    /** Nodes one account may have. */
    maxNodes: z.number().int().min(1).default(128),
    /** Items a node keeps at most (what max_items "max" means). */
    maxItems: z.number().int().min(1).default(256),
    /** Largest item payload, in bytes of serialized XML (avatars, XEP-0084, are the big ones). */
    maxPayloadBytes: z
      .number()
      .int()
      .min(1024)
      .default(192 * 1024),
    /** Verification strings of entity capabilities remembered. */
    capsCacheSize: z.number().int().min(10).default(10_000),
  }),
  setup(ctx) {
    const { options, router } = ctx;
    const nodes = new PepNodes(ctx.storage.keyValue("pep"), options.maxItems);
    const lock = new KeyedLock();
    const capsCache = new CapsCache(options.capsCacheSize);
    const interest = new Interest();

    ctx.addIdentity({ category: "pubsub", type: "pep" }, "account");
    ctx.addFeature(NS_PUBSUB, "account");
    for (const f of PUBSUB_FEATURES) ctx.addFeature(`${NS_PUBSUB}#${f}`, "account");

    /** The storage key of a local account; undefined for any other address. */
    const accountOf = (jid: Jid): string | undefined => {
      if (jid.local === "" || !router.isLocalDomain(jid.domain)) return undefined;
      return ctx.accountKey(jid);
    };
    const isOwner = (owner: Jid, requester: Jid) =>
      requester.local === owner.local && requester.domain === owner.domain;

    /** May `requester` retrieve items of (and be notified about) a node of `owner`? */
    const mayAccess = async (owner: Jid, config: NodeConfig, requester: Jid): Promise<boolean> => {
      if (isOwner(owner, requester)) return true;
      if (config.accessModel === "open") return true;
      if (config.accessModel === "whitelist") return false;
      const key = accountOf(owner);
      return key !== undefined ? mayReceivePresence(ctx.storage, ctx.domain, key, requester) : false;
    };

    // XEP-0060 §5.2, XEP-0163 §6.2: the nodes are the items of the account's bare JID, and
    // a node is listed only to whoever may retrieve its items.
    const disco = ctx.api<DiscoApi>("disco");
    if (disco)
      ctx.onUnload(
        disco.addItems("account", async ({ from, to }) => {
          const account = accountOf(to);
          if (!account) return [];
          const names = (await nodes.names(account)).sort();
          const stored = await Promise.all(names.map((name) => nodes.get(account, name)));
          // Access depends on the node's model alone here: one check (a roster read) per model.
          const byModel = new Map<NodeConfig["accessModel"], Promise<boolean>>();
          const readable = (config: NodeConfig): Promise<boolean> => {
            let allowed = byModel.get(config.accessModel);
            if (!allowed) {
              allowed = mayAccess(to, config, from);
              byModel.set(config.accessModel, allowed);
            }
            return allowed;
          };
          const listed: DiscoItem[] = [];
          for (const [i, node] of stored.entries())
            if (node && (await readable(node.config)))
              listed.push({
                jid: to.bareString,
                node: names[i]!,
                // XEP-0060 §5.2: a node's title is the entry's name.
                ...(node.config.title !== undefined ? { name: node.config.title } : {}),
              });
          return listed;
        }),
      );

    const refuseAccess = (config: NodeConfig): StanzaError =>
      config.accessModel === "whitelist"
        ? pubsubError("not-allowed", "closed-node")
        : pubsubError("not-authorized", "presence-subscription-required");

    const itemElement = (item: StoredItem, withPayload = true): XmlElement => {
      const payload = withPayload ? parseElement(item.payload) : undefined;
      return x("item", { id: item.id }, payload);
    };

    const eventMessage = (owner: Jid, to: string, event: XmlElement): XmlElement =>
      x(
        "message",
        { from: owner.bareString, to, type: "headline", id: randomBytes(8).toString("hex") },
        event,
      );

    /** Sends an event of `node` to everyone who wants it and may see it. */
    const notify = async (owner: Jid, node: string, config: NodeConfig, event: XmlElement): Promise<void> => {
      const account = accountOf(owner);
      if (!account) return;
      for (const entity of interest.wanting(account, node)) {
        const to = safeJid(entity);
        if (!to || !(await mayAccess(owner, config, to))) continue;
        await router.deliver(eventMessage(owner, entity, event.clone()), owner.bare(), to);
      }
    };

    /** The last item of each node `entity` wants, as presence from it arrives (XEP-0163 §4.3.4). */
    const sendLastItems = async (owner: Jid, entity: Jid, wanted: Set<string>): Promise<void> => {
      const account = accountOf(owner);
      if (!account) return;
      for (const name of wanted) {
        const node = await nodes.get(account, name);
        if (node?.config.sendLastPublishedItem !== "on_sub_and_presence") continue;
        const last = node.items.at(-1);
        if (!last || !(await mayAccess(owner, node.config, entity))) continue;
        const event = x("event", { xmlns: NS_PUBSUB_EVENT }, x("items", { node: name }, itemElement(last)));
        await router.deliver(eventMessage(owner, entity.toString(), event), owner.bare(), entity);
      }
    };

    /** Questions in flight, by entity and verification string: one disco#info per entity and caps. */
    const asking = new Map<string, Promise<Set<string>>>();

    /** Learns which nodes an entity wants from its capabilities, asking it once per verification string. */
    const wantedBy = (asker: Jid, entity: Jid, caps: Caps): Promise<Set<string>> => {
      const known = capsCache.get(caps);
      if (known) return Promise.resolve(known);
      const key = `${entity} ${caps.hash} ${caps.ver}`;
      const pending = asking.get(key);
      if (pending) return pending;
      const ask = (async () => {
        const query = x(
          "iq",
          { type: "get" },
          x("query", { xmlns: NS_DISCO_INFO, node: `${caps.node}#${caps.ver}` }),
        );
        // From the PEP service, the account's bare JID, as XEP-0163 shows it (and Prosody does,
        // with this id).
        const reply = await router.request(query, entity, 10_000, { from: asker, id: "disco" });
        const info = reply?.attrs.type === "result" ? reply.getChild("query", NS_DISCO_INFO) : undefined;
        if (!info) return new Set<string>();
        const wanted = notifyNodes(info);
        // Only a matching hash may answer for every entity that shows the same string.
        if (capsVer(info, caps.hash) === caps.ver) capsCache.set(caps, wanted);
        return wanted;
      })().finally(() => asking.delete(key));
      asking.set(key, ask);
      return ask;
    };

    /** Presence from `entity` reached `owner` (one of the owner's resources or a contact). */
    const observePresence = async (owner: Jid, entity: Jid, presence: XmlElement): Promise<void> => {
      const account = accountOf(owner);
      if (!account || entity.resource === "") return;
      const type = presence.attrs.type;
      if (type === "unavailable" || type === "error") {
        interest.remove(account, entity.toString());
        return;
      }
      if (type !== undefined) return;
      const c = presence.getChild("c", NS_CAPS);
      const caps =
        c?.attrs.node && c.attrs.ver && c.attrs.hash
          ? { node: c.attrs.node, ver: c.attrs.ver, hash: c.attrs.hash }
          : undefined;
      const key = entity.toString();
      const wanted = caps ? await wantedBy(owner, entity, caps) : undefined;
      // An entity that wants nothing (a presence without caps, or caps without "+notify") is not kept.
      if (wanted === undefined || wanted.size === 0) {
        interest.remove(account, key);
        return;
      }
      const isNew = !interest.has(account, key);
      interest.set(account, key, wanted);
      if (isNew) await sendLastItems(owner, entity, wanted);
    };

    const observe = (owner: Jid, entity: Jid, stanza: XmlElement) => {
      observePresence(owner, entity, stanza).catch((err: unknown) =>
        ctx.log.warn({ err, entity: entity.toString() }, "learning an entity's PEP interests failed"),
      );
    };

    // Presence a contact's resource sends to an account (broadcast, probe answers, directed).
    ctx.hook(
      "presence/bare",
      ({ stanza, from, to }) => {
        observe(to.bare(), from, stanza);
        return false;
      },
      100,
    );
    ctx.hook(
      "presence/full",
      ({ stanza, from, to }) => {
        observe(to.bare(), from, stanza);
        return false;
      },
      100,
    );
    // An account's own resources: their broadcast presence.
    ctx.hook(
      "pre-presence",
      ({ stanza, session, to }) => {
        if (to === undefined && session.jid) observe(session.jid.bare(), session.jid, stanza);
        return false;
      },
      100,
    );
    ctx.hook("session/ended", ({ session }) => {
      if (!session.jid) return;
      const account = accountOf(session.jid);
      if (account) interest.remove(account, session.jid.toString());
    });
    ctx.hook("account/deleted", async ({ username }) => {
      interest.forget(username);
      for (const name of await nodes.names(username)) await nodes.delete(username, name);
    });

    const nodeName = (el: XmlElement | undefined): string => {
      const name = el?.attrs.node;
      if (name === undefined || name === "") throw pubsubError("bad-request", "nodeid-required");
      if (!validNodeName(name)) throw new StanzaError("bad-request", "invalid node name");
      return name;
    };

    const ownerOnly = (req: IqRequest): string => {
      const account = accountOf(req.to);
      if (!account) throw new StanzaError("service-unavailable");
      if (!isOwner(req.to, req.from))
        throw new StanzaError("forbidden", "only the account may change its nodes");
      return account;
    };

    /** The fields of the form submitted in `el`, without FORM_TYPE; undefined when there is none. */
    const optionsForm = (el: XmlElement | undefined, formType: string): Map<string, string[]> | undefined => {
      const form = el?.getChild("x", NS_DATA);
      if (!form) return undefined;
      // XEP-0004 §3.1: what a client hands in is a form of type submit (a cancel is handled
      // by the configure request, the only one that can be cancelled). A form without a type
      // is read as submitted, as other servers do, so a client that leaves it out still works.
      const formKind = form.attrs.type;
      if (formKind !== undefined && formKind !== "submit")
        throw new StanzaError("bad-request", "expected a form of type submit");
      const fields = formFields(form);
      const type = fields.get("FORM_TYPE")?.[0];
      if (type !== undefined && type !== formType)
        throw new StanzaError("bad-request", `expected a ${formType} form`);
      fields.delete("FORM_TYPE");
      return fields;
    };

    const newNode = async (account: string, config: NodeConfig): Promise<StoredNode> => {
      if ((await nodes.names(account)).length >= options.maxNodes)
        throw new StanzaError("resource-constraint", `an account may have ${options.maxNodes} nodes`);
      return { config, items: [] };
    };

    /**
     * Stores an item (creating the node with `create` when it does not exist, checking
     * `preconditions` when it does), notifies it and announces it to other modules.
     */
    const store = async (
      owner: Jid,
      account: string,
      name: string,
      id: string,
      payload: XmlElement,
      opts: { create: NodeConfig; preconditions?: Map<string, string[]>; origin: string | undefined },
    ): Promise<void> => {
      const serialized = payload.toString();
      if (Buffer.byteLength(serialized) > options.maxPayloadBytes)
        throw pubsubError("not-acceptable", "payload-too-big");
      const { node, fresh } = await lock.run(account, async () => {
        let node = await nodes.get(account, name);
        const fresh = node === undefined;
        if (!node) node = await newNode(account, opts.create);
        else if (opts.preconditions && !meetsPreconditions(node.config, opts.preconditions))
          throw pubsubError("conflict", "precondition-not-met");
        node.items = node.items.filter((i) => i.id !== id);
        node.items.push({ id, payload: serialized, at: ctx.clock.now() });
        await nodes.put(account, name, node);
        return { node, fresh };
      });
      ctx.log.debug({ account, node: name, fresh, origin: opts.origin }, "PEP item published");
      const event = x(
        "event",
        { xmlns: NS_PUBSUB_EVENT },
        x("items", { node: name }, x("item", { id }, payload.clone())),
      );
      await notify(owner, name, node.config, event);
      await ctx.fire("pep/published", {
        owner,
        account,
        node: name,
        id,
        payload: payload.clone(),
        accessModel: node.config.accessModel,
        origin: opts.origin,
      });
    };

    const publish = async (req: IqRequest, account: string, el: XmlElement): Promise<XmlElement> => {
      const name = nodeName(el);
      const items = el.getChildren("item");
      if (items.length !== 1) throw pubsubError("bad-request", "item-required", "publish exactly one item");
      const item = items[0]!;
      const payloads = item.elements();
      if (payloads.length === 0) throw pubsubError("bad-request", "payload-required");
      if (payloads.length > 1) throw pubsubError("bad-request", "invalid-payload", "one payload per item");
      const id = item.attrs.id || randomBytes(12).toString("base64url");
      const preconditions = optionsForm(req.payload.getChild("publish-options"), PUBLISH_OPTIONS_FORM);
      // §7.1.5: each field is a precondition on the node configuration field of that name, and a
      // field the service does not know rejects the publication (it cannot be met).
      const unknown = [...(preconditions?.keys() ?? [])].find((f) => !CONFIG_FIELDS.has(f));
      if (unknown !== undefined)
        throw pubsubError(
          "conflict",
          "precondition-not-met",
          `${unknown} is not a node option of this service`,
        );
      await store(req.to.bare(), account, name, id, payloads[0]!, {
        create: applyForm(DEFAULT_CONFIG, preconditions ?? new Map()),
        preconditions,
        origin: undefined,
      });
      return x("pubsub", { xmlns: NS_PUBSUB }, x("publish", { node: name }, x("item", { id })));
    };

    const retract = async (req: IqRequest, account: string, el: XmlElement): Promise<void> => {
      const name = nodeName(el);
      const ids = el.getChildren("item").map((i) => i.attrs.id);
      if (ids.length === 0 || ids.some((id) => !id)) throw pubsubError("bad-request", "item-required");
      const node = await lock.run(account, async () => {
        const node = await nodes.get(account, name);
        if (!node) throw new StanzaError("item-not-found", `no node ${name}`);
        const missing = ids.filter((id) => !node.items.some((i) => i.id === id));
        if (missing.length > 0) throw new StanzaError("item-not-found", `no item ${missing[0]}`);
        node.items = node.items.filter((i) => !ids.includes(i.id));
        await nodes.put(account, name, node);
        return node;
      });
      const wantsNotice = el.attrs.notify === "true" || el.attrs.notify === "1" || node.config.notifyRetract;
      if (wantsNotice) {
        const event = x(
          "event",
          { xmlns: NS_PUBSUB_EVENT },
          x("items", { node: name }, ...ids.map((id) => x("retract", { id }))),
        );
        await notify(req.to.bare(), name, node.config, event);
      }
    };

    const create = async (
      req: IqRequest,
      account: string,
      el: XmlElement,
    ): Promise<XmlElement | undefined> => {
      const name = nodeName(el);
      const form = optionsForm(req.payload.getChild("configure"), NODE_CONFIG_FORM);
      await lock.run(account, async () => {
        if (await nodes.get(account, name)) throw new StanzaError("conflict", `node ${name} exists`);
        await nodes.put(account, name, await newNode(account, applyForm(DEFAULT_CONFIG, form ?? new Map())));
      });
      return undefined;
    };

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_PUBSUB }, async (req) => {
      if (req.payload.name !== "pubsub") throw new StanzaError("bad-request", "expected <pubsub/>");
      const account = ownerOnly(req);
      const op = req.payload.elements().find((e) => e.name !== "publish-options" && e.name !== "configure");
      switch (op?.name) {
        case "publish":
          return publish(req, account, op);
        case "retract":
          await retract(req, account, op);
          return undefined;
        case "create":
          return create(req, account, op);
        case "subscribe":
        case "unsubscribe":
        case "options":
          // PEP subscriptions come from presence subscriptions and capabilities (auto-subscribe).
          throw pubsubError(
            "feature-not-implemented",
            "unsupported",
            `explicit ${op.name} is not offered on PEP nodes`,
          );
        default:
          throw new StanzaError("bad-request", "unknown pubsub request");
      }
    });

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_PUBSUB }, async (req) => {
      if (req.payload.name !== "pubsub") throw new StanzaError("bad-request", "expected <pubsub/>");
      const account = accountOf(req.to);
      if (!account || !(await ctx.storage.accounts.exists(account)))
        throw new StanzaError("service-unavailable");
      const itemsEl = req.payload.getChild("items");
      if (!itemsEl) {
        if (req.payload.getChild("subscriptions") || req.payload.getChild("affiliations"))
          return x("pubsub", { xmlns: NS_PUBSUB }, x(req.payload.elements()[0]!.name));
        throw pubsubError("feature-not-implemented", "unsupported");
      }
      const name = nodeName(itemsEl);
      const node = await nodes.get(account, name);
      if (!node) throw new StanzaError("item-not-found", `no node ${name}`);
      if (!(await mayAccess(req.to, node.config, req.from))) throw refuseAccess(node.config);
      const ids = itemsEl
        .getChildren("item")
        .map((i) => i.attrs.id)
        .filter((id): id is string => !!id);
      let selected = ids.length > 0 ? node.items.filter((i) => ids.includes(i.id)) : node.items;
      const max = itemsEl.attrs.max_items;
      if (max !== undefined) {
        if (!/^\d+$/.test(max)) throw new StanzaError("bad-request", "max_items must be a number");
        selected = Number(max) === 0 ? [] : selected.slice(-Number(max));
      }
      return x(
        "pubsub",
        { xmlns: NS_PUBSUB },
        x("items", { node: name }, ...selected.map((i) => itemElement(i))),
      );
    });

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_PUBSUB_OWNER }, async (req) => {
      if (req.payload.name !== "pubsub") throw new StanzaError("bad-request", "expected <pubsub/>");
      const account = ownerOnly(req);
      const configure = req.payload.getChild("configure");
      if (configure) {
        const name = nodeName(configure);
        const node = await nodes.get(account, name);
        if (!node) throw new StanzaError("item-not-found", `no node ${name}`);
        return x(
          "pubsub",
          { xmlns: NS_PUBSUB_OWNER },
          x("configure", { node: name }, configForm(node.config)),
        );
      }
      if (req.payload.getChild("default"))
        return x("pubsub", { xmlns: NS_PUBSUB_OWNER }, x("default", {}, configForm(DEFAULT_CONFIG)));
      throw pubsubError("feature-not-implemented", "unsupported");
    });

    ctx.handleIq({ target: "bare", type: "set", xmlns: NS_PUBSUB_OWNER }, async (req) => {
      if (req.payload.name !== "pubsub") throw new StanzaError("bad-request", "expected <pubsub/>");
      const account = ownerOnly(req);
      const op = req.payload.elements()[0];
      const name = nodeName(op);
      if (op?.name === "configure") {
        const form = op.getChild("x", NS_DATA);
        if (form?.attrs.type === "cancel") return undefined;
        const fields = optionsForm(op, NODE_CONFIG_FORM);
        if (!fields) throw new StanzaError("bad-request", "configure needs a submitted form");
        await lock.run(account, async () => {
          const node = await nodes.get(account, name);
          if (!node) throw new StanzaError("item-not-found", `no node ${name}`);
          node.config = applyForm(node.config, fields);
          await nodes.put(account, name, node);
        });
        return undefined;
      }
      if (op?.name === "delete" || op?.name === "purge") {
        const node = await lock.run(account, async () => {
          const node = await nodes.get(account, name);
          if (!node) throw new StanzaError("item-not-found", `no node ${name}`);
          if (op.name === "delete") await nodes.delete(account, name);
          else await nodes.put(account, name, { ...node, items: [] });
          return node;
        });
        if (op.name === "delete" && node.config.notifyDelete)
          await notify(
            req.to.bare(),
            name,
            node.config,
            x("event", { xmlns: NS_PUBSUB_EVENT }, x("delete", { node: name })),
          );
        if (op.name === "purge")
          await notify(
            req.to.bare(),
            name,
            node.config,
            x("event", { xmlns: NS_PUBSUB_EVENT }, x("purge", { node: name })),
          );
        return undefined;
      }
      throw pubsubError("feature-not-implemented", "unsupported");
    });

    ctx.provide<PepApi>({
      async item(owner, name, id) {
        const account = accountOf(owner);
        const node = account ? await nodes.get(account, name) : undefined;
        const found = id === undefined ? node?.items.at(-1) : node?.items.find((i) => i.id === id);
        const payload = found ? parseElement(found.payload) : undefined;
        if (!node || !found || !payload) return undefined;
        return { id: found.id, payload, accessModel: node.config.accessModel };
      },
      async publish(owner, name, id, payload, opts) {
        const account = accountOf(owner);
        if (!account) throw new StanzaError("service-unavailable");
        const create = { ...DEFAULT_CONFIG, ...(opts.accessModel ? { accessModel: opts.accessModel } : {}) };
        await store(owner.bare(), account, name, id, payload, { create, origin: opts.origin });
      },
    });
  },
});

export type { PepAccessModel, PepApi, PepItem, PepPublishedEvent } from "./api.js";

function safeJid(s: string): Jid | undefined {
  try {
    return parseJid(s);
  } catch {
    return undefined;
  }
}
