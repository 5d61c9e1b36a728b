/**
 * A renewed certificate is served without a restart: on SIGHUP and, by default, within
 * `tls.reloadCheckSeconds` of the files changing. Every TLS listener takes it (STARTTLS,
 * direct TLS with and without SNI, HTTPS, server-to-server direct TLS); open connections keep
 * theirs; a pair caught half-written (a key that is not the certificate's) is refused and the
 * current certificate stays.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { RawConnection } from "../helpers/raw-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { type IssuedCertificate, TestCa } from "../helpers/test-ca.js";

const PW = { alice: "alice-cert-reload-pw" };

/** The SHA-256 fingerprint of a certificate file, as Node prints it. */
function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

/** The certificate a TLS handshake on host:port gets (with `servername` as SNI, or none). */
function servedOnDirectTls(port: number, servername?: string): Promise<string> {
  return handshake(
    tls.connect({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      ...(servername ? { servername } : {}),
    }),
  );
}

/** The certificate STARTTLS on the client port gets. */
async function servedOnStartTls(port: number): Promise<string> {
  const plain = net.connect({ host: "127.0.0.1", port });
  let received = "";
  await new Promise<void>((resolve, reject) => {
    plain.on("data", (d: Buffer) => {
      received += d;
      if (received.includes("<proceed")) resolve();
    });
    plain.once("error", reject);
    plain.write(
      "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" +
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    );
  });
  plain.removeAllListeners("data");
  return handshake(tls.connect({ socket: plain, servername: "localhost", rejectUnauthorized: false }));
}

function handshake(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once("secureConnect", () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once("error", reject);
  });
}

/** GET over HTTPS from the server's own listener (its certificate is the test CA's). */
function httpsGet(port: number, pathname: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path: pathname, rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d;
        });
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

