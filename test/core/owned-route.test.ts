/**
 * The owned route, between two nodes joined by an in-memory NodeBus (the cluster's claims and
 * requests without NATS): a stanza for a name is handled on the node owning it, whichever node
 * it reaches; the first stanza a node serves for a name adopts it first; a stanza for a name
 * owned by an unreachable node, or one that would cross nodes a third time, bounces to its
 * sender with recipient-unavailable; addresses without a name are served where they arrive.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { ServerEvents } from "../../src/core/events.js";
import { HookBus } from "../../src/core/hooks.js";
import { type Jid, parseJid } from "../../src/core/jid.js";
import type { NodeBus, NodeMessage } from "../../src/core/nodes.js";
import { ownedRoute } from "../../src/core/owned-route.js";
import { Router } from "../../src/core/router.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";

const DOMAIN = "localhost";
const SERVICE = "rooms.localhost";

/** Nodes sharing one table of claims; a request reaches the other node's handler unless it is down. */
class Bus {
  readonly claims = new Map<string, string>();
  readonly handlers = new Map<
    string,
    Map<string, (body: NodeMessage) => NodeMessage | Promise<NodeMessage>>
  >();
  readonly down = new Set<string>();
  readonly asked: { from: string; to: string; kind: string }[] = [];
  /** When set: the owner each node believes in, whatever the claims say. */
  believed: Record<string, string> | undefined;

  nodeBus(node: string): NodeBus {
    const handlers = new Map<string, (body: NodeMessage) => NodeMessage | Promise<NodeMessage>>();
    this.handlers.set(node, handlers);
    return {
      node,
      serve: (kind, handler) => {
        handlers.set(kind, handler);
        return () => handlers.delete(kind);
      },
      ask: async (to, kind, body) => {
        this.asked.push({ from: node, to, kind });
        if (this.down.has(to)) return undefined;
        const handler = this.handlers.get(to)?.get(kind);
        return handler ? await handler(JSON.parse(JSON.stringify(body)) as NodeMessage) : undefined;
      },
      owner: async (scope, name) => {
        if (this.believed) return this.believed[node]!;
        const key = `${scope}/${name}`;
        const held = this.claims.get(key);
        if (held !== undefined && !this.down.has(held)) return held;
        this.claims.set(key, node);
        return node;
      },
      ownerNow: (scope, name) => this.believed?.[node] ?? this.claims.get(`${scope}/${name}`),
      holder: async (scope, name) => {
        const held = this.claims.get(`${scope}/${name}`);
        return held !== undefined && !this.down.has(held) ? held : undefined;
      },
      disown: async (scope, name) => {
        if (this.claims.get(`${scope}/${name}`) === node) this.claims.delete(`${scope}/${name}`);
      },
      onNodeGone: () => () => undefined,
      onOwnershipLost: () => () => undefined,
      onTakeover: () => () => undefined,
    };
  }
}

interface TestNode {
  router: Router;
  handled: { stanza: string; from: string; to: string }[];
  adopted: string[];
  /** Stanzas the router delivered to local users (errors bounced to senders). */
  toUsers: XmlElement[];
}

function node(bus: Bus, name: string): TestNode {
  const hooks = new HookBus<ServerEvents>();
  const router = new Router(DOMAIN, hooks, pino({ level: "silent" }));
  const n: TestNode = { router, handled: [], adopted: [], toUsers: [] };
  for (const kind of ["message", "presence", "iq"] as const) {
    hooks.on(`${kind}/full`, ({ stanza }) => {
      n.toUsers.push(stanza);
      return true;
    });
  }
  const route = ownedRoute({
    domain: SERVICE,
    scope: "rooms",
    nodes: bus.nodeBus(name),
    router,
    local: {
      kind: "service",
      deliver: async (stanza: XmlElement, from: Jid, to: Jid) => {
        await new Promise((r) => setTimeout(r, 1));
        n.handled.push({
          stanza: stanza.getChildText("body") ?? stanza.name,
          from: from.toString(),
          to: to.toString(),
        });
      },
    },
    nameOf: (to) => (to.local === "" ? undefined : to.bareString),
    adopt: async (room) => {
      await new Promise((r) => setTimeout(r, 5));
      n.adopted.push(room);
    },
  });
  router.addRoute(SERVICE, route);
  return n;
}

const groupchat = (to: string, body: string) => x("message", { to, type: "groupchat" }, x("body", {}, body));

