import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import os from "node:os";
import { after, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { x } from "../../src/core/xml/element.js";
import version, { NS_VERSION } from "../../src/modules/version/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(config?: Record<string, unknown>): Promise<Harness> {
  const h = await startHarness({
    modules: [version] as ModuleDefinition<unknown>[],
    ...(config ? { config } : {}),
  });
  harnesses.push(h);
  await h.createUser("alice");
  return h;
}

const condition = errorCondition;
const query = (type = "get", to = "example.test") => x("iq", { type, to }, x("query", { xmlns: NS_VERSION }));
const packageVersion = (
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

test("the server reports its name and the package version, without the OS by default", async () => {
  const h = await start();
  const a = await h.connect("alice");
  const reply = await a.iq(query());
  assert.equal(reply.attrs.type, "result");
  const q = reply.getChild("query", NS_VERSION)!;
  assert.equal(q.getChildText("name"), "Switchboard");
  assert.equal(q.getChildText("version"), packageVersion);
  assert.equal(q.getChild("os"), undefined);
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_VERSION));
  await a.disconnect();
});

test("the OS is included when the operator enables it", async () => {
  const h = await start({ modules: { version: { showOs: true } } });
  const a = await h.connect("alice");
  const q = (await a.iq(query())).getChild("query")!;
  assert.equal(q.getChildText("os"), `${os.type()} ${os.release()}`);
  await a.disconnect();
});

test("wrong type, element or target get errors", async () => {
  const h = await start();
  const a = await h.connect("alice");
  assert.equal(condition(await a.iq(query("set"))), "service-unavailable");
  const wrong = x("iq", { type: "get", to: "example.test" }, x("version", { xmlns: NS_VERSION }));
  assert.equal(condition(await a.iq(wrong)), "bad-request");
  // Software version of an account is its clients' business, not the server's.
  assert.equal(condition(await a.iq(query("get", "alice@example.test"))), "service-unavailable");
  await a.disconnect();
});

test("invalid options are refused", () => {
  assert.equal(version.options!.safeParse({ showOs: "yes" }).success, false);
  assert.deepEqual(version.options!.parse({}), { showOs: false });
});
