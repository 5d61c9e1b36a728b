/** The certificates' section of the configuration (`tls:`). */
import { z } from "zod";
import type { ConfigSection } from "../core/config.js";

export const TlsSchema = z
  .object({
    /** PEM certificate chain and key files; when absent a self-signed pair is generated in dataDir/tls. */
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
    /**
     * Stateless TLS session tickets (resumption). Off by default, as in Prosody: they cost
     * memory per idle connection in Node (docs/benchmarks.md).
     */
    sessionTickets: z.boolean().default(false),
    /**
     * How often the certificate files are read again, in seconds, so that a renewed
     * certificate is served without a restart (SIGHUP reloads at once); 0: only on SIGHUP.
     */
    reloadCheckSeconds: z.number().int().min(0).default(60),
  })
  .prefault({});

export const tlsConfigSection = { keys: { tls: TlsSchema } } satisfies ConfigSection;

declare module "../core/config.js" {
  interface ConfigSections {
    tls: z.infer<typeof TlsSchema>;
  }
}
