/**
 * Federation links in a cluster: the outbound link to each remote domain is held by one node
 * at a time, the one holding its claim (`NodeBus.owner`, scope "s2s", by remote domain). A
 * stanza for a remote domain is sent on this node's link when this node owns the domain, and
 * handed to the owner over NATS otherwise (core/owned-route.ts: the owner answers once the
 * stanza is queued on its link, so a sender's stanzas keep their order). When the owner
 * leaves the cluster the next stanza for the domain makes another node claim it and open its
 * own link. Inbound links are not claimed: a remote server connects to whichever node its DNS
 * or load balancer gives it, and that node delivers through the cluster's routing.
 */

import type { Logger } from "pino";
import { StanzaError } from "../../core/errors.js";
import { type Jid, tryParseJid } from "../../core/jid.js";
import type { NodeBus } from "../../core/nodes.js";
import { ownedRoute } from "../../core/owned-route.js";
import type { RemoteRoute, Router } from "../../core/router.js";
import type { XmlElement } from "../../core/xml/element.js";

/** The claims of federation links are kept under this scope (one per remote domain). */
export const LINK_SCOPE = "s2s";

export interface OwnedLinksDeps {
  nodes: NodeBus;
  router: Router;
  log: Logger;
  /** Queues a stanza on this node's link to `to.domain` (Federation.send). */
  sendHere(stanza: XmlElement, to: Jid): void;
}

/** The remote route of a cluster node: stanzas go out on the link of the node owning their domain. */
export function ownedLinks(d: OwnedLinksDeps): RemoteRoute & { stop(): void } {
  const route = ownedRoute({
    domain: d.router.domain,
    requestKind: "s2s:send",
    scope: LINK_SCOPE,
    nodes: d.nodes,
    router: d.router,
    local: { kind: "s2s", deliver: (stanza, _from, to) => d.sendHere(stanza, to) },
    nameOf: (to) => to.domain,
  });
  return {
    kind: "s2s",
    priority: 0,
    canRoute: () => true,
    send(stanza, to) {
      // Stanzas to other domains come from ours, stamped by the router or a verified stream.
      const from = tryParseJid(stanza.attrs.from) ?? tryParseJid(d.router.domain)!;
      const failed = (err: unknown) => {
        if (!(err instanceof StanzaError))
          d.log.error({ err, to: to.domain }, "handing a stanza to the link's node failed");
        d.router.bounce(
          stanza,
          err instanceof StanzaError ? err : new StanzaError("remote-server-timeout"),
          from,
        );
      };
      try {
        const r = route.deliver(stanza, from, to);
        if (r) r.catch(failed);
      } catch (err) {
        failed(err);
      }
    },
    stop: () => route.stop(),
  };
}
