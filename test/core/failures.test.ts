/** Telling a full storage apart from other failures, and logging failures that repeat once per window. */
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { pino } from "pino";
import { failureKind, LogThrottle } from "../../src/core/log-throttle.js";
import { isStorageFull, storageFullError } from "../../src/core/storage/full.js";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

test("a full storage is recognised by the drivers' codes, also as the cause of another error", () => {
  assert.equal(isStorageFull(withCode("database or disk is full", "SQLITE_FULL")), true);
  assert.equal(isStorageFull(withCode("could not extend file", "53100")), true);
  assert.equal(isStorageFull(withCode("no space left on device", "ENOSPC")), true);
  assert.equal(isStorageFull(new Error("storing failed", { cause: withCode("full", "SQLITE_FULL") })), true);
  assert.equal(isStorageFull(withCode("locked", "SQLITE_BUSY")), false);
  assert.equal(isStorageFull(new Error("database or disk is full")), false, "the code decides, not the text");
  assert.equal(isStorageFull("SQLITE_FULL"), false);
  const e = storageFullError();
  assert.equal(e.condition, "resource-constraint");
  assert.equal(e.type, "wait");
});

test("a failure that repeats is logged once per window, then how many more times", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const lines: { msg: string; repeated?: number }[] = [];
    const log = pino({ level: "error" }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const throttle = new LogThrottle(log, 10_000);
    for (let i = 0; i < 500; i++) throttle.error("full", { i }, "the storage is full");
    throttle.error("other", {}, "something else failed");
    assert.deepEqual(
      lines.map((l) => l.msg),
      ["the storage is full", "something else failed"],
    );
    mock.timers.tick(10_000);
    assert.equal(lines.length, 3, "the summary of the window");
    assert.equal(lines[2]!.repeated, 499);
    assert.match(lines[2]!.msg, /the storage is full: 499 more times in 10 s/);
    // The next window starts afresh; a window without repeats ends silently.
    throttle.error("full", {}, "the storage is full");
    mock.timers.tick(10_000);
    assert.equal(lines.length, 4);
    throttle.stop();
  } finally {
    mock.timers.reset();
  }
});

test("failures are told apart by their code, else by their name and message", () => {
  assert.equal(failureKind(withCode("x", "SQLITE_FULL")), "Error:SQLITE_FULL");
  assert.equal(failureKind(withCode("y", "SQLITE_FULL")), "Error:SQLITE_FULL");
  assert.equal(failureKind(new TypeError("y")), "TypeError:y");
  assert.notEqual(failureKind(new Error("one bug")), failureKind(new Error("another")));
  assert.equal(failureKind("z"), "string");
});
