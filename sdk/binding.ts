/**
 * TLS channel-binding data, computed on the client's side of the connection:
 * - tls-exporter (RFC 9266): 32 bytes exported with the label
 *   "EXPORTER-Channel-Binding" and an empty context (TLS 1.3);
 * - tls-server-end-point (RFC 5929 §4.1): a hash of the server certificate (DER),
 *   with the hash of the certificate's signature algorithm, SHA-256 when that is
 *   MD5 or SHA-1 (or not a plain hash, e.g. Ed25519).
 * Binding the proof to these values means a captured proof is useless on
 * another TLS connection, or behind a relay that terminates TLS itself.
 */
import type { TLSSocket } from "node:tls";
import type { BindingType } from "./proof.js";
import { serverEndPoint } from "./tls-end-point.js";

export { certificateSignatureOid, serverEndPoint } from "./tls-end-point.js";

/** RFC 9266 tls-exporter data of a connection. */
export function tlsExporter(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
}

/**
 * The binding data of `type` for this connection, as the server computes it on
 * its side. Throws when the connection cannot provide it.
 */
export function channelBindingData(socket: TLSSocket, type: Exclude<BindingType, "none">): Buffer {
  if (type === "tls-exporter") return tlsExporter(socket);
  const cert = socket.getPeerCertificate(false);
  if (!cert?.raw) throw new Error("tls-server-end-point: the server sent no certificate");
  return serverEndPoint(cert.raw);
}

/** True for the binding types this SDK can compute. */
export function isBindingType(type: string): type is Exclude<BindingType, "none"> {
  return type === "tls-exporter" || type === "tls-server-end-point";
}
