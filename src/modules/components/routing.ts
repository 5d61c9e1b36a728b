/**
 * Routes to the registered components (read from the registry at each poll) that are not
 * attached to this node, above federation: a registered component's domain is never looked
 * up as another server.
 *
 * On one server, a stanza for a registered component that is not connected is answered
 * `service-unavailable` (type wait). In a cluster a component attaches to one node, which
 * claims its domain (`NodeBus.owner`, scope "component"); a second connection for the domain
 * on any node is refused with `conflict`, as on one server. A stanza for a component attached
 * to another node is sent to that node (`NodeBus.holder` finds it without claiming), which
 * hands it to the component; one attached nowhere is answered as on one server. Every node
 * lists the components attached anywhere in its disco#items (as of the last poll).
 */
import type { Logger } from "pino";
import { StanzaError } from "../../core/errors.js";
import { tryParseJid } from "../../core/jid.js";
import type { NodeBus } from "../../core/nodes.js";
import type { RemoteRoute, Router } from "../../core/router.js";
import type { XmlElement } from "../../core/xml/element.js";
import { parseElement } from "../../core/xml/fragment.js";

/** The claims of attached components are kept under this scope (one per component domain). */
export const COMPONENT_SCOPE = "component";
const KIND = "component:deliver";
/** How long a node waits for the component's node to have handed a stanza over. */
const FORWARD_TIMEOUT_MS = 10_000;

export interface ComponentRoutesDeps {
  /** The cluster's nodes; undefined on one server. */
  nodes: NodeBus | undefined;
  router: Router;
  log: Logger;
  /** The registered components' domains (shared storage in a cluster). */
  registered(): Promise<string[]>;
  /** Is the component of `domain` attached to this node? */
  attachedHere(domain: string): boolean;
}

export class ComponentRoutes {
  /** The remote route for registered components not attached here. */
  readonly route: RemoteRoute;
  private domains = new Set<string>();
  private attachedAnywhere = new Set<string>();
  /** The node each domain's component was last found on; the lookup in flight while one is. */
  private readonly holders = new Map<string, Promise<string | undefined>>();
  private readonly stopServing: (() => void) | undefined;

  constructor(private readonly d: ComponentRoutesDeps) {
    this.route = {
      kind: "component",
      priority: 10,
      canRoute: (domain) => this.isRegistered(domain),
      send: (stanza, to) => this.send(stanza, to.domain, to.toString()),
    };
    this.stopServing = d.nodes?.serve(KIND, async (body) => {
      if (typeof body !== "object" || body === null || Array.isArray(body)) return "bad";
      const { stanza: text, from, to } = body;
      if (typeof text !== "string" || typeof from !== "string" || typeof to !== "string") return "bad";
      const stanza = parseElement(text);
      const fromJid = tryParseJid(from);
      const toJid = tryParseJid(to);
      if (!stanza || !fromJid || !toJid) return "bad";
      if (!d.attachedHere(toJid.domain)) return "gone";
      await d.router.deliver(stanza, fromJid, toJid);
      return "ok";
    });
  }

  /** Reads the registered domains again (components added or removed anywhere), and where each is attached. */
  async refresh(): Promise<void> {
    const domains = await this.d.registered();
    this.domains = new Set(domains);
    const attached = new Set<string>();
    if (this.d.nodes)
      for (const domain of domains) {
        if ((await this.d.nodes.holder(COMPONENT_SCOPE, domain)) !== undefined) attached.add(domain);
      }
    this.attachedAnywhere = attached;
  }

  /** Was `domain` registered at the last refresh, or has its component authenticated since? */
  isRegistered(domain: string): boolean {
    return this.domains.has(domain);
  }

  /**
   * A component of `domain` authenticated with the registry's secret, so the domain is
   * registered even if the last refresh predates it: should the component drop before the
   * next one, its domain still answers `service-unavailable` instead of being looked up over
   * federation. The next refresh reads the registry again (a removal then shows).
   */
  registeredNow(domain: string): void {
    this.domains.add(domain);
  }

  /** The components attached to some node of a cluster, as the last refresh found them (none on one server). */
  attached(): string[] {
    return [...this.attachedAnywhere];
  }

  /** Claims `domain` for a component attaching here: false when it is attached to another node. */
  async claim(domain: string): Promise<boolean> {
    const { nodes } = this.d;
    return !nodes || (await nodes.owner(COMPONENT_SCOPE, domain, { fresh: true })) === nodes.node;
  }

  /** The component of `domain` left this node: the next node it attaches to claims it. */
  release(domain: string): void {
    this.d.nodes
      ?.disown(COMPONENT_SCOPE, domain)
      .catch((err: unknown) => this.d.log.error({ err, domain }, "releasing a component's claim failed"));
  }

  stop(): void {
    this.stopServing?.();
  }

  private send(stanza: XmlElement, domain: string, to: string): void {
    const from = tryParseJid(stanza.attrs.from) ?? tryParseJid(this.d.router.domain)!;
    const notConnected = () =>
      this.d.router.bounce(
        stanza,
        new StanzaError("service-unavailable", `the component ${domain} is not connected`, { type: "wait" }),
        from,
      );
    const { nodes } = this.d;
    if (!nodes) {
      notConnected();
      return;
    }
    const body = { stanza: stanza.toString(), from: from.toString(), to };
    const handOver = async (node: string | undefined) =>
      node !== undefined &&
      node !== nodes.node &&
      (await nodes.ask(node, KIND, body, FORWARD_TIMEOUT_MS)) === "ok";
    const lookup = this.holderOf(nodes, domain);
    lookup
      .then(async (node) => {
        if (await handOver(node)) return;
        // Gone from where it was (it moved, or its node left): look once more.
        this.forget(domain, lookup);
        if (await handOver(await this.holderOf(nodes, domain))) return;
        this.forget(domain);
        notConnected();
      })
      .catch((err: unknown) => {
        this.forget(domain);
        this.d.log.error({ err, domain }, "sending a stanza to a component's node failed");
        this.d.router.bounce(stanza, new StanzaError("internal-server-error"), from);
      });
  }

  /** Where `domain`'s component is attached; stanzas for one domain share one lookup, so they keep their order. */
  private holderOf(nodes: NodeBus, domain: string): Promise<string | undefined> {
    let lookup = this.holders.get(domain);
    if (!lookup) {
      lookup = nodes.holder(COMPONENT_SCOPE, domain);
      this.holders.set(domain, lookup);
    }
    return lookup;
  }

  private forget(domain: string, lookup?: Promise<string | undefined>): void {
    if (lookup === undefined || this.holders.get(domain) === lookup) this.holders.delete(domain);
  }
}
