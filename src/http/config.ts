/** The HTTP listener's section of the configuration: `httpPort` and `http:`. */
import { z } from "zod";
import { type ConfigSection, port } from "../core/config.js";

export const HttpSchema = z
  .object({
    /** HTTPS: "auto" when tls.certFile/keyFile are configured, "on" also with the self-signed certificate, "off" never. */
    tls: z.enum(["auto", "on", "off"]).default("auto"),
    /** The base URL people reach the listener at (links in mails); default from the bind address or domain and port. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** The licensing programme's terms for publishers (the application form links to them); default: the portal's /portal/terms. */
    termsUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Behind a reverse proxy: take the client address and scheme from X-Forwarded-* headers. */
    trustProxy: z.boolean().default(false),
    /** XMPP over WebSocket (RFC 7395) at /xmpp-websocket, with discovery at /.well-known/host-meta (XEP-0156). */
    websocket: z.boolean().default(true),
    /** The web chat (Converse.js) at /chat, for people without an XMPP client; needs `websocket`. */
    webChat: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * Under an `enforce` licensing policy, the web chat's own connections are admitted as a
         * first-party client (by the grant its page holds); false subjects them to the policy.
         */
        firstParty: z.boolean().default(true),
        /** A page's grant ends this many minutes after its last use (page load or connection). */
        grantMinutes: z.number().positive().default(60),
      })
      .prefault({}),
    /** A browser session ends after this many minutes without a request… */
    sessionIdleMinutes: z.number().int().min(1).default(120),
    /** …or this many hours after login, whichever comes first. */
    sessionMaxHours: z.number().min(1).default(24),
    metrics: z
      .object({
        /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
        token: z.string().min(16).optional(),
        /** Without a token, serve /metrics to every address instead of loopback only. */
        public: z.boolean().default(false),
      })
      .prefault({}),
  })
  .prefault({});

export const httpConfigSection = {
  keys: {
    /** The HTTP listener (admin API, metrics, portal and console); 0 disables it. */
    httpPort: port.default(5280),
    http: HttpSchema,
  },
  env: { httpPort: "number" },
} satisfies ConfigSection;

declare module "../core/config.js" {
  interface ConfigSections {
    httpPort: number;
    http: z.infer<typeof HttpSchema>;
  }
}
