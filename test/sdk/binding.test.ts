/**
 * Channel-binding data on the client side: tls-server-end-point picks its hash
 * from the certificate's signature algorithm (RFC 5929 §4.1), tls-exporter
 * equals what the server exports on the same connection (RFC 9266).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import tls from "node:tls";
import pino from "pino";
import { generate } from "selfsigned";
import { certificateSignatureOid, channelBindingData, serverEndPoint } from "../../sdk/binding.js";
import { loadServerConfig } from "../../src/server/config.js";
import { loadTls, tlsChannelBinding } from "../../src/transports/tls.js";
import { PYTHON_EXAMPLE } from "../helpers/licensed-chat.js";
import { requirePeer } from "../helpers/services.js";
import { PYTHON, slixSkip } from "../helpers/slix-client.js";

async function cert(opts: { keyType: "ec" | "rsa"; algorithm: string; curve?: "P-256" | "P-384" }) {
  const pems = await generate([{ name: "commonName", value: "localhost" }], opts);
  return { pem: pems.cert, key: pems.private, der: Buffer.from(new X509Certificate(pems.cert).raw) };
}

/** A TLS connection to a local server; returns both ends once the handshake is done. */
async function tlsPair(
  c: { pem: string; key: string },
  maxVersion: "TLSv1.2" | "TLSv1.3",
): Promise<{ client: tls.TLSSocket; server: tls.TLSSocket; close: () => void }> {
  const srv = tls.createServer({ cert: c.pem, key: c.key, maxVersion });
  let serverSide!: tls.TLSSocket;
  const accepted = new Promise<void>((resolve) => {
    srv.once("secureConnection", (s: tls.TLSSocket) => {
      serverSide = s;
      resolve();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const client = tls.connect({
    host: "127.0.0.1",
    port: (srv.address() as AddressInfo).port,
    rejectUnauthorized: false,
  });
  await new Promise<void>((r) => client.once("secureConnect", () => r()));
  await accepted;
  return {
    client,
    server: serverSide,
    close: () => {
      client.destroy();
      serverSide.destroy();
      srv.close();
    },
  };
}

describe("channel binding", () => {
  test("tls-server-end-point: SHA-256 for ecdsa-with-SHA256 and sha256WithRSA", async () => {
    for (const c of [
      await cert({ keyType: "ec", curve: "P-256", algorithm: "sha256" }),
      await cert({ keyType: "rsa", algorithm: "sha256" }),
    ]) {
      assert.deepEqual(serverEndPoint(c.der), createHash("sha256").update(c.der).digest());
    }
  });

  test("tls-server-end-point: the signature's own hash when stronger (SHA-384, SHA-512)", async () => {
    const ec384 = await cert({ keyType: "ec", curve: "P-384", algorithm: "sha384" });
    assert.equal(certificateSignatureOid(ec384.der), "1.2.840.10045.4.3.3");
    assert.deepEqual(serverEndPoint(ec384.der), createHash("sha384").update(ec384.der).digest());
    const rsa512 = await cert({ keyType: "rsa", algorithm: "sha512" });
    assert.equal(certificateSignatureOid(rsa512.der), "1.2.840.113549.1.1.13");
    assert.deepEqual(serverEndPoint(rsa512.der), createHash("sha512").update(rsa512.der).digest());
  });

  test("tls-server-end-point: SHA-256 replaces SHA-1", async () => {
    const sha1 = await cert({ keyType: "rsa", algorithm: "sha1" });
    assert.equal(certificateSignatureOid(sha1.der), "1.2.840.113549.1.1.5");
    assert.deepEqual(serverEndPoint(sha1.der), createHash("sha256").update(sha1.der).digest());
  });

  test("not a certificate → an error, not a hash of garbage", () => {
    assert.throws(() => serverEndPoint(Buffer.from("3003020101", "hex")), /DER|certificate/);
  });

  test("tls-exporter over TLS 1.3 equals the server's export; differs between connections", async () => {
    const c = await cert({ keyType: "ec", curve: "P-256", algorithm: "sha256" });
    const a = await tlsPair(c, "TLSv1.3");
    const b = await tlsPair(c, "TLSv1.3");
    try {
      const mine = channelBindingData(a.client, "tls-exporter");
      assert.equal(mine.length, 32);
      assert.deepEqual(mine, a.server.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0)));
      assert.notDeepEqual(mine, channelBindingData(b.client, "tls-exporter"));
    } finally {
      a.close();
      b.close();
    }
  });

  test("tls-server-end-point from a live connection hashes the certificate the server sent", async () => {
    const c = await cert({ keyType: "ec", curve: "P-384", algorithm: "sha384" });
    const p = await tlsPair(c, "TLSv1.2");
    try {
      assert.deepEqual(
        channelBindingData(p.client, "tls-server-end-point"),
        createHash("sha384").update(c.der).digest(),
      );
    } finally {
      p.close();
    }
  });
});

/** A self-signed RSASSA-PSS certificate made by openssl, or a reason to skip. */
async function pssCertificate(dir: string, hash: "sha256" | "sha384" | "sha512") {
  const made = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1"].concat([
      `-${hash}`,
      "-sigopt",
      "rsa_padding_mode:pss",
      "-sigopt",
      "rsa_pss_saltlen:32",
      "-keyout",
      path.join(dir, `pss-${hash}.key`),
      "-out",
      path.join(dir, `pss-${hash}.pem`),
    ]),
    { encoding: "utf8" },
  );
  if (made.error || made.status !== 0) {
    return {
      skip: await requirePeer("openssl", () => `openssl cannot make an RSA-PSS certificate: ${made.stderr}`),
    };
  }
  const pem = readFileSync(path.join(dir, `pss-${hash}.pem`), "utf8");
  return { der: Buffer.from(new X509Certificate(pem).raw) };
}

