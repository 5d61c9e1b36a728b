/**
 * The certificate both servers serve in the TLS phases: one EC P-256 key, self-signed for the
 * bench domain, the kind Switchboard generates for itself, so the handshakes cost the same.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { generate } from "selfsigned";

export async function writeBenchCertificate(
  dir: string,
  domain: string,
): Promise<{ certFile: string; keyFile: string }> {
  const notBefore = new Date(Date.now() - 60_000);
  const pems = await generate([{ name: "commonName", value: domain }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: notBefore,
    notAfterDate: new Date(notBefore.getTime() + 7 * 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: domain }] },
    ],
  });
  const certFile = path.join(dir, `${domain}.crt`);
  const keyFile = path.join(dir, `${domain}.key`);
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile };
}
