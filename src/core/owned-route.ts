/**
 * A route for a service domain whose addresses are each served by one node of a cluster at
 * a time (the rooms of a group chat service): a stanza for an owned address is handled by
 * the local route on the node owning its name (`NodeBus.owner`, which claims it when no live
 * node does) and sent there from any other node, as a request of kind `route:DOMAIN` that is
 * answered once the owner has handled it. So a client's stanzas keep their order, and the
 * owner's errors reach the sender as they would from a local service (its router bounces
 * them to the sender's full JID, wherever it is bound). On a single server the local route
 * is used as it is.
 */
import { StanzaError } from "./errors.js";
import { type Jid, parseJid } from "./jid.js";
import type { NodeBus } from "./nodes.js";
import type { Route, Router } from "./router.js";
import type { XmlElement } from "./xml/element.js";
import { parseElement } from "./xml/fragment.js";

/** A stanza goes from the node that received it to the owner, and at most once more if ownership moved meanwhile. */
const MAX_HOPS = 2;
/**
 * How long a node waits for the owner to have handled a stanza. A node that is gone answers
 * at once (NATS has no responder for it); this bounds a live owner that is slow, after which
 * the sender is told to try again although the owner may still handle it.
 */
const FORWARD_TIMEOUT_MS = 15_000;

export interface OwnedRouteOptions {
  /**
   * The service's domain (the route is registered for it); names the requests between nodes
   * (`route:DOMAIN`) unless `requestKind` does.
   */
  domain: string;
  /** The requests' kind, for a route that serves many domains (server-to-server links). */
  requestKind?: string;
  /** What ownership claims are kept under (`NodeBus.owner`'s scope). */
  scope: string;
  /** The service itself, on this node. */
  local: Route;
  nodes: NodeBus;
  router: Router;
  /** The name owning `to` (e.g. the room's bare JID), or undefined for what any node serves itself. */
  nameOf(to: Jid): string | undefined;
  /**
   * Called when this node starts serving a name it did not serve (it claimed it, or took it
   * over), before the first stanza for it: a service reads back what it had stored.
   */
  adopt?(name: string): void | Promise<void>;
  /** Called before each stanza this node sends to the owner `node` (a service may note who owns what). */
  forwarding?(name: string, node: string, stanza: XmlElement, from: Jid): void;
}

export interface OwnedRoute extends Route {
  /** Stops serving other nodes' stanzas. */
  stop(): void;
  /** This node no longer serves `name` (the thing ended, or another node took it over). */
  release(name: string): void;
}

export function ownedRoute(o: OwnedRouteOptions): OwnedRoute {
  const kind = o.requestKind ?? `route:${o.domain}`;
  /** Names this node serves now (adopted). */
  const serving = new Set<string>();
  const adopting = new Map<string, Promise<void>>();
  /** Stanzas that came from another node, with how many nodes they crossed. */
  const hops = new WeakMap<XmlElement, number>();

  const here = (name: string, stanza: XmlElement, from: Jid, to: Jid): void | Promise<void> => {
    if (serving.has(name) || !o.adopt) {
      serving.add(name);
      return o.local.deliver(stanza, from, to);
    }
    let p = adopting.get(name);
    if (!p) {
      p = Promise.resolve(o.adopt(name)).then(() => {
        adopting.delete(name);
        serving.add(name);
      });
      p.catch(() => adopting.delete(name));
      adopting.set(name, p);
    }
    return p.then(() => o.local.deliver(stanza, from, to));
  };

  const forward = async (name: string, owner: string, stanza: XmlElement, from: Jid, to: Jid) => {
    const crossed = hops.get(stanza) ?? 0;
    if (crossed >= MAX_HOPS)
      throw new StanzaError("recipient-unavailable", "the node serving this address changed; try again", {
        type: "wait",
      });
    o.forwarding?.(name, owner, stanza, from);
    const answer = await o.nodes.ask(
      owner,
      kind,
      {
        stanza: stanza.toString(),
        from: from.toString(),
        to: to.toString(),
        hops: crossed + 1,
      },
      FORWARD_TIMEOUT_MS,
    );
    // Unreachable: it died (another node takes over once the cluster counts it dead) or is stopping.
    if (answer !== "ok")
      throw new StanzaError(
        "recipient-unavailable",
        "the node serving this address is unreachable; try again",
        {
          type: "wait",
        },
      );
  };

  const stopServing = o.nodes.serve(kind, async (body) => {
    if (typeof body !== "object" || body === null || Array.isArray(body)) return "bad";
    const { stanza: text, from, to, hops: crossed } = body;
    if (typeof text !== "string" || typeof from !== "string" || typeof to !== "string") return "bad";
    const stanza = parseElement(text);
    if (!stanza) return "bad";
    hops.set(stanza, typeof crossed === "number" ? crossed : MAX_HOPS);
    // Through the router, so what the service throws goes back to the sender as an error.
    await o.router.deliver(stanza, parseJid(from), parseJid(to));
    return "ok";
  });

  return {
    kind: "service",
    deliver(stanza, from, to) {
      const name = o.nameOf(to);
      if (name === undefined) return o.local.deliver(stanza, from, to);
      const known = o.nodes.ownerNow(o.scope, name);
      if (known === o.nodes.node) return here(name, stanza, from, to);
      if (known !== undefined) return forward(name, known, stanza, from, to);
      return o.nodes.owner(o.scope, name).then((owner) => {
        if (owner === o.nodes.node) return here(name, stanza, from, to);
        serving.delete(name);
        return forward(name, owner, stanza, from, to);
      });
    },
    stop: stopServing,
    release(name) {
      serving.delete(name);
    },
  };
}
