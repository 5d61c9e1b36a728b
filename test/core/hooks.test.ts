import assert from "node:assert/strict";
import { test } from "node:test";
import { HookBus } from "../../src/core/hooks.js";

interface Events {
  ping: { log: string[] };
}

test("handlers run by priority, then registration order, until one claims", () => {
  const bus = new HookBus<Events>();
  bus.on("ping", ({ log }) => void log.push("low"), -5);
  bus.on("ping", ({ log }) => void log.push("first"));
  bus.on("ping", ({ log }) => void log.push("second"));
  bus.on("ping", ({ log }) => void log.push("high"), 10);
  const log: string[] = [];
  assert.equal(bus.fire("ping", { log }), false);
  assert.deepEqual(log, ["high", "first", "second", "low"]);
});

test("a claiming handler stops the chain and fire() stays synchronous", () => {
  const bus = new HookBus<Events>();
  bus.on("ping", ({ log }) => {
    log.push("a");
    return true;
  });
  bus.on("ping", ({ log }) => void log.push("b"));
  const log: string[] = [];
  assert.equal(bus.fire("ping", { log }), true);
  assert.deepEqual(log, ["a"]);
});

test("an async handler makes fire() return a promise and the chain continues after it", async () => {
  const bus = new HookBus<Events>();
  bus.on(
    "ping",
    async ({ log }) => {
      await new Promise((r) => setImmediate(r));
      log.push("async");
      return false;
    },
    1,
  );
  bus.on("ping", ({ log }) => {
    log.push("sync");
    return true;
  });
  const log: string[] = [];
  const r = bus.fire("ping", { log });
  assert.ok(r instanceof Promise);
  assert.equal(await r, true);
  assert.deepEqual(log, ["async", "sync"]);
});

test("the remover returned by on() unregisters exactly that handler", () => {
  const bus = new HookBus<Events>();
  const off = bus.on("ping", ({ log }) => void log.push("gone"));
  bus.on("ping", ({ log }) => void log.push("kept"));
  off();
  const log: string[] = [];
  bus.fire("ping", { log });
  assert.deepEqual(log, ["kept"]);
  assert.equal(bus.has("ping"), true);
});

test("firing while a handler unregisters itself does not skip the next handler", () => {
  const bus = new HookBus<Events>();
  const off = bus.on("ping", ({ log }) => {
    off();
    log.push("once");
  });
  bus.on("ping", ({ log }) => void log.push("always"));
  const first: string[] = [];
  bus.fire("ping", { log: first });
  const second: string[] = [];
  bus.fire("ping", { log: second });
  assert.deepEqual(first, ["once", "always"]);
  assert.deepEqual(second, ["always"]);
});
