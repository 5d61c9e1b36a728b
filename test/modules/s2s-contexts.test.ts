/**
 * The server-to-server TLS contexts: one per served domain, shared by every link of that domain
 * in both directions, carrying the domain's certificate (what SASL EXTERNAL authenticates).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { after, describe, test } from "node:test";
import tls from "node:tls";
import { PeerContexts } from "../../src/modules/s2s/contexts.js";
import type { HostCertificate } from "../../src/transports/tls.js";
import { TestCa } from "../helpers/test-ca.js";

const ca = new TestCa();
const host = (domain: string): HostCertificate => {
  const issued = ca.issue(domain);
  return { certPem: issued.cert, keyPem: issued.key } as HostCertificate;
};
const primary = host("a.test");
const other = host("b.test");
const hosts = new Map([
  ["a.test", primary],
  ["b.test", other],
]);
const trusted = [...tls.rootCertificates, readFileSync(ca.caFile, "utf8")];
const material = {
  certificateFor: (name: string | undefined) => (name && hosts.get(name)) || primary,
  contextOptions: { minVersion: "TLSv1.2" as const },
};

describe("server-to-server TLS contexts", () => {
  const servers: net.Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  test("one context per served domain, made once; the primary domain's for a name it does not serve", () => {
    const contexts = new PeerContexts(material, trusted);
    const a = contexts.for("a.test");
    assert.equal(contexts.for("a.test"), a);
    assert.notEqual(contexts.for("b.test"), a);
    assert.equal(contexts.for("b.test"), contexts.for("b.test"));
    assert.equal(contexts.for("elsewhere.test"), a);
    assert.equal(contexts.for(undefined), a);
  });

  test("a link made with a domain's context presents that domain's certificate and trusts the peer's CA", async () => {
    const contexts = new PeerContexts(material, trusted);
    // As the inbound links are made: a server-side TLSSocket over the accepted TCP socket.
    const seen = new Promise<string>((resolve, reject) => {
      const server = net.createServer((raw) => {
        const socket = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: contexts.for("a.test"),
          requestCert: true,
          rejectUnauthorized: false,
        });
        socket.once("secure", () => {
          resolve(String(socket.getPeerCertificate().subject?.CN));
          socket.end();
        });
        socket.on("error", reject);
      });
      servers.push(server);
      server.listen(0, "127.0.0.1");
    });
    await new Promise((r) => servers[0]!.once("listening", r));
    const port = (servers[0]!.address() as net.AddressInfo).port;
    const client = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "a.test",
      secureContext: contexts.for("b.test"),
      rejectUnauthorized: false,
    });
    client.on("error", () => {});
    await new Promise((r) => client.once("secureConnect", r));
    assert.equal(client.authorized, true, "the client trusts the server's chain through the context's roots");
    assert.equal(client.getPeerCertificate().subject?.CN, "a.test");
    assert.equal(await seen, "b.test", "the server sees the client's domain certificate");
    client.destroy();
  });
});
