/**
 * Licensing on real client streams (in-process server, loopback sockets): the feature
 * beside SASL, a proof bound to the TLS exporter after STARTTLS, refusals as stream errors
 * with their licence condition, enforce refusing before the password is checked, and a
 * live session closed on the wire after a registry change.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { NS_LICENCE } from "../../src/licensing/index.js";
import { clientInfoOf } from "../../src/modules/licensing/session-info.js";
import { ACTOR, type LicensingHarness, setPolicy } from "./b-kit.js";
import { licenceOf, SocketClient, socketLogin, startSocketServer } from "./b-socket.js";

const harnesses: LicensingHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

const start = () => startSocketServer(harnesses, { alice: "wonderland", bob: "builder" });

test("after STARTTLS the proof binds to the TLS exporter; the server records the verified client", async () => {
  const { h, port, t } = await start();
  const c = await SocketClient.connect(port);
  const first = await c.open(h.domain);
  const plainFeature = first.getChild("licence", NS_LICENCE);
  assert.ok(plainFeature, "offered beside STARTTLS when plaintext is allowed");
  assert.equal(plainFeature.getChild("channel-binding"), undefined, "no binding without TLS");
  const secured = await c.startTls(h.domain);
  assert.ok(secured.getChild("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"), "beside SASL");
  const f = c.licenceFeature();
  assert.equal(f.attrs.mode, "open");
  assert.equal(f.getChild("channel-binding")?.attrs.type, "tls-exporter");
  assert.notEqual(
    f.getChildText("nonce"),
    plainFeature.getChildText("nonce"),
    "a new nonce after the restart",
  );

  c.sendProof(h.domain, licenceOf(t));
  const success = await c.proofAnswer();
  assert.equal(success.attrs.xmlns, NS_LICENCE);
  assert.equal(await c.auth("alice", "wonderland"), "success");
  const jid = await c.bind(h.domain, "desk");
  assert.equal(jid, `alice@${h.domain}/desk`);
  const session = h.server.services.sessions.get("alice", "desk");
  assert.equal(clientInfoOf(session!)?.verified, true);
  assert.equal(clientInfoOf(session!)?.licenceId, t.licence.id);
  c.destroy();
});

test("TLS 1.3 offers tls-exporter and tls-server-end-point; a client may bind to either, naming the second", async () => {
  const { h, port, t } = await start();
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  await c.startTls(h.domain);
  const offered = c
    .licenceFeature()
    .getChildren("channel-binding")
    .map((el) => el.attrs.type);
  assert.deepEqual(offered, ["tls-exporter", "tls-server-end-point"], "best first");
  c.sendProof(h.domain, licenceOf(t), { bindingType: "tls-server-end-point" });
  await c.proofAnswer();
  assert.equal(await c.auth("alice", "wonderland"), "success");
  c.destroy();

  // Naming a binding the stream did not offer (none is offered without TLS) is a bad proof.
  const plain = await SocketClient.connect(port);
  await plain.open(h.domain);
  plain.sendProof(h.domain, licenceOf(t), { bindingType: "tls-server-end-point" });
  const err = await plain.streamError();
  assert.equal(err.licence?.name, "bad-proof");
  assert.match(err.text ?? "", /not offered/);
});

test("a proof made for the stream before STARTTLS is refused after it", async () => {
  const { h, port, t } = await start();
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  const oldStreamId = c.streamId;
  const oldFeatures = c.features;
  await c.startTls(h.domain);
  // Replay: the previous stream's id and nonce, over this connection.
  const newStreamId = c.streamId;
  const newFeatures = c.features;
  c.streamId = oldStreamId;
  c.features = oldFeatures;
  c.sendProof(h.domain, licenceOf(t));
  c.streamId = newStreamId;
  c.features = newFeatures;
  const err = await c.streamError();
  assert.equal(err.condition, "policy-violation");
  assert.equal(err.licence?.name, "bad-proof");
  await waitClosed(c);
});

test("a proof without TLS binds to no channel and is accepted", async () => {
  const { h, port, t } = await start();
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  assert.equal(c.licenceFeature().getChild("channel-binding"), undefined);
  c.sendProof(h.domain, licenceOf(t));
  assert.equal((await c.proofAnswer()).name, "success");
  c.destroy();
});

test("version refusals arrive as policy-violation with the text, minimum and upgrade URL", async () => {
  const { h, port, t } = await start();
  await setPolicy(h.registry, {
    apps: { [t.app.clientId]: { minVersion: "5.0", upgradeUrl: "https://example.com/upgrade" } },
  });
  await h.api.recheck();
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  await c.startTls(h.domain);
  c.sendProof(h.domain, licenceOf(t, "4.9"));
  const err = await c.streamError();
  assert.equal(err.condition, "policy-violation");
  assert.match(err.text ?? "", /5\.0 or later/);
  assert.equal(err.licence?.name, "version-too-old");
  assert.equal(err.licence?.attrs.minimum, "5.0");
  assert.equal(err.licence?.attrs["upgrade-url"], "https://example.com/upgrade");
  await waitClosed(c);
});

test("enforce refuses an unlicensed client at <auth/> without checking the password", async () => {
  const { h, port, t } = await start();
  await setPolicy(h.registry, { mode: "enforce", exemptions: ["bob"] });
  await h.api.recheck();
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  await c.startTls(h.domain);
  assert.equal(c.licenceFeature().attrs.mode, "enforce");
  // A wrong password: not-authorized would mean it was checked. The refusal is a failure that
  // clients show (account-disabled, with the text), then the machine-readable stream error.
  assert.equal(await c.auth("alice", "not the password"), "failure");
  const failure = c.lastFailure!;
  assert.ok(failure.getChild("account-disabled"), failure.toString());
  assert.match(failure.getChildText("text") ?? "", /licensed client software only/);
  assert.equal(
    failure.getChildElements().length,
    2,
    "RFC 6120's <failure/> holds a condition and a text, nothing else",
  );
  const err = await c.streamError();
  assert.equal(err.condition, "policy-violation");
  assert.equal(err.licence?.name, "unlicensed-client");
  assert.equal(err.text, failure.getChildText("text"));
  await waitClosed(c);
  assert.equal(h.server.services.loginGuard.failuresRemembered, 0, "no failed authentication was recorded");

  const exempt = await socketLogin({ port, domain: h.domain, user: "bob", password: "builder", tls: true });
  const licensed = await socketLogin({
    port,
    domain: h.domain,
    user: "alice",
    password: "wonderland",
    tls: true,
    licence: licenceOf(t),
  });
  exempt.destroy();
  licensed.destroy();
});

test("a live session is closed on the wire within one second of its licence being revoked", async () => {
  const { h, port, t } = await start();
  const c = await socketLogin({
    port,
    domain: h.domain,
    user: "alice",
    password: "wonderland",
    tls: true,
    licence: licenceOf(t),
  });
  const began = Date.now();
  await h.registry.setLicenceStatus(ACTOR, t.licence.id, "revoked");
  const err = await c.streamError(1000);
  assert.ok(Date.now() - began < 1000);
  assert.equal(err.condition, "policy-violation");
  assert.equal(err.licence?.name, "licence-revoked");
  await waitClosed(c);
  assert.equal(h.server.services.sessions.get("alice", "socket"), undefined, "unbound");
});

async function waitClosed(c: SocketClient): Promise<void> {
  const start = Date.now();
  while (!c.closed) {
    if (Date.now() - start > 3000) throw new Error("the server did not close the connection");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a proof where no nonce is offered is refused as bad-proof: before TLS, and once authenticated", async () => {
  // TLS required: before STARTTLS the stream offers no <licence/> feature, so no nonce.
  const { h, port, t } = await startSocketServer(
    harnesses,
    { alice: "wonderland" },
    { allowPlaintext: false },
  );
  const early = await SocketClient.connect(port);
  const features = await early.open(h.domain);
  assert.equal(features.getChild("licence", NS_LICENCE), undefined, "not offered before TLS");
  early.write(
    `<proof xmlns='${NS_LICENCE}' client-id='${t.app.clientId}' version='5.0.1' platform='linux' key-id='${t.keyId}'>AAAA</proof>`,
  );
  const before = await early.streamError();
  assert.equal(before.condition, "policy-violation");
  assert.equal(before.licence?.name, "bad-proof");
  assert.match(before.text ?? "", /no licence nonce was offered on this stream.*after TLS/);
  early.destroy();

  // Authenticated and bound: the proof's place has passed.
  const late = await socketLogin({
    port,
    domain: h.domain,
    user: "alice",
    password: "wonderland",
    tls: true,
  });
  late.write(
    `<proof xmlns='${NS_LICENCE}' client-id='${t.app.clientId}' version='5.0.1' platform='linux' key-id='${t.keyId}'>AAAA</proof>`,
  );
  const after = await late.streamError();
  assert.equal(after.condition, "policy-violation");
  assert.equal(after.licence?.name, "bad-proof");
  assert.match(after.text ?? "", /before authentication/);
  late.destroy();

  // Between authentication and binding too.
  const unbound = await SocketClient.connect(port);
  await unbound.open(h.domain);
  await unbound.startTls(h.domain);
  assert.equal(await unbound.auth("alice", "wonderland"), "success");
  await unbound.open(h.domain);
  unbound.write(
    `<proof xmlns='${NS_LICENCE}' client-id='${t.app.clientId}' version='5.0.1' platform='linux' key-id='${t.keyId}'>AAAA</proof>`,
  );
  assert.equal((await unbound.streamError()).licence?.name, "bad-proof");
  unbound.destroy();
});
