/** The TCP client listeners' section of the configuration: `c2sPort` and `c2sTlsPort`. */
import { type ConfigSection, port } from "../../core/config.js";

export const tcpConfigSection = {
  keys: {
    /** Clients with STARTTLS (RFC 6120); 0 disables it. */
    c2sPort: port.default(5222),
    /** Clients with direct TLS (XEP-0368); 0 disables it. */
    c2sTlsPort: port.default(5223),
  },
  env: { c2sPort: "number", c2sTlsPort: "number" },
} satisfies ConfigSection;

declare module "../../core/config.js" {
  interface ConfigSections {
    c2sPort: number;
    c2sTlsPort: number;
  }
}
