/**
 * A certificate authority made for one test with openssl: server certificates for test
 * domains (DNS names for the domain and its subdomains, usable as TLS server and client
 * certificates, as server-to-server streams need), in a temporary directory.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export class TestCa {
  readonly dir: string;
  readonly caFile: string;
  private readonly caKey: string;

  constructor(name = "Switchboard Test CA") {
    this.dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-test-ca-"));
    this.caFile = path.join(this.dir, "ca.pem");
    this.caKey = path.join(this.dir, "ca.key");
    openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      this.caKey,
      "-out",
      this.caFile,
      "-days",
      "3",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
  }

  /** A certificate for `domain` (and *.domain) signed by this CA. */
  issue(domain: string): IssuedCertificate {
    const keyFile = path.join(this.dir, `${domain}.key`);
    const csr = path.join(this.dir, `${domain}.csr`);
    const certFile = path.join(this.dir, `${domain}.crt`);
    const ext = path.join(this.dir, `${domain}.ext`);
    writeFileSync(
      ext,
      [
        `subjectAltName=DNS:${domain},DNS:*.${domain}`,
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
      ].join("\n"),
    );
    openssl([
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      csr,
      "-subj",
      `/CN=${domain}`,
    ]);
    openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      this.caFile,
      "-CAkey",
      this.caKey,
      "-CAcreateserial",
      "-out",
      certFile,
      "-days",
      "3",
      "-extfile",
      ext,
    ]);
    return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
  }
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}
