/**
 * The licence proof's second carrier (protocol §2.6): inside a XEP-0388 SASL2
 * <authenticate/>, judged by the same verifier before the password is used, answered
 * inside the SASL2 <success/>; refusals stay stream errors; a refused ticket fails the
 * attempt and leaves the nonce for one signed proof. Also: SASL2 as such (no restart,
 * the authorised JID) and its <user-agent/> kept as unverified client information.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { NS_LICENCE } from "../../src/licensing/index.js";
import { clientInfoOf } from "../../src/modules/licensing/session-info.js";
import { type LicensingHarness, setPolicy } from "./b-kit.js";
import { licenceOf, SocketClient, startSocketServer } from "./b-socket.js";

const NS_SASL2 = "urn:xmpp:sasl:2";
const harnesses: LicensingHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

const start = () => startSocketServer(harnesses, { alice: "wonderland" });

async function tlsStream(h: LicensingHarness, port: number): Promise<SocketClient> {
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  await c.startTls(h.domain);
  return c;
}

type Outcome = Awaited<ReturnType<SocketClient["authenticate2"]>>;

/** The SASL2 <success/> or <failure/> the attempt ended with (not a closed stream). */
function outcomeNamed(name: "success" | "failure", outcome: Outcome, why = "the stream was closed") {
  assert.notEqual(outcome, "stream-error", why);
  assert.equal(typeof outcome === "string" ? outcome : outcome.name, name, String(outcome));
  return outcome as Exclude<Outcome, string>;
}
const success = (outcome: Outcome) => outcomeNamed("success", outcome);
const failure = (outcome: Outcome, why?: string) => outcomeNamed("failure", outcome, why);

test("SASL2 is offered with the mechanisms and the proof inline; a proof inside <authenticate/> is verified", async () => {
  const { h, port, t } = await start();
  const c = await tlsStream(h, port);
  const auth = c.features?.getChild("authentication", NS_SASL2);
  assert.ok(auth, `SASL2 offered: ${c.features?.toString()}`);
  const mechanisms = auth.getChildren("mechanism").map((m) => m.text());
  assert.ok(mechanisms.includes("PLAIN") && mechanisms.includes("SCRAM-SHA-1"), mechanisms.join(", "));
  assert.ok(auth.getChild("inline")?.getChild("licence", NS_LICENCE), "the proof may ride inline");

  const result = success(
    await c.authenticate2("alice", "wonderland", { inline: c.proofText(h.domain, licenceOf(t)) }),
  );
  assert.equal(result.getChildText("authorization-identifier"), `alice@${h.domain}`);
  const answer = result.getChild("success", NS_LICENCE);
  assert.ok(answer, `the licence answer inside SASL2 <success/>: ${result.toString()}`);
  assert.ok(answer.getChild("ticket"), "a signed proof over TLS earns a ticket on this carrier too");
  // No stream restart: the post-authentication features follow at once.
  await c.waitFor(/<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/, "features after SASL2");
  assert.equal(await c.bindHere("desk"), `alice@${h.domain}/desk`);
  const info = clientInfoOf(h.server.services.sessions.get("alice", "desk")!);
  assert.equal(info?.verified, true);
  assert.equal(info?.licenceId, t.licence.id);
  c.destroy();
});

test("enforce: SASL2 without a proof is refused before the password is used", async () => {
  const { h, port } = await start();
  await setPolicy(h.registry, { mode: "enforce" });
  await h.api.recheck();
  const c = await tlsStream(h, port);
  const failure = await c.authenticate2("alice", "not the password");
  assert.notEqual(failure, "stream-error", "a SASL2 failure comes first");
  if (failure === "stream-error") return;
  assert.equal(failure.name, "failure");
  assert.ok(failure.getChild("account-disabled", "urn:ietf:params:xml:ns:xmpp-sasl"), failure.toString());
  assert.match(failure.getChildText("text") ?? "", /licensed client software only/);
  assert.ok(failure.getChild("unlicensed-client", NS_LICENCE), "XEP-0388 carries the application condition");
  const err = await c.streamError();
  assert.equal(err.condition, "policy-violation");
  assert.equal(err.licence?.name, "unlicensed-client");
  assert.equal(h.server.services.loginGuard.failuresRemembered, 0, "no failed authentication was recorded");
  c.destroy();
});

