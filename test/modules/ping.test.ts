import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import ping, { NS_PING } from "../../src/modules/ping/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

let h: Harness;

before(async () => {
  h = await startHarness({ modules: [ping] as ModuleDefinition<unknown>[] });
  for (const u of ["alice", "bob", "carol"]) await h.createUser(u);
  await h.server.services.storage.roster.setItem("bob", {
    jid: "alice@example.test",
    subscription: "both",
    ask: false,
    approved: false,
    groups: [],
  });
});
after(() => h.stop());

const condition = errorCondition;
const pingTo = (to?: string, type = "get") => x("iq", { type, to }, x("ping", { xmlns: NS_PING }));

test("the server answers a ping to its domain with an empty result", async () => {
  const a = await h.connect("alice", "r1");
  const reply = await a.iq(pingTo("example.test"));
  assert.equal(reply.attrs.type, "result");
  assert.equal(reply.attrs.from, "example.test");
  assert.equal(reply.elements().length, 0);
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_PING));
  await a.disconnect();
});

test("a ping with no 'to' or to the own bare JID is answered on the account's behalf", async () => {
  const a = await h.connect("alice", "r2");
  const noTo = await a.iq(pingTo());
  assert.equal(noTo.attrs.type, "result");
  assert.equal(noTo.attrs.from, undefined);
  const own = await a.iq(pingTo("alice@example.test"));
  assert.equal(own.attrs.type, "result");
  assert.equal(own.attrs.from, "alice@example.test");
  await a.disconnect();
});

test("pings to other accounts are answered only to those who may see their presence", async () => {
  const a = await h.connect("alice", "r3");
  assert.equal((await a.iq(pingTo("bob@example.test"))).attrs.type, "result");
  assert.equal(condition(await a.iq(pingTo("carol@example.test"))), "service-unavailable");
  assert.equal(condition(await a.iq(pingTo("nobody@example.test"))), "service-unavailable");
  await a.disconnect();
});

test("wrong type and malformed pings get errors", async () => {
  const a = await h.connect("alice", "r4");
  assert.equal(condition(await a.iq(pingTo("example.test", "set"))), "service-unavailable");
  const pong = x("iq", { type: "get", to: "example.test" }, x("pong", { xmlns: NS_PING }));
  assert.equal(condition(await a.iq(pong)), "bad-request");
  const empty = x("iq", { type: "get", to: "example.test" });
  assert.equal(condition(await a.iq(empty)), "bad-request");
  await a.disconnect();
});
