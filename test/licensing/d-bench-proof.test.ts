/**
 * The bench client's proof step (bench/loadgen/licence-proof.ts) is written from the wire
 * description; these tests hold it to the server: it reads the feature the server offers
 * and its proofs pass the server's verifier, bound to the stream and the nonce.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  isLicenceSuccess,
  LICENCE_NS,
  LicenceProver,
  licenceFeature,
} from "../../bench/loadgen/licence-proof.js";
import { serialize, x } from "../../src/core/xml/element.js";
import type { LicensingSnapshot } from "../../src/licensing/index.js";
import {
  DEFAULT_POLICY,
  emptySnapshot,
  generateKeyPair,
  NS_LICENCE,
  licenceFeature as serverFeature,
  successElement,
  verifyProof,
} from "../../src/licensing/index.js";

const NOW = Date.UTC(2026, 0, 1);
const APP = { clientId: "org.switchboard.bench", version: "1.0.0", platform: "linux", keyId: "bench-1" };

function snapshotWith(publicKey: string): LicensingSnapshot {
  return {
    ...emptySnapshot(),
    revision: 1,
    publishers: new Map(),
    apps: new Map([
      [
        APP.clientId,
        { clientId: APP.clientId, name: "Bench", publisherId: "p", platforms: ["linux"], createdAt: 0 },
      ],
    ]),
    keys: new Map([
      [
        APP.clientId,
        new Map([[APP.keyId, { keyId: APP.keyId, clientId: APP.clientId, publicKey, createdAt: 0 }]]),
      ],
    ]),
    licences: new Map([
      [
        APP.clientId,
        [
          {
            id: "lic_1",
            clientId: APP.clientId,
            scope: "client",
            status: "active",
            validFrom: 0,
            createdAt: 0,
          },
        ],
      ],
    ]),
    policy: DEFAULT_POLICY,
  };
}

/** The <stream:features/> text a plaintext stream gets: SASL mechanisms and the server's own licence feature. */
function featuresText(nonce: string): string {
  const feature = serverFeature({ nonce, mode: "enforce", cutoff: undefined, bindingTypes: [] });
  return (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>" +
    `</mechanisms>${serialize(feature)}</stream:features>`
  );
}

function parseProofXml(xml: string) {
  const a = (name: string) => new RegExp(`${name}='([^']*)'`).exec(xml)?.[1];
  return {
    clientId: a("client-id")!,
    version: a("version")!,
    platform: a("platform")!,
    keyId: a("key-id")!,
    signature: />([^<]*)<\/proof>$/.exec(xml)![1]!,
  };
}

test("the bench client's proof passes the server's verifier, and only on its own stream and nonce", () => {
  const keys = generateKeyPair();
  const prover = new LicenceProver({ ...APP, privateKeyPem: keys.privateKeyPem }, "bench.local");
  const nonce = Buffer.alloc(32, 7).toString("base64");
  const xml = prover.proofFor(featuresText(nonce), "stream-1");
  assert.ok(xml);
  assert.match(xml, new RegExp(`^<proof xmlns='${LICENCE_NS}' `));
  const proof = parseProofXml(xml);
  const snapshot = snapshotWith(keys.publicKey);
  const input = {
    domain: "bench.local",
    streamId: "stream-1",
    nonce,
    bindingType: undefined,
    bindingData: undefined,
    proof,
  };
  const ok = verifyProof(input, snapshot, NOW);
  assert.equal(ok.ok, true, JSON.stringify(ok));
  for (const changed of [
    { streamId: "stream-2" },
    { nonce: Buffer.alloc(32, 8).toString("base64") },
    { domain: "other.example" },
  ]) {
    const r = verifyProof({ ...input, ...changed }, snapshot, NOW);
    assert.equal(r.ok, false, JSON.stringify(changed));
    assert.equal(!r.ok && "reason" in r && r.reason, "bad-proof");
  }
});

test("over TLS the proof binds to the channel the feature names", () => {
  const keys = generateKeyPair();
  const prover = new LicenceProver({ ...APP, privateKeyPem: keys.privateKeyPem }, "bench.local");
  const nonce = Buffer.alloc(32, 9).toString("base64");
  const exporter = Buffer.alloc(32, 3);
  const feature = serverFeature({
    nonce,
    mode: "enforce",
    cutoff: undefined,
    bindingTypes: ["tls-exporter", "tls-server-end-point"],
  });
  const asked: string[] = [];
  const xml = prover.proofFor(`<stream:features>${serialize(feature)}</stream:features>`, "s-9", (type) => {
    asked.push(type);
    return exporter;
  });
  assert.deepEqual(asked, ["tls-exporter"]);
  const input = {
    domain: "bench.local",
    streamId: "s-9",
    nonce,
    bindingType: "tls-exporter",
    bindingData: exporter,
    proof: parseProofXml(xml!),
  };
  const snapshot = snapshotWith(keys.publicKey);
  assert.equal(verifyProof(input, snapshot, NOW).ok, true);
  // Another connection has other exporter data: the same proof does not verify there.
  const elsewhere = verifyProof({ ...input, bindingData: Buffer.alloc(32, 4) }, snapshot, NOW);
  assert.equal(!elsewhere.ok && "reason" in elsewhere && elsewhere.reason, "bad-proof");
});

test("feature detection: absent, another namespace, self-closed, and a binding the connection cannot give", () => {
  const keys = generateKeyPair();
  const prover = new LicenceProver({ ...APP, privateKeyPem: keys.privateKeyPem }, "bench.local");
  assert.equal(prover.proofFor("<stream:features><mechanisms/></stream:features>", "s"), undefined);
  assert.equal(licenceFeature("<stream:features><licence xmlns='urn:other'/></stream:features>"), undefined);
  assert.deepEqual(licenceFeature(`<stream:features><licence xmlns="${LICENCE_NS}"/></stream:features>`), {
    openTag: `<licence xmlns="${LICENCE_NS}"/>`,
    text: `<licence xmlns="${LICENCE_NS}"/>`,
  });
  assert.throws(() => prover.proofFor(`<f><licence xmlns='${LICENCE_NS}'/></f>`, "s"), /without a nonce/);
  // SASL2's inline marker, an empty <licence/>, may come before the stream feature.
  const offered = serialize(serverFeature({ nonce: "AAAA", mode: "warn", cutoff: NOW, bindingTypes: [] }));
  const withSasl2 = `<f><authentication xmlns='urn:xmpp:sasl:2'><inline><licence xmlns='${LICENCE_NS}'/></inline></authentication>${offered}</f>`;
  assert.equal(licenceFeature(withSasl2)?.text, offered);
  assert.match(prover.proofFor(withSasl2, "s") ?? "", /<proof /);
  const bound = serialize(
    serverFeature({ nonce: "AAAA", mode: "warn", cutoff: NOW, bindingTypes: ["tls-exporter"] }),
  );
  assert.throws(() => prover.proofFor(`<f>${bound}</f>`, "s"), /tls-exporter channel binding/);
  assert.throws(
    () => prover.proofFor(`<f>${bound}</f>`, "s", () => undefined),
    /tls-exporter channel binding/,
  );
});

test("the licence <success/> is told apart from SASL's", () => {
  const licenceOk = serialize(successElement());
  assert.equal(isLicenceSuccess("success", licenceOk), true);
  assert.equal(isLicenceSuccess("success", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"), false);
  assert.equal(isLicenceSuccess("failure", `<failure xmlns='${NS_LICENCE}'/>`), false);
  assert.equal(serialize(x("success", { xmlns: NS_LICENCE })), licenceOk);
});