test("enforce: a forged proof inside <authenticate/> closes the stream with bad-proof, the password unused", async () => {
  const { h, port, t } = await start();
  await setPolicy(h.registry, { mode: "enforce" });
  await h.api.recheck();
  const c = await tlsStream(h, port);
  const forged = c
    .proofText(h.domain, licenceOf(t))
    .replace(/>[^<]+<\/proof>$/, `>${randomBytes(64).toString("base64")}</proof>`);
  assert.equal(await c.authenticate2("alice", "not the password", { inline: forged }), "stream-error");
  const err = await c.streamError();
  assert.equal(err.licence?.name, "bad-proof");
  assert.equal(h.server.services.loginGuard.failuresRemembered, 0, "no failed authentication was recorded");
  c.destroy();
});

test("a ticket the server does not accept fails the SASL2 attempt with <ticket-refused/>; a signed proof may follow", async () => {
  const { h, port, t } = await start();
  await setPolicy(h.registry, { mode: "enforce" });
  await h.api.recheck();
  const c = await tlsStream(h, port);
  const foreignTicket = c
    .proofText(h.domain, licenceOf(t))
    .replace("<proof ", `<proof ticket='${randomBytes(48).toString("base64url")}' `)
    .replace(/>[^<]+<\/proof>$/, `>${randomBytes(32).toString("base64")}</proof>`);
  const failed = failure(await c.authenticate2("alice", "wonderland", { inline: foreignTicket }));
  assert.ok(failed.getChild("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"), failed.toString());
  assert.ok(failed.getChild("ticket-refused", NS_LICENCE), failed.toString());
  assert.equal(h.server.services.loginGuard.failuresRemembered, 0, "an old ticket is not a failed password");

  const result = success(
    await c.authenticate2("alice", "wonderland", { inline: c.proofText(h.domain, licenceOf(t)) }),
  );
  assert.ok(result.getChild("success", NS_LICENCE));
  c.destroy();
});

test("a SASL2 user-agent names the software of an unlicensed session, as unverified", async () => {
  const { h, port } = await start();
  const c = await tlsStream(h, port);
  success(await c.authenticate2("alice", "wonderland", { software: "Gajim" }));
  await c.bindHere("laptop");
  const info = clientInfoOf(h.server.services.sessions.get("alice", "laptop")!);
  assert.deepEqual(
    { clientId: info?.clientId, source: info?.source, verified: info?.verified },
    { clientId: "Gajim", source: "sasl2", verified: false },
  );
  c.destroy();
});

test("a wrong password over SASL2 is a SASL2 <failure/> with not-authorized", async () => {
  const { h, port } = await start();
  const c = await tlsStream(h, port);
  const failed = failure(await c.authenticate2("alice", "not the password"));
  assert.ok(failed.getChild("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"), failed.toString());
  success(await c.authenticate2("alice", "wonderland"));
  c.destroy();
});

test("the proof counts for the stream: after a wrong password the retry goes without it", async () => {
  const { h, port, t } = await start();
  await setPolicy(h.registry, { mode: "enforce" });
  await h.api.recheck();
  const c = await tlsStream(h, port);
  const proof = c.proofText(h.domain, licenceOf(t));
  failure(
    await c.authenticate2("alice", "not the password", { inline: proof }),
    "the proof was accepted, the password was not",
  );
  success(await c.authenticate2("alice", "wonderland"));
  await c.bindHere("desk");
  assert.equal(clientInfoOf(h.server.services.sessions.get("alice", "desk")!)?.verified, true);
  c.destroy();
});