async function waitForLog(server: TestServer, pattern: RegExp, what: string, from: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const line = readFileSync(server.logFile, "utf8")
      .slice(from)
      .split("\n")
      .find((l) => pattern.test(l));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no log line for ${what} within 10 s:\n${server.logTail()}`);
}

function logLength(server: TestServer): number {
  return readFileSync(server.logFile, "utf8").length;
}

/** Installs a certificate pair where the server reads its files (cert first, then key, as a renewal might). */
function install(
  issued: IssuedCertificate,
  live: { certFile: string; keyFile: string },
  parts = ["cert", "key"],
): void {
  if (parts.includes("cert")) copyFileSync(issued.certFile, live.certFile);
  if (parts.includes("key")) copyFileSync(issued.keyFile, live.keyFile);
}

describe("certificate reload", () => {
  const ca = new TestCa();
  const liveDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-live-cert-"));
  const live = { certFile: path.join(liveDir, "cert.pem"), keyFile: path.join(liveDir, "key.pem") };
  let server: TestServer;
  let httpPort: number;
  let s2sTlsPort: number;

  /** The fingerprint every listener serves now, by listener. */
  async function served(): Promise<Record<string, string>> {
    return {
      "direct TLS, no SNI": await servedOnDirectTls(server.c2sTlsPort),
      "direct TLS, SNI localhost": await servedOnDirectTls(server.c2sTlsPort, "localhost"),
      STARTTLS: await servedOnStartTls(server.c2sPort),
      HTTPS: await servedOnDirectTls(httpPort),
      "server-to-server direct TLS": await servedOnDirectTls(s2sTlsPort),
    };
  }

  function everywhere(fingerprint: string): Record<string, string> {
    return Object.fromEntries(
      [
        "direct TLS, no SNI",
        "direct TLS, SNI localhost",
        "STARTTLS",
        "HTTPS",
        "server-to-server direct TLS",
      ].map((k) => [k, fingerprint]),
    );
  }

  before(async () => {
    install(ca.issue("localhost"), live);
    [httpPort, s2sTlsPort] = (await freePorts(2)) as [number, number];
    server = await startServer({
      name: "certificate-reload",
      users: PW,
      // Only SIGHUP here: the periodic check has its own test below.
      config: { tls: { ...live, reloadCheckSeconds: 0 }, s2sTlsPort },
      extraArgs: ["--http-port", String(httpPort), "--log-level", "info"],
    });
  });

  after(async () => {
    if (server?.running) await server.stop();
    rmSync(liveDir, { recursive: true, force: true });
    rmSync(ca.dir, { recursive: true, force: true });
  });

  test("SIGHUP: every listener serves the renewed certificate; a half-written pair is refused; open connections stay", async () => {
    const first = fingerprintOf(live.certFile);
    assert.deepEqual(await served(), everywhere(first));
    const alice = await RawConnection.open(server, { label: "alice, connected before the renewal" });
    await alice.login(server, "alice", PW.alice, "phone");

    // The renewal's certificate, with the old key still in place: refused, the old pair stays.
    const renewed = ca.issue("localhost");
    install(renewed, live, ["cert"]);
    let mark = logLength(server);
    server.proc.kill("SIGHUP");
    const refusal = await waitForLog(
      server,
      /"msg":"TLS: the certificate files did not load/,
      "the refusal",
      mark,
    );
    assert.match(refusal, /is not the key of the certificate/);
    await waitForLog(server, /"msg":"SIGHUP: certificate files read again"/, "the SIGHUP summary", mark);
    assert.deepEqual(
      await served(),
      everywhere(first),
      "the current certificate while the pair does not match",
    );

    // With its key: taken.
    install(renewed, live, ["key"]);
    mark = logLength(server);
    server.proc.kill("SIGHUP");
    const summary = await waitForLog(
      server,
      /"msg":"SIGHUP: certificate files read again"/,
      "the SIGHUP summary",
      mark,
    );
    assert.deepEqual(JSON.parse(summary).replaced, ["localhost"]);
    const second = fingerprintOf(live.certFile);
    assert.notEqual(second, first);
    assert.deepEqual(await served(), everywhere(second));

    // The connection made before the renewal is still served.
    alice.write("<iq type='get' id='after-renewal'><ping xmlns='urn:xmpp:ping'/></iq>");
    const pong = await alice.stanzaWithId("iq", "after-renewal", "the ping's answer");
    assert.equal(pong.attrs.type, "result");
    alice.destroy();
    assert.ok(server.running, "SIGHUP does not end the server");
  });

  test("without SIGHUP: the files are checked every tls.reloadCheckSeconds", async () => {
    await server.stop({ keepData: true });
    server = await startServer({
      name: "certificate-reload-periodic",
      dataDir: server.dataDir,
      removeDataOnStop: true,
      config: { tls: { ...live, reloadCheckSeconds: 1 }, s2sTlsPort },
      extraArgs: ["--http-port", String(httpPort), "--log-level", "info"],
    });
    const before = fingerprintOf(live.certFile);
    assert.equal(await servedOnDirectTls(server.c2sTlsPort), before);
    install(ca.issue("localhost"), live);
    const renewed = fingerprintOf(live.certFile);
    const deadline = Date.now() + 10_000;
    let now = before;
    while (Date.now() < deadline && now !== renewed) {
      await new Promise((r) => setTimeout(r, 200));
      now = await servedOnDirectTls(server.c2sTlsPort);
    }
    assert.equal(now, renewed, "the renewed certificate within a few seconds");
    assert.deepEqual(await served(), everywhere(renewed));
  });

  test("a certificate close to its end: a warning in the log and its expiry in /metrics", async () => {
    // The test CA's certificates last 3 days: inside the 14 days that are warned of.
    const notAfter = new Date(new X509Certificate(readFileSync(live.certFile)).validTo);
    // This run's start (the log file is appended to) warned of the certificate it started with.
    const thisRun = readFileSync(server.logFile, "utf8").lastIndexOf("[e2e] ");
    const warning = JSON.parse(
      await waitForLog(server, /"msg":"TLS: the certificate expires soon/, "the expiry warning", thisRun),
    );
    assert.equal(warning.domain, "localhost");
    assert.equal(warning.daysLeft, 2);
    const metrics = await httpsGet(httpPort, "/metrics");
    const line = metrics
      .split("\n")
      .find((l) => l.startsWith("switchboard_tls_certificate_expiry_timestamp_seconds{"));
    assert.equal(
      line,
      `switchboard_tls_certificate_expiry_timestamp_seconds{domain="localhost"} ${notAfter.getTime() / 1000}`,
    );
  });
});
