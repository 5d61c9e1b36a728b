/**
 * The SDK client against a scripted server: the proof is sent after TLS and
 * before SASL, bound to the stream and the TLS connection (TLS 1.3 exporter,
 * TLS 1.2 server end point), and refusals surface as LicenceRefusedError, at
 * login and on a live session, without reconnection attempts.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, describe, test } from "node:test";
import { type LicensedClient, licensedClient } from "../../sdk/licensed-client.js";
import { LicenceRefusedError } from "../../sdk/refusal.js";
import { FakeLicensingServer, type FakeServerOptions, streamError } from "../helpers/licensed-fake-server.js";

// The scripted server's certificate is self-signed (this test process only).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const LICENCE = {
  clientId: "com.example.chat",
  version: "5.0.1",
  platform: "linux",
  keyId: "k1",
  privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
};

const servers: FakeLicensingServer[] = [];
const clients: LicensedClient[] = [];

async function setup(opts: Partial<FakeServerOptions> = {}) {
  const server = await FakeLicensingServer.start({ publicKey, ...opts });
  servers.push(server);
  const client = licensedClient({
    service: server.service,
    domain: server.domain,
    username: "alice",
    password: "alice-pw",
    resource: "sdk",
    timeout: 5000,
    licence: LICENCE,
  });
  client.on("error", () => undefined);
  clients.push(client);
  return { server, client };
}

after(async () => {
  for (const c of clients) {
    c.reconnect.stop();
    await c.stop().catch(() => undefined);
  }
  for (const s of servers) await s.close();
});

describe("SDK client: the licence step in the negotiation", () => {
  test("TLS 1.3: proof after STARTTLS and before <auth/>, bound with tls-exporter", async () => {
    const { server, client } = await setup({
      answer: (p) =>
        p.verified
          ? `<success xmlns='urn:switchboard:client-licence:0'><recommended version='5.1' url='https://example.com/get'/></success>`
          : streamError("bad-proof", "no"),
    });
    const accepted = new Promise((r) => client.once("licence", r));
    const jid = await client.start();
    assert.equal(jid.toString(), "alice@localhost/sdk");
    const conn = server.connections[0]!;
    assert.deepEqual(conn.received.slice(0, 3), ["starttls", "proof", "auth"], "order of negotiation");
    assert.equal(conn.authcid, "alice");
    assert.equal(conn.password, "alice-pw");
    const proof = server.proofs[0]!;
    assert.equal(proof.bindingType, "tls-exporter");
    assert.ok(proof.verified, `signature over:\n${proof.expected}`);
    assert.deepEqual(
      {
        client: proof.attrs["client-id"],
        version: proof.attrs.version,
        platform: proof.attrs.platform,
        key: proof.attrs["key-id"],
      },
      { client: "com.example.chat", version: "5.0.1", platform: "linux", key: "k1" },
    );
    await accepted;
    assert.equal(client.licence.offer?.mode, "warn");
    assert.equal(client.licence.offer?.cutoff, "2027-01-15T00:00:00Z");
    assert.deepEqual(client.licence.accepted?.recommended, {
      version: "5.1",
      url: "https://example.com/get",
    });
  });

  test("TLS 1.2: bound with tls-server-end-point", async () => {
    const { server, client } = await setup({ maxTls: "TLSv1.2" });
    await client.start();
    const proof = server.proofs[0]!;
    assert.equal(proof.bindingType, "tls-server-end-point");
    assert.ok(proof.verified, `signature over:\n${proof.expected}`);
  });

  test("a server without the feature: no proof, login as usual", async () => {
    const { server, client } = await setup({ offerLicence: false });
    await client.start();
    assert.deepEqual(server.connections[0]!.received.slice(0, 2), ["starttls", "auth"]);
    assert.equal(client.licence.offer, undefined);
    assert.equal(client.licence.accepted, undefined);
  });

  test("refused at login: start() rejects with the condition, minimum and upgrade URL; no password sent", async () => {
    const { server, client } = await setup({
      answer: () =>
        streamError("version-too-old", "Please upgrade Example Chat", {
          minimum: "5.2",
          "upgrade-url": "https://example.com/upgrade",
        }),
    });
    const refusedEvent = new Promise<LicenceRefusedError>((r) => client.once("licence-refused", r));
    const err = await client.start().then(
      () => assert.fail("start() resolved"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LicenceRefusedError, `got ${String(err)}`);
    assert.equal(err.condition, "version-too-old");
    assert.equal(err.streamCondition, "policy-violation");
    assert.equal(err.minimum, "5.2");
    assert.equal(err.upgradeUrl, "https://example.com/upgrade");
    assert.equal(err.text, "Please upgrade Example Chat");
    assert.equal((await refusedEvent).condition, "version-too-old");
    assert.equal(client.licence.refused?.condition, "version-too-old");
    assert.ok(!server.connections[0]!.received.includes("auth"), "the password must not be sent");
  });

  test("refused on a live session: 'licence-refused' event, no reconnection", async () => {
    const { server, client } = await setup();
    await client.start();
    const refused = new Promise<LicenceRefusedError>((r) => client.once("licence-refused", r));
    server.connections[0]!.send(streamError("too-many-sessions", "limit reached", { limit: "3" }));
    const err = await refused;
    assert.equal(err.condition, "too-many-sessions");
    assert.equal(err.limit, 3);
    await server.connections[0]!.closed;
    // @xmpp/reconnect would try again after 1 s.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(server.connections.length, 1, "the client reconnected after a refusal");
  });

  test("a proof the server cannot verify is refused as bad-proof (wrong key)", async () => {
    const other = generateKeyPairSync("ed25519").publicKey;
    const { server, client } = await setup({ publicKey: other });
    const err = await client.start().then(
      () => assert.fail("start() resolved"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LicenceRefusedError);
    assert.equal(err.condition, "bad-proof");
    assert.equal(server.proofs[0]!.verified, false);
  });

  test("bad licence options fail at construction", () => {
    assert.throws(
      () =>
        licensedClient({ service: "xmpp://x", domain: "x", licence: { ...LICENCE, version: "5.0-beta" } }),
      /dotted version/,
    );
    assert.throws(
      () => licensedClient({ service: "xmpp://x", domain: "x", licence: { ...LICENCE, keyId: "a\nb" } }),
      /line break/,
    );
  });
});
