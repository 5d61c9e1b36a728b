import assert from "node:assert/strict";
import { test } from "node:test";
import { CHANNEL_BINDING_TYPES, channelBindingFeature } from "../../src/core/sasl/channel-binding.js";
import { mechanismsFor, SUPPORTED_MECHANISMS, selectMechanism } from "../../src/core/sasl/mechanism.js";
import { fakeContext } from "./context.js";

const names = (ctx: ReturnType<typeof fakeContext>, enabled?: string[]) =>
  mechanismsFor(ctx, enabled).map((m) => m.name);

test("with TLS and channel binding: all five in preference order", () => {
  const ctx = fakeContext({}, { bindings: { "tls-exporter": Buffer.from("x") } });
  assert.deepEqual(names(ctx), [...SUPPORTED_MECHANISMS]);
  assert.deepEqual(names(ctx), [
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
  ]);
});

test("TLS without channel-binding data: no -PLUS", () => {
  assert.deepEqual(names(fakeContext({})), ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
});

test("without TLS: SCRAM only", () => {
  assert.deepEqual(names(fakeContext({}, { secure: false })), ["SCRAM-SHA-256", "SCRAM-SHA-1"]);
});

test("the enabled list filters and orders; unknown names and repeats are skipped", () => {
  const ctx = fakeContext({}, { bindings: { "tls-server-end-point": Buffer.from("x") } });
  assert.deepEqual(names(ctx, ["PLAIN", "SCRAM-SHA-1", "DIGEST-MD5", "PLAIN"]), ["PLAIN", "SCRAM-SHA-1"]);
  assert.deepEqual(names(ctx, []), []);
});

test("selectMechanism picks only an offered one", () => {
  const offered = mechanismsFor(fakeContext({}, { secure: false }));
  assert.equal(selectMechanism(offered, "SCRAM-SHA-1")?.name, "SCRAM-SHA-1");
  assert.equal(selectMechanism(offered, "PLAIN"), undefined);
  assert.equal(selectMechanism(offered, undefined), undefined);
});

test("XEP-0440 advertisement lists each type once, and nothing without types", () => {
  const el = channelBindingFeature(["tls-exporter", "tls-server-end-point", "tls-exporter"]);
  assert.equal(
    el?.toString(),
    '<sasl-channel-binding xmlns="urn:xmpp:sasl-cb:0"><channel-binding type="tls-exporter"/>' +
      '<channel-binding type="tls-server-end-point"/></sasl-channel-binding>',
  );
  assert.equal(channelBindingFeature([]), undefined);
  assert.deepEqual([...CHANNEL_BINDING_TYPES], ["tls-exporter", "tls-server-end-point", "tls-unique"]);
});
