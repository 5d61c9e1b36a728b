/**
 * TLS material: the configured PEM files, or a self-signed certificate for the
 * domain generated on first start and kept in dataDir/tls so clients can pin it.
 */
import { constants, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import type { Logger } from "pino";
import { generate } from "selfsigned";
import { serverEndPoint } from "../../sdk/tls-end-point.js";
import type { ServerConfig } from "../core/config.js";

export interface TlsMaterial {
  /** The context STARTTLS connections use. */
  context: tls.SecureContext;
  /** The options it was made with besides the certificate (the direct TLS listener's too). */
  contextOptions: tls.SecureContextOptions;
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
  const contextOptions: tls.SecureContextOptions = {
    minVersion: "TLSv1.2",
    // No stateless session tickets, as in Prosody. Node keeps a connection's TLS output
    // buffer at the largest size it ever needed (1 KiB at first, then 16 KiB), and the tickets
    // written after the handshake are one of the things that grow it: a bare Node TLS server
    // holds 30 KiB per idle connection without them, 47 KiB with (docs/benchmarks.md). OpenSSL
    // then sends small stateful tickets, which Node, having no server-side session cache,
    // never resumes: every connection makes a full handshake.
    ...(config.tls.sessionTickets ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
  };
  const context = tls.createSecureContext({ cert: certPem, key: keyPem, ...contextOptions });
  const leaf = new X509Certificate(certPem);
  return {
    context,
    contextOptions,
    certPem,
    keyPem,
    fingerprint: leaf.fingerprint256,
    certFile,
    selfSigned,
    serverEndPoint: serverEndPoint(leaf.raw),
  };
}

/**
 * TLS channel-binding data of a connection (RFC 5929, RFC 9266), for any transport whose
 * bytes run over `socket`: undefined when the socket is not TLS or has no such binding.
 */
export function tlsChannelBinding(socket: unknown, serverEndPoint: Buffer, type: string): Buffer | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  const tls13 = socket.getProtocol() === "TLSv1.3";
  if (type === "tls-exporter" && tls13)
    return socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
  if (type === "tls-server-end-point") return serverEndPoint;
  if (type === "tls-unique") {
    // RFC 5929 §3.1: the first Finished message of the handshake: the client's in a full
    // handshake, the server's own in an abbreviated (resumed) one. RFC 9266 leaves tls-unique
    // undefined for TLS 1.3 and it is not advertised there, but clients that do not read
    // XEP-0440 (slixmpp ≤ 1.8, on Python's ssl) send it anyway, computed the same way from the
    // TLS 1.3 Finished message, which is unique to the connection (it MACs the whole
    // handshake transcript). Accepting it, as ejabberd does, keeps their -PLUS login working
    // and its binding to this channel.
    return (socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished()) ?? undefined;
  }
  return undefined;
}

/** The channel-binding types to advertise (XEP-0440) on `socket`, best first; none without TLS. */
export function tlsChannelBindingTypes(socket: unknown): string[] {
  if (!(socket instanceof tls.TLSSocket)) return [];
  return socket.getProtocol() === "TLSv1.3"
    ? ["tls-exporter", "tls-server-end-point"]
    : ["tls-server-end-point", "tls-unique"];
}
