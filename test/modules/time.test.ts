import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import time, { NS_TIME, tzd } from "../../src/modules/time/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(config?: Record<string, unknown>): Promise<Harness> {
  const h = await startHarness({
    modules: [time] as ModuleDefinition<unknown>[],
    ...(config ? { config } : {}),
  });
  harnesses.push(h);
  await h.createUser("alice");
  return h;
}

const condition = errorCondition;
const ask = (type = "get") => x("iq", { type, to: "example.test" }, x("time", { xmlns: NS_TIME }));

test("XEP-0082 time zone definitions", () => {
  assert.equal(tzd(0), "Z");
  assert.equal(tzd(-0), "Z");
  assert.equal(tzd(-360), "-06:00");
  assert.equal(tzd(330), "+05:30");
  assert.equal(tzd(765), "+12:45");
});

test("utc comes from the server clock and tzo from the server's zone", async () => {
  const h = await start();
  h.clock.t = Date.UTC(2006, 11, 19, 17, 58, 35, 120);
  const a = await h.connect("alice");
  const reply = await a.iq(ask());
  assert.equal(reply.attrs.type, "result");
  const t = reply.getChild("time", NS_TIME)!;
  assert.equal(t.getChildText("utc"), "2006-12-19T17:58:35Z");
  assert.match(t.getChildText("tzo")!, /^(Z|[+-]\d\d:\d\d)$/);
  h.clock.advance(60_000);
  assert.equal((await a.iq(ask())).getChild("time")!.getChildText("utc"), "2006-12-19T17:59:35Z");
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_TIME));
  await a.disconnect();
});

test("tzo follows the process time zone, daylight saving included", async () => {
  const h = await start();
  const saved = process.env.TZ;
  process.env.TZ = "America/Chicago";
  try {
    const a = await h.connect("alice");
    h.clock.t = Date.UTC(2006, 11, 19, 17, 58, 35);
    assert.equal((await a.iq(ask())).getChild("time")!.getChildText("tzo"), "-06:00");
    h.clock.t = Date.UTC(2006, 6, 19, 17, 58, 35);
    assert.equal((await a.iq(ask())).getChild("time")!.getChildText("tzo"), "-05:00");
    await a.disconnect();
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test("zone 'utc' always reports Z", async () => {
  const h = await start({ modules: { time: { zone: "utc" } } });
  const a = await h.connect("alice");
  assert.equal((await a.iq(ask())).getChild("time")!.getChildText("tzo"), "Z");
  await a.disconnect();
});

test("wrong type and malformed payloads get errors", async () => {
  const h = await start();
  const a = await h.connect("alice");
  assert.equal(condition(await a.iq(ask("set"))), "service-unavailable");
  const wrong = x("iq", { type: "get", to: "example.test" }, x("query", { xmlns: NS_TIME }));
  assert.equal(condition(await a.iq(wrong)), "bad-request");
  await a.disconnect();
});
