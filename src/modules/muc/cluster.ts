/**
 * Group chat in a cluster: each room is served by one node at a time, the one holding its
 * claim (`NodeBus.owner`, scope "muc", by room bare JID). The service's route sends every
 * stanza for a room or an occupant JID to that node (core/owned-route.ts); what the room
 * sends to occupants on other nodes goes to their full JIDs as any stanza does. Stanzas to
 * the service itself (disco, ping) are answered by whichever node receives them.
 *
 * When the node serving a room leaves the cluster (dies, stops, drains), the next stanza for
 * the room makes another node claim it: a persistent room is read back from storage, a
 * temporary one starts afresh. Its occupants did not move with it:
 * - those bound on the node that died are gone with their sessions;
 * - those bound here are told they left because the service went (unavailable presence from
 *   their occupant JID with status 110 and 332, XEP-0045 §10.9's shutdown code): a client
 *   joins again to be in the room on its new node. This node learns who is in which room
 *   from the self-presences (status 110) the rooms send its sessions;
 * - the rooms this node serves drop the sessions of a node that died (status 333).
 * A temporary room so ended leaves no archive: the node taking its name over removes it
 * before serving the name again, and the first live node takes the temporary rooms of a
 * node that died over at once for that (NodeBus.onTakeover); a persistent room is untouched.
 */
import type { Jid } from "../../core/jid.js";
import type { NodeBus } from "../../core/nodes.js";
import { type OwnedRoute, ownedRoute } from "../../core/owned-route.js";
import type { Router } from "../../core/router.js";
import type { SessionDirectory } from "../../core/session-directory.js";
import type { XmlElement } from "../../core/xml/element.js";
import { NS_MUC_USER } from "../../core/xml/namespaces.js";
import type { Affiliation } from "./room.js";
import { type MucService, serviceGonePresence } from "./service.js";

/** The claims of rooms are kept under this scope. */
export const ROOM_SCOPE = "muc";

/** A room's localpart from its bare JID (the claim's name). */
const localpartOf = (room: string) => room.slice(0, room.indexOf("@"));

/** A session of this node in a room another node serves. */
interface Membership {
  nick: string;
  affiliation: Affiliation;
}

export interface ClusterRoomsDeps {
  domain: string;
  nodes: NodeBus;
  router: Router;
  sessions: SessionDirectory;
  service: MucService;
  onError(err: unknown, what: string): void;
}

export class ClusterRooms {
  readonly route: OwnedRoute;
  /** The node each room was last sent to, by room bare JID. */
  private readonly servedBy = new Map<string, string>();
  /** Sessions of this node in rooms other nodes serve: room bare JID → full JID → membership. */
  private readonly memberships = new Map<string, Map<string, Membership>>();
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly d: ClusterRoomsDeps) {
    this.route = ownedRoute({
      domain: d.domain,
      scope: ROOM_SCOPE,
      nodes: d.nodes,
      router: d.router,
      local: { kind: "service", deliver: (stanza, from, to) => d.service.deliver(stanza, from, to) },
      nameOf: (to) => (to.local === "" ? undefined : to.bareString),
      adopt: (room) => {
        this.servedBy.delete(room);
        return d.service.adopt(localpartOf(room));
      },
      forwarding: (room, node) => {
        this.servedBy.set(room, node);
      },
    });
    this.cleanups.push(
      () => this.route.stop(),
      d.nodes.onNodeGone((node) => {
        this.nodeGone(node).catch((err: unknown) => d.onError(err, "handling a node that left"));
      }),
      d.nodes.onTakeover(ROOM_SCOPE, {
        takenOver: (room) => d.service.takenOver(localpartOf(room)),
        inherit: (room) => d.service.endedWithItsNode(localpartOf(room)),
      }),
      d.nodes.onOwnershipLost((scope, room) => {
        if (scope !== ROOM_SCOPE) return;
        this.route.release(room);
        d.service.evict(localpartOf(room)).catch((err: unknown) => d.onError(err, "handing a room over"));
      }),
    );
  }

  /** A room ended here: the next node to need its name claims it. */
  ended(room: string): void {
    this.route.release(room);
    this.d.nodes.disown(ROOM_SCOPE, room).catch((err: unknown) => this.d.onError(err, "releasing a room"));
  }

  /**
   * Watches what rooms on other nodes send this node's sessions about themselves (status
   * 110): an available presence means the session is in the room under that nick, an
   * unavailable one that it left (a nick change says so too, then comes in again).
   */
  outbound(session: { jid?: Jid | undefined }, stanza: XmlElement): void {
    if (stanza.name !== "presence" || !session.jid) return;
    const from = stanza.attrs.from;
    if (from === undefined) return;
    const slash = from.indexOf("/");
    const at = from.indexOf("@");
    if (slash < 0 || at < 0 || from.slice(at + 1, slash) !== this.d.domain) return;
    const user = stanza.getChild("x", NS_MUC_USER);
    if (!user?.getChildren("status").some((s) => s.attrs.code === "110")) return;
    const room = from.slice(0, slash);
    const jid = session.jid.toString();
    if (stanza.attrs.type === "unavailable") {
      const members = this.memberships.get(room);
      members?.delete(jid);
      if (members?.size === 0) this.memberships.delete(room);
      return;
    }
    if (stanza.attrs.type !== undefined) return;
    const node = this.servedBy.get(room);
    if (node === undefined || node === this.d.nodes.node) return;
    let members = this.memberships.get(room);
    if (!members) {
      members = new Map();
      this.memberships.set(room, members);
    }
    const affiliation = (user.getChild("item")?.attrs.affiliation ?? "none") as Affiliation;
    members.set(jid, { nick: from.slice(slash + 1), affiliation });
  }

  /** A session of this node ended: it is in no room any more. */
  sessionEnded(jid: Jid): void {
    const full = jid.toString();
    for (const [room, members] of this.memberships) {
      members.delete(full);
      if (members.size === 0) this.memberships.delete(room);
    }
  }

  private async nodeGone(node: string): Promise<void> {
    // This node's sessions in the rooms the node served: those rooms are gone with it.
    const sends: (void | Promise<void>)[] = [];
    for (const [room, members] of [...this.memberships]) {
      if (this.servedBy.get(room) !== node) continue;
      this.memberships.delete(room);
      this.servedBy.delete(room);
      for (const [jid, m] of members) {
        const from = `${room}/${m.nick}`;
        const p = serviceGonePresence(m.affiliation);
        p.attrs.from = from;
        p.attrs.to = jid;
        sends.push(this.d.router.send(p));
      }
    }
    for (const [room, served] of [...this.servedBy]) if (served === node) this.servedBy.delete(room);
    await Promise.all(sends);
    // The rooms this node serves lose the occupants whose sessions went with the node.
    await this.d.service.dropSessions((jid) => {
      if (!this.d.router.isLocalDomain(jid.domain)) return false;
      const s = this.d.sessions.get(jid.local, jid.resource, jid.domain);
      return !s || s.closed;
    });
  }

  stop(): void {
    for (const undo of this.cleanups.splice(0)) undo();
  }
}
