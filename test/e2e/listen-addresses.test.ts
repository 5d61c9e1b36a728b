/**
 * `switchboard start` without --bind listens on both loopbacks, each port on 127.0.0.1 and
 * ::1, so a client that resolves `localhost` to ::1 first (slixmpp, browsers) reaches it;
 * --bind still chooses the addresses.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { after, describe, test } from "node:test";
import tls from "node:tls";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";

/** The first bytes a client gets after opening a stream on a plain connection. */
function streamHeaderFrom(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let got = "";
    s.setTimeout(10_000, () => {
      s.destroy();
      reject(new Error(`no stream header from ${host}:${port}`));
    });
    s.on("connect", () =>
      s.write(
        "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
      ),
    );
    s.on("data", (d) => {
      got += d.toString();
      if (got.includes("</stream:features>")) {
        s.destroy();
        resolve(got);
      }
    });
    s.on("error", reject);
  });
}

function tlsHandshake(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ["xmpp-client"] }, () => {
      const protocol = s.getProtocol() ?? "";
      s.destroy();
      resolve(protocol);
    });
    s.on("error", reject);
  });
}

/** The protocol direct TLS selected by ALPN for `offer` ("none" without one), or the handshake's error. */
function alpnAnswer(host: string, port: number, offer: string[] | undefined): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect(
      { host, port, rejectUnauthorized: false, ...(offer ? { ALPNProtocols: offer } : {}) },
      () => {
        const selected = s.alpnProtocol;
        s.destroy();
        resolve(selected === false || selected === null ? "none" : selected);
      },
    );
    s.on("error", (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
  });
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
}

describe("listen addresses", () => {
  let server: TestServer | undefined;
  after(async () => {
    if (server?.running) await server.stop();
  });

  test("by default every port listens on 127.0.0.1 and on ::1", async () => {
    const [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "listen-addresses",
      defaultBind: true,
      extraArgs: ["--http-port", String(httpPort), "--log-level", "info"],
    });
    for (const host of ["127.0.0.1", "::1"]) {
      assert.match(await streamHeaderFrom(host, server.c2sPort), /<starttls/, `c2s on ${host}`);
      assert.match(await tlsHandshake(host, server.c2sTlsPort), /^TLSv1\.[23]$/, `direct TLS on ${host}`);
      const url = `http://${host.includes(":") ? `[${host}]` : host}:${httpPort}/api/v1/health`;
      const health = (await (await fetch(url)).json()) as { status: string };
      assert.equal(health.status, "ok", `HTTP on ${host}`);
    }
    const banner = readFileSync(server.logFile, "utf8");
    assert.match(banner, new RegExp(`XMPP clients: 127\\.0\\.0\\.1 and \\[::1\\] port ${server.c2sPort} `));
    await server.stop();
    server = undefined;
  });

  test("direct TLS selects xmpp-client by ALPN (XEP-0368, RFC 7301)", async () => {
    server = await startServer({ name: "listen-addresses-alpn" });
    const port = server.c2sTlsPort;
    assert.equal(await alpnAnswer("127.0.0.1", port, ["xmpp-client"]), "xmpp-client");
    assert.equal(await alpnAnswer("127.0.0.1", port, ["h2", "xmpp-client"]), "xmpp-client");
    assert.equal(await alpnAnswer("127.0.0.1", port, undefined), "none", "a client without ALPN is served");
    // RFC 7301 §3.2: no protocol in common is a fatal no_application_protocol alert.
    assert.equal(
      await alpnAnswer("127.0.0.1", port, ["h2"]),
      "error ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
    );
    await server.stop();
    server = undefined;
  });

  test("--bind chooses the addresses", async () => {
    const [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "listen-addresses-bind",
      extraArgs: ["--http-port", String(httpPort)],
    });
    assert.match(await streamHeaderFrom("127.0.0.1", server.c2sPort), /<starttls/);
    assert.equal(await refused("::1", server.c2sPort), true, "not on ::1 with --bind 127.0.0.1");
    assert.equal(await refused("::1", httpPort), true, "HTTP not on ::1 with --bind 127.0.0.1");
    await server.stop();
    server = undefined;
  });
});
