/**
 * The router: served domains deliver through hooks, other domains through the route
 * registered for them or a remote route (highest priority first), anything else bounces
 * with remote-server-not-found; unclaimed IQ requests and messages get errors, server
 * requests accept answers only from the entity asked.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { parseJid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import type { RemoteRoute, Route } from "../../src/core/router.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import message from "../../src/modules/message/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;
before(async () => {
  h = await startHarness({ modules: [message] as ModuleDefinition<unknown>[] });
  await h.createUser("alice");
});
after(() => h.stop());

const router = () => h.server.services.router;
const msg = (to: string, body = "hi", type = "chat") =>
  x("message", { to, type, id: "m1" }, x("body", {}, body));

test("a stanza to a domain nobody routes bounces with remote-server-not-found", async () => {
  const a = await h.connect("alice", "r1");
  await a.sendStanza(msg("bob@elsewhere.example"));
  const err = await a.nextMatching((el) => el.attrs.type === "error");
  assert.equal(errorCondition(err), "remote-server-not-found");
  assert.equal(err.attrs.from, "bob@elsewhere.example");
  await a.disconnect();
});

test("a domain route takes its domain's stanzas with a trusted from, until it is removed", async () => {
  const seen: { stanza: XmlElement; from: string; to: string }[] = [];
  const route: Route = {
    kind: "service",
    deliver: (stanza, from, to) => void seen.push({ stanza, from: from.toString(), to: to.toString() }),
  };
  const remove = router().addRoute("svc.example.test", route);
  assert.equal(router().routeOf("svc.example.test"), route);
  assert.throws(() => router().addRoute("svc.example.test", route), /already has a route/);
  assert.throws(() => router().addRoute("example.test", route), /served domain/);
  const a = await h.connect("alice", "r2");
  await a.sendStanza(msg("room@svc.example.test"));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.from, "alice@example.test/r2");
  assert.equal(seen[0]!.to, "room@svc.example.test");
  remove();
  await a.sendStanza(msg("room@svc.example.test"));
  const err = await a.nextMatching((el) => el.attrs.type === "error");
  assert.equal(errorCondition(err), "remote-server-not-found");
  await a.disconnect();
});

test("remote routes are asked highest priority first, and only for domains they can take", async () => {
  const sent: string[] = [];
  const remote = (kind: string, priority: number, domains: string[]): RemoteRoute => ({
    kind,
    priority,
    canRoute: (d) => domains.includes(d),
    send: (_stanza, to) => void sent.push(`${kind}:${to}`),
  });
  const removeLow = router().addRemoteRoute(remote("s2s", 1, ["a.example", "b.example"]));
  const removeHigh = router().addRemoteRoute(remote("component", 10, ["a.example"]));
  const a = await h.connect("alice", "r3");
  await a.sendStanza(msg("x@a.example"));
  await a.sendStanza(msg("x@b.example"));
  assert.deepEqual(sent, ["component:x@a.example", "s2s:x@b.example"]);
  removeHigh();
  removeLow();
  await a.disconnect();
});

test("a served virtual host is local: unclaimed IQ requests get service-unavailable, presence and results are dropped", async () => {
  const stop = router().addHost("corp.example");
  assert.throws(() => router().addHost("corp.example"), /already served/);
  assert.ok(router().isLocalDomain("corp.example"));
  assert.deepEqual(router().servedDomains().sort(), ["corp.example", "example.test"]);
  const a = await h.connect("alice", "r4");
  await a.sendStanza(
    x("iq", { type: "get", id: "q1", to: "corp.example" }, x("query", { xmlns: "urn:nobody" })),
  );
  const iqErr = await a.nextMatching((el) => el.name === "iq" && el.attrs.id === "q1");
  assert.equal(errorCondition(iqErr), "service-unavailable");
  await a.sendStanza(x("presence", { to: "carol@corp.example", type: "probe" }));
  await a.sendStanza(x("iq", { type: "result", id: "r0", to: "corp.example" }));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(a.pending(), [], "presence and IQ results nobody claims are dropped without an error");
  stop();
  assert.equal(router().isLocalDomain("corp.example"), false);
  await a.disconnect();
});

test("a malformed 'to' is answered with jid-malformed from the server", async () => {
  const a = await h.connect("alice", "r5");
  await a.sendStanza(x("message", { to: "a@b@c", type: "chat", id: "bad" }, x("body", {}, "x")));
  const err = await a.nextMatching((el) => el.attrs.id === "bad");
  assert.equal(errorCondition(err), "jid-malformed");
  await a.disconnect();
});

test("a server request is resolved only by the entity it was sent to", async () => {
  const a = await h.connect("alice", "r6");
  const pending = router().request(
    x("iq", { type: "get" }, x("query", { xmlns: "jabber:iq:version" })),
    a.jid!,
    2000,
  );
  const asked = await a.nextMatching((el) => el.name === "iq" && el.attrs.type === "get");
  const id = asked.attrs.id!;
  assert.equal(
    router().resolveResponse(x("iq", { type: "result", id, from: "mallory@example.test/x" })),
    false,
  );
  assert.equal(router().resolveResponse(x("iq", { type: "result", id, from: a.jid!.toString() })), true);
  const answer = await pending;
  assert.equal(answer?.attrs.from, a.jid!.toString());
  assert.equal(
    router().resolveResponse(x("iq", { type: "result", id, from: a.jid!.toString() })),
    false,
    "only once",
  );
  const gone = await router().request(
    x("iq", { type: "get" }, x("ping", { xmlns: "urn:xmpp:ping" })),
    parseJid("alice@example.test/gone"),
  );
  assert.equal(
    gone?.attrs.type,
    "error",
    "a request to a session that is not there is answered with an error",
  );
  const removeRoute = router().addRoute("silent.example.test", { kind: "service", deliver: () => undefined });
  const keepAlive = setInterval(() => undefined, 1000); // the request's own timer does not hold the process
  const timedOut = await router().request(
    x("iq", { type: "get" }, x("ping", { xmlns: "urn:xmpp:ping" })),
    parseJid("silent.example.test"),
    50,
  );
  clearInterval(keepAlive);
  assert.equal(timedOut, undefined, "no answer: undefined after the timeout");
  removeRoute();
  await a.disconnect();
});

test("a request on behalf of an account: from its bare JID, with the id asked for, answered to that JID by the entity asked", async () => {
  await h.createUser("bob");
  const a = await h.connect("alice", "r7");
  const bobJid = parseJid("bob@example.test");
  const ask = () =>
    router().request(x("iq", { type: "get" }, x("query", { xmlns: "jabber:iq:version" })), a.jid!, 2000, {
      from: bobJid,
      id: "disco",
    });
  const first = ask();
  // The same requester, entity and id while the first waits: a generated id instead.
  const second = ask();
  const asked = [
    await a.nextMatching((el) => el.name === "iq" && el.attrs.type === "get"),
    await a.nextMatching((el) => el.name === "iq" && el.attrs.type === "get"),
  ];
  assert.deepEqual(
    asked.map((q) => q.attrs.from),
    ["bob@example.test", "bob@example.test"],
  );
  assert.equal(asked[0]!.attrs.id, "disco");
  assert.match(asked[1]!.attrs.id!, /^sb-/);
  // Addressed to the domain, or answered by someone else: not the answer.
  assert.equal(
    router().resolveResponse(
      x("iq", { type: "result", id: "disco", from: a.jid!.toString(), to: "example.test" }),
    ),
    false,
  );
  assert.equal(
    router().resolveResponse(
      x("iq", { type: "result", id: "disco", from: "mallory@example.test/x" }),
      bobJid,
    ),
    false,
  );
  // The client answers both as clients do: to the JID that asked, through the server.
  for (const q of asked) await a.sendStanza(x("iq", { type: "result", id: q.attrs.id, to: q.attrs.from }));
  const answers = await Promise.all([first, second]);
  assert.deepEqual(
    answers.map((r) => [r?.attrs.type, r?.attrs.from]),
    [
      ["result", a.jid!.toString()],
      ["result", a.jid!.toString()],
    ],
  );
  await a.disconnect();
});

test("in a cluster, request ids name the node, and an answer to another node's request goes to that node", async () => {
  const relayed: { node: string; reply: XmlElement }[] = [];
  const stop = router().relayResponses("n1", (node, reply) => void relayed.push({ node, reply }));
  try {
    const a = await h.connect("alice", "r7");
    const pending = router().request(
      x("iq", { type: "get" }, x("ping", { xmlns: "urn:xmpp:ping" })),
      a.jid!,
      2000,
    );
    const asked = await a.nextMatching((el) => el.name === "iq" && el.attrs.type === "get");
    assert.match(asked.attrs.id!, /^sb\.n1\./, "the id names the asking node");
    // A client of this node answers a request node n2 sent: it goes to n2, unread here.
    const forN2 = x("iq", { type: "result", id: "sb.n2.5-abcd", from: a.jid!.toString() });
    assert.equal(router().resolveResponse(forN2), true);
    assert.deepEqual(
      relayed.map((r) => [r.node, r.reply]),
      [["n2", forN2]],
    );
    // The client answers this node's own request through the hooks, as any client does.
    await a.sendStanza(x("iq", { type: "result", id: asked.attrs.id, to: "example.test" }));
    assert.equal((await pending)?.attrs.from, a.jid!.toString());
    assert.equal(relayed.length, 1, "an answer to this node's own request is not relayed");
    // Ids nobody made in the cluster's form are not relayed.
    assert.equal(router().resolveResponse(x("iq", { type: "result", id: "other", from: "x@y" })), false);
    await a.disconnect();
  } finally {
    stop();
  }
  const plain = router().request(
    x("iq", { type: "get" }, x("ping", { xmlns: "urn:xmpp:ping" })),
    parseJid("alice@example.test/none"),
  );
  assert.equal((await plain)?.attrs.type, "error");
});