async function send(n: TestNode, from: string, stanza: XmlElement): Promise<void> {
  stanza.attrs.from = from;
  await n.router.deliver(stanza, parseJid(from), parseJid(stanza.attrs.to!));
}

test("stanzas for a name are handled on its owner, in order, whichever node they reach", async () => {
  const bus = new Bus();
  const a = node(bus, "a");
  const b = node(bus, "b");
  await send(a, "alice@localhost/1", groupchat(`lounge@${SERVICE}`, "first"));
  assert.deepEqual(a.adopted, [`lounge@${SERVICE}`], "adopted once, before its first stanza");
  for (const body of ["two", "three", "four"])
    await send(b, "bob@localhost/1", groupchat(`lounge@${SERVICE}/Alice`, body));
  await send(a, "alice@localhost/1", groupchat(`lounge@${SERVICE}`, "five"));
  assert.deepEqual(
    a.handled.map((h) => h.stanza),
    ["first", "two", "three", "four", "five"],
  );
  assert.deepEqual(b.handled, []);
  assert.deepEqual(b.adopted, []);
  assert.equal(a.handled[1]!.from, "bob@localhost/1", "the sender's address crosses with the stanza");
  assert.equal(a.handled[1]!.to, `lounge@${SERVICE}/Alice`);
  assert.deepEqual(a.adopted, [`lounge@${SERVICE}`], "adopted only once");
  assert.deepEqual(
    bus.asked.map((q) => `${q.from}→${q.to} ${q.kind}`),
    ["b→a route:rooms.localhost", "b→a route:rooms.localhost", "b→a route:rooms.localhost"],
  );
});

test("the service's own address is served by the node it reaches", async () => {
  const bus = new Bus();
  const a = node(bus, "a");
  const b = node(bus, "b");
  await send(a, "alice@localhost/1", groupchat(`lounge@${SERVICE}`, "claim"));
  await send(
    b,
    "bob@localhost/1",
    x("iq", { to: SERVICE, type: "get", id: "q" }, x("ping", { xmlns: "urn:xmpp:ping" })),
  );
  assert.deepEqual(
    b.handled.map((h) => h.to),
    [SERVICE],
  );
  assert.equal(bus.asked.length, 0);
});

test("an unreachable owner: the sender gets recipient-unavailable (wait); once it is gone the name is taken over", async () => {
  const bus = new Bus();
  const a = node(bus, "a");
  const b = node(bus, "b");
  await send(a, "alice@localhost/1", groupchat(`lounge@${SERVICE}`, "claim"));
  // a is unreachable, but still counted alive until the node timeout: its claim stands.
  bus.down.add("a");
  await send(b, "bob@localhost/1", groupchat(`lounge@${SERVICE}`, "lost"));
  const error = b.toUsers.find((s) => s.attrs.type === "error");
  assert.ok(error, "an error reached bob");
  assert.equal(error.attrs.to, "bob@localhost/1");
  assert.equal(error.attrs.from, `lounge@${SERVICE}`);
  const condition = error.getChild("error");
  assert.equal(condition?.attrs.type, "wait");
  assert.ok(condition?.getChild("recipient-unavailable"), error.toString());
  assert.equal(b.handled.length, 0);

  // The cluster counted a dead: the next stanza makes b claim the name and adopt it.
  bus.claims.delete(`rooms/lounge@${SERVICE}`);
  await send(b, "bob@localhost/1", groupchat(`lounge@${SERVICE}`, "taken over"));
  assert.deepEqual(b.adopted, [`lounge@${SERVICE}`]);
  assert.deepEqual(
    b.handled.map((h) => h.stanza),
    ["taken over"],
  );
});

test("a stanza does not cross nodes a third time when ownership keeps moving", async () => {
  const bus = new Bus();
  const a2 = node(bus, "a");
  const b2 = node(bus, "b");
  // Each node believes the other owns the name.
  bus.believed = { a: "b", b: "a" };
  await send(a2, "alice@localhost/1", groupchat(`lounge@${SERVICE}`, "ping-pong"));
  assert.deepEqual(a2.handled, []);
  assert.deepEqual(b2.handled, []);
  const error = [...a2.toUsers, ...b2.toUsers].find((s) => s.attrs.type === "error");
  assert.ok(error?.getChild("error")?.getChild("recipient-unavailable"), String(error));
  assert.equal(bus.asked.length, 2, "sent to b, back to a, and no further");
});
