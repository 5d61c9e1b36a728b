/**
 * The external services section of the configuration (`externalServices:`): the STUN and TURN
 * servers the server tells its accounts about (XEP-0215), and how their credentials are made.
 */
import { isIP } from "node:net";
import { z } from "zod";
import type { ConfigSection } from "../../core/config.js";

/** The service types a client for calls looks for (XEP-0215 registry, RFC 7064/7065 URI schemes). */
export const SERVICE_TYPES = ["stun", "stuns", "turn", "turns"] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** RFC 7064/7065 default ports: 3478, and 5349 over TLS. */
const DEFAULT_PORT: Record<ServiceType, number> = { stun: 3478, turn: 3478, stuns: 5349, turns: 5349 };

const HOSTNAME =
  /^(?=.{1,253}\.?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

export const ServiceSchema = z
  .object({
    type: z.enum(SERVICE_TYPES),
    /** A domain name or an IP address (the XEP's `host`). */
    host: z
      .string()
      .refine((h) => isIP(h) !== 0 || HOSTNAME.test(h), "expected a domain name or an IP address"),
    /** Default 3478, 5349 for stuns and turns. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Default udp, tcp for stuns and turns (TLS runs over TCP). */
    transport: z.enum(["udp", "tcp"]).optional(),
    /** A label for people. */
    name: z.string().min(1).optional(),
    /** Static credentials, handed to every account alike. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /**
     * Time-limited credentials of the TURN REST API scheme (coturn's `use-auth-secret`), made
     * with this secret shared with the TURN server, or with `externalServices.secret` when true.
     */
    secret: z.union([z.literal(true), z.string().min(1)]).optional(),
    /** Leave the credentials out of the list: clients ask for them with a <credentials/> request. */
    restricted: z.boolean().default(false),
  })
  // A misspelt key would otherwise be dropped and the service offered without what it meant.
  .strict()
  .superRefine((s, ctx) => {
    if ((s.username === undefined) !== (s.password === undefined))
      ctx.addIssue({ code: "custom", path: ["password"], message: "username and password go together" });
    if (s.secret !== undefined && s.username !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["secret"],
        message: "a service has either static credentials or a secret, not both",
      });
    if (s.restricted && s.secret === undefined && s.username === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["restricted"],
        message: "a restricted service needs credentials (username and password, or secret)",
      });
  })
  .transform((s) => ({
    ...s,
    port: s.port ?? DEFAULT_PORT[s.type],
    transport: s.transport ?? (s.type === "stuns" || s.type === "turns" ? "tcp" : "udp"),
  }));

export type ServiceConfig = z.infer<typeof ServiceSchema>;

export const ExternalServicesSchema = z
  .object({
    /** The services, in the order they are listed to clients; none: the feature is not offered. */
    services: z.array(ServiceSchema).default([]),
    /** The secret shared with the TURN server, for services with `secret: true`. */
    secret: z.string().default(""),
    /** How long credentials made with a secret are valid, in seconds (the `expires` given with them). */
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(86_400),
  })
  .prefault({})
  .superRefine((s, ctx) => {
    s.services.forEach((service, i) => {
      if (service.secret === true && s.secret === "")
        ctx.addIssue({
          code: "custom",
          path: ["services", i, "secret"],
          message: "is true but externalServices.secret is not set",
        });
    });
  });

export type ExternalServicesConfig = z.infer<typeof ExternalServicesSchema>;

export const externalServicesConfigSection: ConfigSection = {
  keys: { externalServices: ExternalServicesSchema },
  // The shared secret can stay out of the configuration file.
  environment: (env) => {
    const secret = env.SWITCHBOARD_EXTERNAL_SERVICES_SECRET;
    return secret ? { externalServices: { secret } } : {};
  },
};

declare module "../../core/config.js" {
  interface ConfigSections {
    externalServices: ExternalServicesConfig;
  }
}
