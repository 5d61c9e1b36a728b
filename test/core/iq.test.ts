/** The IQ handler registry: keys by target × type × namespace, element names, removal. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { StanzaError } from "../../src/core/errors.js";
import { IqRegistry, type IqRequest } from "../../src/core/iq.js";
import { parseJid } from "../../src/core/jid.js";
import { x } from "../../src/core/xml/element.js";

const req = (payload: ReturnType<typeof x>): IqRequest => ({
  stanza: x("iq", { type: "get", id: "1" }, payload),
  payload,
  from: parseJid("alice@example.test/r"),
  to: parseJid("example.test"),
  reply: () => undefined,
});

test("finds a handler by target, type and namespace, and only that one", () => {
  const iq = new IqRegistry();
  const handler = () => x("query", { xmlns: "urn:test" });
  iq.register({ target: "host", type: "get", xmlns: "urn:test" }, handler);
  assert.equal(iq.find("host", "get", "urn:test"), handler);
  assert.equal(iq.find("host", "set", "urn:test"), undefined);
  assert.equal(iq.find("bare", "get", "urn:test"), undefined);
  assert.equal(iq.find("host", "get", "urn:other"), undefined);
  assert.equal(iq.find("host", "get", undefined), undefined);
});

test("'both' registers for the domain and for bare JIDs; removal takes both away", () => {
  const iq = new IqRegistry();
  const remove = iq.register({ target: "both", type: "set", xmlns: "urn:test" }, () => undefined);
  assert.ok(iq.find("host", "set", "urn:test"));
  assert.ok(iq.find("bare", "set", "urn:test"));
  remove();
  assert.equal(iq.find("host", "set", "urn:test"), undefined);
  assert.equal(iq.find("bare", "set", "urn:test"), undefined);
});

test("a second handler for the same key is refused; removing the first frees the key", () => {
  const iq = new IqRegistry();
  const remove = iq.register({ target: "host", type: "get", xmlns: "urn:test" }, () => undefined);
  assert.throws(
    () => iq.register({ target: "host", type: "get", xmlns: "urn:test" }, () => undefined),
    /already/,
  );
  remove();
  iq.register({ target: "host", type: "get", xmlns: "urn:test" }, () => undefined);
  remove(); // a stale removal must not take the new handler away
  assert.ok(iq.find("host", "get", "urn:test"));
});

test("a handler restricted to one element name answers service-unavailable for others", async () => {
  const iq = new IqRegistry();
  iq.register({ target: "host", type: "get", xmlns: "urn:test", name: "query" }, () =>
    x("query", { xmlns: "urn:test" }),
  );
  const h = iq.find("host", "get", "urn:test")!;
  assert.equal((await h(req(x("query", { xmlns: "urn:test" }))))?.name, "query");
  assert.throws(
    () => h(req(x("other", { xmlns: "urn:test" }))),
    (e: unknown) => e instanceof StanzaError && e.condition === "service-unavailable",
  );
});
