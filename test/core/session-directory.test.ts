/**
 * The in-memory session directory: binding (normalised, generated, conflicting and too many
 * resources), the targets local delivery asks it for (available, interested, message
 * targets by priority) and unbinding that never removes a newer session.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { StanzaError } from "../../src/core/errors.js";
import type { ClientSession } from "../../src/core/session.js";
import { LocalSessionDirectory } from "../../src/core/session-directory.js";
import { x } from "../../src/core/xml/element.js";

interface Fake {
  session: ClientSession;
  closedWith?: string;
}

function fake(
  username: string,
  opts: { presence?: boolean; priority?: number; roster?: boolean } = {},
): Fake {
  const f: Fake = { session: undefined as unknown as ClientSession };
  const s = {
    id: `s-${Math.random().toString(36).slice(2)}`,
    username,
    bound: true,
    closed: false,
    priority: opts.priority ?? 0,
    presence: opts.presence ? x("presence") : undefined,
    rosterRequested: opts.roster ?? false,
    close(err?: { condition: string }) {
      s.closed = true;
      f.closedWith = err?.condition ?? "closed";
    },
  };
  f.session = s as unknown as ClientSession;
  return f;
}

test("binds the requested resource, normalised, and generates one when none is asked for", async () => {
  const dir = new LocalSessionDirectory("example.test", 10);
  const a = fake("alice");
  const jid = await dir.bind(a.session, "cafe\u0301");
  assert.equal(jid.toString(), "alice@example.test/caf\u00e9", "NFC (RFC 7622 OpaqueString)");
  assert.equal(a.session.resource, "caf\u00e9");
  const b = fake("alice");
  const generated = await dir.bind(b.session, undefined);
  assert.ok(generated.resource.length >= 8, generated.toString());
  assert.equal(dir.count, 2);
  assert.deepEqual(new Set(dir.resourcesOf("alice")), new Set([a.session, b.session]));
  assert.equal(dir.get("alice", "caf\u00e9"), a.session);
});

test("an invalid resource is bad-request; one resource too many is resource-constraint", async () => {
  const dir = new LocalSessionDirectory("example.test", 2);
  await assert.rejects(dir.bind(fake("alice").session, "bad\u0000res"), (e: unknown) => {
    assert.ok(e instanceof StanzaError);
    assert.equal(e.condition, "bad-request");
    return true;
  });
  await dir.bind(fake("alice").session, "one");
  await dir.bind(fake("alice").session, "two");
  await assert.rejects(dir.bind(fake("alice").session, "three"), (e: unknown) => {
    assert.ok(e instanceof StanzaError);
    assert.equal(e.condition, "resource-constraint");
    return true;
  });
  assert.equal(dir.count, 2);
});

test("binding a resource in use replaces the old session with a conflict, and its unbind leaves the new one", async () => {
  const dir = new LocalSessionDirectory("example.test", 10);
  const old = fake("alice");
  const fresh = fake("alice");
  await dir.bind(old.session, "phone");
  await dir.bind(fresh.session, "phone");
  assert.equal(old.closedWith, "conflict");
  assert.equal(dir.count, 1);
  dir.unbind(old.session);
  assert.equal(
    dir.get("alice", "phone"),
    fresh.session,
    "the replaced session's cleanup must not unbind its successor",
  );
  assert.equal(dir.count, 1);
  dir.unbind(fresh.session);
  assert.equal(dir.count, 0);
  assert.equal(dir.isOnline("alice"), false);
  assert.deepEqual([...dir.accounts()], []);
});

test("available, interested and message targets follow RFC 6121", async () => {
  const dir = new LocalSessionDirectory("example.test", 10);
  const high = fake("alice", { presence: true, priority: 5 });
  const highToo = fake("alice", { presence: true, priority: 5, roster: true });
  const low = fake("alice", { presence: true, priority: 1 });
  const negative = fake("alice", { presence: true, priority: -1 });
  const silent = fake("alice", { roster: true });
  for (const [f, r] of [
    [high, "a"],
    [highToo, "b"],
    [low, "c"],
    [negative, "d"],
    [silent, "e"],
  ] as const)
    await dir.bind(f.session, r);
  assert.deepEqual(new Set(dir.messageTargets("alice")), new Set([high.session, highToo.session]));
  assert.deepEqual(
    new Set(dir.availableOf("alice")),
    new Set([high.session, highToo.session, low.session, negative.session]),
  );
  assert.deepEqual(new Set(dir.interestedOf("alice")), new Set([highToo.session, silent.session]));
  const onlyNegative = new LocalSessionDirectory("example.test", 10);
  await onlyNegative.bind(fake("bob", { presence: true, priority: -3 }).session, "x");
  assert.deepEqual(onlyNegative.messageTargets("bob"), [], "negative priority never gets bare-JID messages");
});

test("accounts on another served domain are kept apart from the primary domain's", async () => {
  const dir = new LocalSessionDirectory("example.test", 10);
  const here = fake("alice", { presence: true });
  const there = fake("alice", { presence: true });
  await dir.bind(here.session, "r");
  const jid = await dir.bind(there.session, "r", "corp.example");
  assert.equal(jid.toString(), "alice@corp.example/r");
  assert.equal(here.closedWith, undefined, "same name on another domain is another account");
  assert.deepEqual(dir.resourcesOf("alice"), [here.session]);
  assert.deepEqual(dir.resourcesOf("alice", "corp.example"), [there.session]);
  assert.deepEqual(new Set(dir.accounts()), new Set(["alice", "alice@corp.example"]));
  dir.unbind(there.session);
  assert.equal(dir.isOnline("alice", "corp.example"), false);
  assert.equal(dir.isOnline("alice"), true);
});
