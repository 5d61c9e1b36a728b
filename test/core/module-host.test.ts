/**
 * The module host: dependency order, refusals (cycles, missing or disabled dependencies,
 * invalid options), everything a module registered removed when it unloads or fails to
 * load, typed per-session state kept apart per module, contributions and APIs.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { z } from "zod";
import {
  defineModule,
  type ModuleDefinition,
  ModuleHost,
  ModuleLoadError,
  type SessionState,
} from "../../src/core/module.js";
import { type Harness, startHarness } from "../kit/harness.js";

let h: Harness;
before(async () => {
  h = await startHarness({ modules: [] as ModuleDefinition<unknown>[] });
});
after(() => h.stop());

const host = () => new ModuleHost(h.server.services);
const plain = (name: string, dependencies: string[] = [], log: string[] = []) =>
  defineModule({
    name,
    description: name,
    dependencies,
    setup() {
      log.push(name);
    },
  }) as ModuleDefinition<unknown>;

test("loads modules after their dependencies, whatever the list order", async () => {
  const log: string[] = [];
  const modules = host();
  await modules.loadAll([plain("c", ["b"], log), plain("b", ["a"], log), plain("a", [], log)]);
  assert.deepEqual(log, ["a", "b", "c"]);
  assert.deepEqual(
    modules.list().map((d) => d.name),
    ["a", "b", "c"],
  );
  await modules.unloadAll();
  assert.equal(modules.isLoaded("a"), false);
});

test("refuses dependency cycles, missing and disabled dependencies, and a second load", async () => {
  await assert.rejects(host().loadAll([plain("p", ["q"]), plain("q", ["p"])]), /dependency cycle/);
  await assert.rejects(
    host().loadAll([plain("p", ["nowhere"])]),
    /needs module nowhere, which is not available/,
  );
  await assert.rejects(host().loadAll([plain("p", ["q"]), plain("q")], ["q"]), /which is disabled/);
  const modules = host();
  await modules.loadAll([plain("p"), plain("q")], ["q"]);
  assert.equal(modules.isLoaded("q"), false, "a disabled module is skipped");
  await assert.rejects(modules.load(plain("p")), ModuleLoadError);
  await modules.unloadAll();
});

test("options are validated by the module's schema, with the key path in the error", async () => {
  const withOptions = defineModule({
    name: "tuned",
    description: "options",
    options: z.object({ limit: z.number().int().min(1).default(5) }),
    setup(ctx) {
      assert.equal(ctx.options.limit, 5);
    },
  }) as ModuleDefinition<unknown>;
  const modules = host();
  await modules.load(withOptions);
  await modules.unloadAll();
  const services = {
    ...h.server.services,
    config: { ...h.server.services.config, modules: { tuned: { limit: 0 } } },
  };
  await assert.rejects(new ModuleHost(services).load(withOptions), /modules\.tuned\.limit/);
});

test("unloading removes every registration: hooks, IQ handlers, features, filters, routes, metrics, APIs", async () => {
  const s = h.server.services;
  const calls: string[] = [];
  const everything = defineModule({
    name: "everything",
    description: "registers one of each",
    setup(ctx) {
      ctx.hook("account/created", () => void calls.push("hook"));
      ctx.handleIq({ target: "host", type: "get", xmlns: "urn:test:everything" }, () => undefined);
      ctx.addFeature("urn:test:everything");
      ctx.filter("outbound", (_session, stanza) => stanza);
      ctx.addRoute("everything.example.test", { kind: "service", deliver: () => undefined });
      ctx.metric({ name: "test_everything_total", help: "a test metric", type: "counter", collect: () => 1 });
      ctx.provide({ answer: 42 });
    },
  }) as ModuleDefinition<unknown>;
  const modules = host();
  await modules.load(everything);
  assert.ok(s.iq.find("host", "get", "urn:test:everything"));
  assert.ok(s.disco.getFeatures("host").includes("urn:test:everything"));
  assert.ok(s.router.routeOf("everything.example.test"));
  assert.deepEqual(s.apis.get("everything"), { answer: 42 });
  await s.hooks.fireAsync("account/created", { username: "someone" });
  assert.deepEqual(calls, ["hook"]);
  await modules.unload("everything");
  assert.equal(s.iq.find("host", "get", "urn:test:everything"), undefined);
  assert.ok(!s.disco.getFeatures("host").includes("urn:test:everything"));
  assert.equal(s.router.routeOf("everything.example.test"), undefined);
  assert.equal(s.apis.get("everything"), undefined);
  await s.hooks.fireAsync("account/created", { username: "someone" });
  assert.deepEqual(calls, ["hook"], "the hook is gone");
});

test("a module whose setup fails leaves nothing registered", async () => {
  const s = h.server.services;
  const broken = defineModule({
    name: "broken",
    description: "fails half-way",
    setup(ctx) {
      ctx.handleIq({ target: "host", type: "get", xmlns: "urn:test:broken" }, () => undefined);
      throw new Error("no luck");
    },
  }) as ModuleDefinition<unknown>;
  const modules = host();
  await assert.rejects(modules.load(broken), /module broken failed to load: no luck/);
  assert.equal(modules.isLoaded("broken"), false);
  assert.equal(s.iq.find("host", "get", "urn:test:broken"), undefined);
});

test("per-session state is typed and kept apart per module; contributions are listed by kind", async () => {
  let stateOfOne: SessionState<{ n: number }> | undefined;
  let stateOfTwo: SessionState<{ n: number }> | undefined;
  const one = defineModule({
    name: "state-one",
    description: "",
    setup(ctx) {
      stateOfOne = ctx.sessionState<{ n: number }>();
      ctx.contribute("http" as never, { name: "from-one" } as never);
    },
  }) as ModuleDefinition<unknown>;
  const two = defineModule({
    name: "state-two",
    description: "",
    setup(ctx) {
      stateOfTwo = ctx.sessionState<{ n: number }>();
    },
  }) as ModuleDefinition<unknown>;
  const modules = host();
  await modules.loadAll([one, two]);
  const session = await h.connect(`nobody-${Date.now().toString(36)}`, "r");
  stateOfOne!.set(session, { n: 1 });
  assert.deepEqual(stateOfOne!.get(session), { n: 1 });
  assert.equal(stateOfTwo!.get(session), undefined, "another module's state is not visible");
  stateOfOne!.delete(session);
  assert.equal(stateOfOne!.get(session), undefined);
  assert.deepEqual(modules.contributions("http" as never), [{ name: "from-one" }]);
  await modules.unload("state-one");
  assert.deepEqual(modules.contributions("http" as never), []);
  await session.disconnect();
  await modules.unloadAll();
});