describe("tls-server-end-point with an RSASSA-PSS certificate", () => {
  test("the hash the PSS parameters name (RFC 5929: the signature algorithm's hash)", async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sb-pss-cert-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const hash of ["sha384", "sha512", "sha256"] as const) {
      const made = await pssCertificate(dir, hash);
      if (made.skip) return t.skip(made.skip);
      const der = made.der!;
      assert.equal(certificateSignatureOid(der), "1.2.840.113549.1.1.10", "id-RSASSA-PSS");
      assert.deepEqual(serverEndPoint(der), createHash(hash).update(der).digest(), hash);
    }
  });
  test("the Python example computes the same, also with a cryptography too old to read PSS", async (t) => {
    if (slixSkip) return t.skip(slixSkip);
    const dir = mkdtempSync(path.join(os.tmpdir(), "sb-pss-python-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const hash of ["sha384", "sha512", "sha256"] as const) {
      const made = await pssCertificate(dir, hash);
      if (made.skip) return t.skip(made.skip);
      const file = path.join(dir, `pss-${hash}.der`);
      writeFileSync(file, made.der!);
      const run = spawnSync(
        PYTHON,
        [
          "-c",
          "import sys; sys.path.insert(0, sys.argv[1]); import licence_proof; " +
            "print(licence_proof.server_end_point(open(sys.argv[2], 'rb').read()).hex())",
          path.dirname(PYTHON_EXAMPLE),
          file,
        ],
        { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } },
      );
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout.trim(), createHash(hash).update(made.der!).digest("hex"), hash);
    }
  });
});

describe("tls-server-end-point with an Ed25519 certificate", () => {
  test("SHA-256, as for other signature algorithms without a hash of their own; both ends agree", async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sb-ed25519-cert-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const made = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ed25519", "-nodes", "-subj", "/CN=localhost", "-days", "1"].concat([
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
      ]),
      { encoding: "utf8" },
    );
    if (made.error || made.status !== 0) {
      const skip = await requirePeer(
        "openssl",
        () => `openssl cannot make an Ed25519 certificate: ${made.stderr}`,
      );
      if (skip) return t.skip(skip);
    }
    const pem = readFileSync(path.join(dir, "cert.pem"), "utf8");
    const key = readFileSync(path.join(dir, "key.pem"), "utf8");
    const der = Buffer.from(new X509Certificate(pem).raw);
    assert.equal(certificateSignatureOid(der), "1.3.101.112", "id-Ed25519");
    const expected = createHash("sha256").update(der).digest();
    assert.deepEqual(serverEndPoint(der), expected);
    // Over a TLS 1.3 connection with that certificate: the client's computation and the server's.
    const pair = await tlsPair({ pem, key }, "TLSv1.3");
    try {
      assert.deepEqual(channelBindingData(pair.client, "tls-server-end-point"), expected);
      // The server's value, from the certificate the connection was given.
      assert.deepEqual(tlsChannelBinding(pair.server, "tls-server-end-point"), expected);
      // And the server takes such a pair as configured (tls.certFile, tls.keyFile).
      const config = loadServerConfig({
        overrides: {
          dataDir: dir,
          tls: { certFile: path.join(dir, "cert.pem"), keyFile: path.join(dir, "key.pem") },
        },
      });
      const material = await loadTls(config, pino({ level: "silent" }));
      assert.equal(material.fingerprint, new X509Certificate(pem).fingerprint256);
    } finally {
      pair.close();
    }
  });
});
