/**
 * A virtual host federates under its own name and certificate: server A serves a.test and
 * corp.test (each with a certificate from a CA both servers trust), server B serves b.test.
 * A user of corp.test subscribes to and chats with a user of b.test; the links in both
 * directions authenticate corp.test by its own certificate (SASL EXTERNAL, no dialback), and
 * A's server-to-server TLS port hands each SNI name its domain's certificate.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { chatBothWays, metricValues, subscribe, sumWhere } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { freePorts, runCli, startServer, type TestServer } from "../helpers/server.js";
import { xml } from "../helpers/stanza.js";
import { type IssuedCertificate, TestCa } from "../helpers/test-ca.js";

const NET = 100 + Math.floor(Math.random() * 150);
const HOST_A = `127.78.${NET}.1`;
const HOST_B = `127.78.${NET}.2`;
const PW = { dave: "dave-corp-federation-pw", bob: "bob-b-federation-pw" };

const files = ({ certFile, keyFile }: IssuedCertificate) => ({ certFile, keyFile });

/** The certificate A's direct TLS server-to-server port presents for an SNI name. */
async function s2sCertificate(port: number, servername: string): Promise<X509Certificate> {
  const socket = tls.connect({
    host: HOST_A,
    port,
    servername,
    rejectUnauthorized: false,
    ALPNProtocols: ["xmpp-server"],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
    return new X509Certificate(socket.getPeerX509Certificate()!.raw);
  } finally {
    socket.destroy();
  }
}

describe("a virtual host federating with another server", () => {
  let a: TestServer;
  let b: TestServer;
  let metricsA: string;
  let metricsB: string;
  let s2sTlsA: number;
  let dave: JsPeer;
  let bob: JsPeer;

  before(async () => {
    const ca = new TestCa();
    const [s2sA, s2sB, httpA, httpB, tlsA] = (await freePorts(5)) as [number, number, number, number, number];
    s2sTlsA = tlsA;
    metricsA = `http://${HOST_A}:${httpA}/metrics`;
    metricsB = `http://${HOST_B}:${httpB}/metrics`;
    const common = (s2s: number, http: number) => [
      "--s2s-port",
      String(s2s),
      "--http-port",
      String(http),
      "--s2s-ca",
      ca.caFile,
      "--log-level",
      "info",
    ];
    a = await startServer({
      name: "virtual-hosts-federation-a",
      domain: "a.test",
      host: HOST_A,
      config: {
        domain: "a.test",
        tls: files(ca.issue("a.test")),
        hosts: [{ domain: "corp.test", tls: files(ca.issue("corp.test")) }],
        http: { tls: "off" },
        s2sTlsPort: tlsA,
      },
      extraArgs: [...common(s2sA, httpA), "--s2s-route", `b.test=${HOST_B}:${s2sB}`],
    });
    b = await startServer({
      name: "virtual-hosts-federation-b",
      domain: "b.test",
      host: HOST_B,
      users: { bob: PW.bob },
      config: { tls: files(ca.issue("b.test")), http: { tls: "off" } },
      extraArgs: [
        ...common(s2sB, httpB),
        "--s2s-route",
        `a.test=${HOST_A}:${s2sA}`,
        "--s2s-route",
        `corp.test=${HOST_A}:${s2sA}`,
      ],
    }).catch(async (err) => {
      await a.stop();
      throw err;
    });
    await runCli(
      [
        "user",
        "add",
        "dave@corp.test",
        "--password",
        PW.dave,
        ...a.storageArgs(),
        "--config",
        path.join(a.dataDir, "e2e-config.yaml"),
      ],
      a.logFile,
    );
    dave = await connectJs(a, { user: "dave", domain: "corp.test", password: PW.dave, resource: "desk" });
    bob = await connectJs(b, { user: "bob", password: PW.bob, resource: "phone" });
    await dave.send(xml("presence"));
    await bob.send(xml("presence"));
  });
  after(async () => {
    await dave?.close();
    await bob?.close();
    await a?.stop();
    await b?.stop();
  });

  test("corp.test subscribes and chats with b.test over links authenticated by its own certificate", async () => {
    assert.equal(dave.jid, "dave@corp.test/desk");
    await subscribe(dave, bob);
    await chatBothWays(dave, bob, "virtual host");
    const authA = await metricValues(metricsA, "switchboard_s2s_authenticated_total");
    const authB = await metricValues(metricsB, "switchboard_s2s_authenticated_total");
    assert.ok(sumWhere(authA, { method: "sasl-external", direction: "out" }) >= 1, `A out: ${[...authA]}`);
    assert.ok(sumWhere(authB, { method: "sasl-external", direction: "in" }) >= 1, `B in: ${[...authB]}`);
    assert.ok(sumWhere(authB, { method: "sasl-external", direction: "out" }) >= 1, `B out: ${[...authB]}`);
    assert.ok(sumWhere(authA, { method: "sasl-external", direction: "in" }) >= 1, `A in: ${[...authA]}`);
    const dialback = [...authA, ...authB].filter(([labels]) => labels.includes("dialback"));
    assert.deepEqual(
      dialback.filter(([, n]) => n > 0),
      [],
      "no dialback: corp.test's certificate authenticates it",
    );
  });

  test("the server-to-server TLS port presents each domain's certificate by SNI", async () => {
    const corp = await s2sCertificate(s2sTlsA, "corp.test");
    assert.ok(corp.checkHost("corp.test"), `SNI corp.test: ${corp.subjectAltName}`);
    assert.equal(corp.checkHost("a.test"), undefined, `SNI corp.test: ${corp.subjectAltName}`);
    const primary = await s2sCertificate(s2sTlsA, "a.test");
    assert.ok(primary.checkHost("a.test"), `SNI a.test: ${primary.subjectAltName}`);
  });
});
