/**
 * TLS material: the configured PEM files, or a self-signed certificate for the
 * domain generated on first start and kept in dataDir/tls so clients can pin it.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import type { Logger } from "pino";
import { generate } from "selfsigned";
import { serverEndPoint } from "../../sdk/tls-end-point.js";
import type { ServerConfig } from "../core/config.js";

export interface TlsMaterial {
  context: tls.SecureContext;
  certPem: string;
  keyPem: string;
  /** SHA-256 fingerprint, printed at startup so people can check what their client shows. */
  fingerprint: string;
  certFile: string;
  selfSigned: boolean;
  /** tls-server-end-point channel binding data (RFC 5929 §4.1), computed once. */
  serverEndPoint: Buffer;
}

export async function loadTls(config: ServerConfig, log: Logger): Promise<TlsMaterial> {
  let certFile = config.tls.certFile;
  let keyFile = config.tls.keyFile;
  let selfSigned = false;
  if (!certFile || !keyFile) {
    const dir = path.join(config.dataDir, "tls");
    certFile = path.join(dir, `${config.domain}.crt`);
    keyFile = path.join(dir, `${config.domain}.key`);
    selfSigned = true;
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const notBefore = new Date(Date.now() - 60_000);
      const notAfter = new Date(notBefore.getTime() + 825 * 86_400_000);
      const pems = await generate([{ name: "commonName", value: config.domain }], {
        keyType: "ec",
        curve: "P-256",
        algorithm: "sha256",
        notBeforeDate: notBefore,
        notAfterDate: notAfter,
        extensions: [
          { name: "basicConstraints", cA: false },
          { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
          { name: "extKeyUsage", serverAuth: true },
          {
            name: "subjectAltName",
            altNames: [
              { type: 2, value: config.domain },
              { type: 2, value: `*.${config.domain}` },
            ],
          },
        ],
      });
      writeFileSync(keyFile, pems.private, { mode: 0o600 });
      writeFileSync(certFile, pems.cert, { mode: 0o644 });
      log.info({ certFile }, "generated a self-signed certificate");
    }
  }
  const certPem = readFileSync(certFile, "utf8");
  const keyPem = readFileSync(keyFile, "utf8");
  const context = tls.createSecureContext({ cert: certPem, key: keyPem, minVersion: "TLSv1.2" });
  const leaf = new X509Certificate(certPem);
  return {
    context,
    certPem,
    keyPem,
    fingerprint: leaf.fingerprint256,
    certFile,
    selfSigned,
    serverEndPoint: serverEndPoint(leaf.raw),
  };
}
