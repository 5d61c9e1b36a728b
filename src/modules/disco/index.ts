/**
 * Service Discovery (XEP-0030) for the server and, on their behalf, for its
 * accounts. The core's DiscoRegistry is the single source of identities and
 * features: every module registers its own with ctx.addFeature/addIdentity.
 * XEP-0128 extension forms come from ctx.advertised.extensions. Other modules can
 * list items (a component, an upload service) and serve nodes through the API
 * this module provides.
 *
 * Account JIDs (XEP-0030 §8): disco#info answers only the account itself and
 * entities allowed to see its presence; anyone else, and every request for an
 * account that does not exist, gets service-unavailable. disco#items gives
 * such requesters an empty result, and the others the available resources.
 */
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import type { DiscoIdentity, DiscoTarget } from "../../core/features.js";
import type { IqRequest } from "../../core/iq.js";
import type { Jid } from "../../core/jid.js";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DISCO_INFO, NS_DISCO_ITEMS } from "../../core/xml/namespaces.js";
import { accountVisibleTo } from "../roster/api.js";

export interface DiscoItem {
  jid: string;
  name?: string;
  node?: string;
}

/** What a disco request is about: who asks, which JID (the domain or an account's bare JID), which node. */
export interface DiscoQuery {
  from: Jid;
  to: Jid;
  node?: string;
}

export interface DiscoNodeInfo {
  identities: DiscoIdentity[];
  features: string[];
  /** XEP-0128 data forms. */
  extensions?: XmlElement[];
}

/** A node served on the domain or on every account JID. */
export interface DiscoNode {
  info(query: DiscoQuery): DiscoNodeInfo | Promise<DiscoNodeInfo>;
  /** Items of the node; none when omitted. */
  items?(query: DiscoQuery): DiscoItem[] | Promise<DiscoItem[]>;
}

export type DiscoItemsProvider = (query: DiscoQuery) => DiscoItem[] | Promise<DiscoItem[]>;

/** Published as ctx.api("disco"). Each method returns the function that undoes the registration. */
export interface DiscoApi {
  /** Adds items to node-less disco#items answers (for accounts: only to requesters allowed to see them). */
  addItems(target: DiscoTarget, provider: DiscoItemsProvider): () => void;
  addNode(target: DiscoTarget, node: string, handler: DiscoNode): () => void;
}

function infoQuery(node: string | undefined, info: DiscoNodeInfo): XmlElement {
  return x(
    "query",
    { xmlns: NS_DISCO_INFO, node },
    ...info.identities.map((i) => x("identity", { category: i.category, type: i.type, name: i.name })),
    ...info.features.map((f) => x("feature", { var: f })),
    ...(info.extensions ?? []).map((e) => e.clone()),
  );
}

function itemsQuery(node: string | undefined, items: DiscoItem[]): XmlElement {
  return x(
    "query",
    { xmlns: NS_DISCO_ITEMS, node },
    ...items.map((i) => x("item", { jid: i.jid, name: i.name, node: i.node })),
  );
}

/** The node asked for, after checking the payload is a <query/>. */
function requestedNode(req: IqRequest): string | undefined {
  if (req.payload.name !== "query") throw new StanzaError("bad-request", "expected a <query/> element");
  return req.payload.attrs.node;
}

export default defineModule({
  name: "disco",
  description: "Service discovery for the server and its accounts (XEP-0030, XEP-0128)",
  xeps: [
    { xep: "0030", version: "2.5.0", status: "complete" },
    { xep: "0128", version: "1.0.1", status: "complete" },
  ],
  options: z.object({
    /** The name of the server identity (category "server", type "im"). */
    name: z.string().min(1).default("Switchboard"),
  }),
  setup(ctx) {
    const { advertised, storage, sessions, domain } = ctx;
    const providers: Record<DiscoTarget, DiscoItemsProvider[]> = { host: [], account: [] };
    const nodes: Record<DiscoTarget, Map<string, DiscoNode>> = { host: new Map(), account: new Map() };

    for (const target of ["host", "account"] as const) {
      ctx.addFeature(NS_DISCO_INFO, target);
      ctx.addFeature(NS_DISCO_ITEMS, target);
    }
    ctx.addIdentity({ category: "server", type: "im", name: ctx.options.name }, "host");
    ctx.addIdentity({ category: "account", type: "registered" }, "account");

    const registryInfo = (target: DiscoTarget): DiscoNodeInfo => ({
      identities: advertised.identities(target),
      features: advertised.features(target),
      ...(target === "host" ? { extensions: [...advertised.extensions] } : {}),
    });

    const nodeOf = (target: DiscoTarget, node: string): DiscoNode => {
      const handler = nodes[target].get(node);
      if (!handler) throw new StanzaError("item-not-found", "no such node");
      return handler;
    };

    const query = (req: IqRequest, node: string | undefined): DiscoQuery => ({
      from: req.from,
      to: req.to,
      ...(node !== undefined ? { node } : {}),
    });

    /** disco#info of the JID (from the registry) or of one of its nodes. */
    const info = async (
      target: DiscoTarget,
      req: IqRequest,
      node: string | undefined,
    ): Promise<XmlElement> => {
      if (node === undefined) return infoQuery(undefined, registryInfo(target));
      return infoQuery(node, await nodeOf(target, node).info(query(req, node)));
    };

    /** disco#items of one of the JID's nodes, or of the JID itself: `own` items first, then the providers'. */
    const items = async (
      target: DiscoTarget,
      req: IqRequest,
      node: string | undefined,
      own: DiscoItem[] = [],
    ): Promise<XmlElement> => {
      const q = query(req, node);
      if (node !== undefined) return itemsQuery(node, (await nodeOf(target, node).items?.(q)) ?? []);
      const lists = await Promise.all(providers[target].map((p) => p(q)));
      return itemsQuery(undefined, [...own, ...lists.flat()]);
    };

    const visible = (req: IqRequest): Promise<boolean> =>
      accountVisibleTo(storage, domain, ctx.accountKey(req.to), req.from);

    ctx.handleIq({ target: "host", type: "get", xmlns: NS_DISCO_INFO }, (req) =>
      info("host", req, requestedNode(req)),
    );

    ctx.handleIq({ target: "host", type: "get", xmlns: NS_DISCO_ITEMS }, (req) =>
      items("host", req, requestedNode(req)),
    );

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_DISCO_INFO }, async (req) => {
      const node = requestedNode(req);
      if (!(await visible(req))) throw new StanzaError("service-unavailable");
      return info("account", req, node);
    });

    ctx.handleIq({ target: "bare", type: "get", xmlns: NS_DISCO_ITEMS }, async (req) => {
      const node = requestedNode(req);
      // XEP-0030 §8: unknown accounts and unauthorised requesters get an empty result, not an error.
      if (!(await visible(req))) return itemsQuery(node, []);
      const resources = sessions.availableOf(ctx.accountKey(req.to)).map((s) => ({ jid: s.jid!.toString() }));
      return items("account", req, node, resources);
    });

    const api: DiscoApi = {
      addItems(target, provider) {
        providers[target].push(provider);
        return () => {
          const list = providers[target];
          const i = list.indexOf(provider);
          if (i >= 0) list.splice(i, 1);
        };
      },
      addNode(target, node, handler) {
        const map = nodes[target];
        if (map.has(node)) throw new Error(`disco node ${node} is already served for ${target}`);
        map.set(node, handler);
        return () => {
          if (map.get(node) === handler) map.delete(node);
        };
      },
    };
    ctx.provide(api);
  },
});

export { NS_DISCO_INFO, NS_DISCO_ITEMS } from "../../core/xml/namespaces.js";
