/**
 * The federation section of the configuration: the server-to-server ports, the static host
 * map, the federation policy and the certificates trusted for peers. `federation` is either a
 * policy name (`federation: allowlist`, `--federation`, SWITCHBOARD_FEDERATION) or a mapping
 * with the policy and its allowlist.
 */
import path from "node:path";
import { z } from "zod";
import { type ConfigSection, port } from "../../core/config.js";

export const FEDERATION_POLICIES = ["open", "allowlist", "licensed"] as const;
export type FederationPolicy = (typeof FEDERATION_POLICIES)[number];

const FederationSchema = z.preprocess(
  (v) => (typeof v === "string" ? { policy: v } : v),
  z
    .object({
      /** open: any domain; allowlist: the domains listed; licensed: a domain with a valid peering licence. */
      policy: z.enum(FEDERATION_POLICIES).default("open"),
      /** The remote domains admitted under `allowlist`. */
      allowlist: z.array(z.string().min(1).toLowerCase()).default([]),
    })
    .prefault({}),
);

/** "host:port" (an IPv6 literal in brackets): where a remote domain is reached, before DNS. */
const HostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, "expected HOST:PORT");

export const s2sConfigSection = {
  keys: {
    /** Server-to-server streams with STARTTLS (RFC 6120), on `bind`; 0 disables the listener. */
    s2sPort: port.default(5269),
    /** Server-to-server streams with direct TLS (XEP-0368); 0 (default) disables it. */
    s2sTlsPort: port.default(0),
    /** The static host map: remote domain → HOST:PORT, asked before DNS. */
    s2sRoutes: z
      .record(z.string().min(1), HostPort)
      .default({})
      .transform((m) => Object.fromEntries(Object.entries(m).map(([d, t]) => [d.toLowerCase(), t]))),
    federation: FederationSchema,
    /** A PEM file of certificates trusted for peers, beside the system's store. */
    s2sCa: z.string().optional(),
  },
  env: { s2sPort: "number", s2sTlsPort: "number", s2sCa: "string" },
  environment(env) {
    const out: Record<string, unknown> = {};
    if (env.SWITCHBOARD_FEDERATION) out.federation = { policy: env.SWITCHBOARD_FEDERATION };
    if (env.SWITCHBOARD_S2S_ROUTE) out.s2sRoutes = parseRoutes(env.SWITCHBOARD_S2S_ROUTE.split(/[\s,]+/));
    return out;
  },
  resolveFilePaths(values, fileDir) {
    if (typeof values.s2sCa === "string") values.s2sCa = path.resolve(fileDir, values.s2sCa);
  },
} satisfies ConfigSection;

/** DOMAIN=HOST:PORT entries (`--s2s-route`, SWITCHBOARD_S2S_ROUTE) as the s2sRoutes map. */
export function parseRoutes(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new Error(`not DOMAIN=HOST:PORT: ${entry}`);
    out[entry.slice(0, eq).toLowerCase()] = entry.slice(eq + 1);
  }
  return out;
}

declare module "../../core/config.js" {
  interface ConfigSections {
    s2sPort: number;
    s2sTlsPort: number;
    s2sRoutes: Record<string, string>;
    federation: { policy: FederationPolicy; allowlist: string[] };
    s2sCa?: string | undefined;
  }
}
