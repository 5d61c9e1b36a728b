/**
 * The layout of the licensing and statistics commands' results (`--json`, the API's
 * `data`), as zod schemas typed against the domain's own types, so a change of the model
 * that the published schemas do not follow fails to compile. Instants are epoch
 * milliseconds (UTC); the human output shows them in ISO-8601.
 */
import { z } from "zod";
import { licenceSchemaWith } from "../../commands/output-schemas.js";
import type {
  AccessPolicy,
  AppKey,
  AppVersionRules,
  ClientApp,
  ClientStatsReport,
  CutoffPreview,
  LicenceState,
  PolicyStage,
  Publisher,
} from "../../licensing/index.js";

const instant = z.number().int().describe("an instant, in milliseconds since 1970-01-01T00:00:00Z");
const mode = z.enum(["open", "warn", "enforce"]);

export const publisherSchema: z.ZodType<Publisher> = z.object({
  id: z.string().describe("stable id, pub_…"),
  organisation: z.string(),
  contactEmail: z.string(),
  createdAt: instant,
});

export const appSchema: z.ZodType<ClientApp> = z.object({
  clientId: z.string(),
  name: z.string(),
  publisherId: z.string(),
  platforms: z.array(z.string()),
  createdAt: instant,
});

export const keySchema: z.ZodType<AppKey> = z.object({
  keyId: z.string(),
  clientId: z.string(),
  publicKey: z.string().describe("Ed25519 public key: base64 of the 32 raw bytes"),
  createdAt: instant,
  revokedAt: instant.optional().describe("set once the key is revoked"),
});

const state: z.ZodType<LicenceState> = z
  .enum(["active", "suspended", "revoked", "expired", "pending"])
  .describe("the licence's standing now: pending before validFrom, expired after validUntil");

export const licenceViewSchema = licenceSchemaWith({
  subject: z.string().describe("the app's client id, or the domain"),
  state,
});

const stageSchema: z.ZodType<PolicyStage> = z.object({
  at: instant,
  mode,
  percentage: z.number().min(0).max(100).optional().describe("share of accounts; absent: 100"),
});

export const appRulesSchema: z.ZodType<AppVersionRules> = z.object({
  minVersion: z.string().optional(),
  blocked: z.array(z.object({ from: z.string(), to: z.string(), reason: z.string().optional() })).optional(),
  recommendedVersion: z.string().optional(),
  upgradeUrl: z.string().optional(),
});

export const policySchema: z.ZodType<AccessPolicy> = z.object({
  mode: mode.describe("the base mode, before the first stage"),
  stages: z.array(stageSchema),
  apps: z.record(z.string(), appRulesSchema).describe("version rules by client id"),
  infoUrl: z.string().optional(),
  upgradeUrl: z.string().optional(),
  exemptions: z.array(z.string()),
});

export const policyOutput = z.object({
  policy: policySchema,
  revision: z.number().int().describe("the registry revision"),
  now: instant.describe("the instant the answer describes"),
  effective: z.object({
    mode,
    percentage: z.number(),
    stage: stageSchema.nullable().describe("the stage in force, null before the first"),
  }),
  next: stageSchema.nullable().describe("the next stage, null when none is scheduled"),
  cutoff: stageSchema.nullable().describe("the next enforce stage: the cutoff announced to clients"),
  warnings: z.array(z.string()).describe("stages that relax enforcement after an earlier one"),
});

const status = z.enum(["verified", "unverified", "unknown"]);
const tally = z.object({ sessions: z.number().int(), accounts: z.number().int() });
const share = z.object({
  accounts: z.number().int(),
  supportedAccounts: z.number().int(),
  share: z.number().nullable().describe("supportedAccounts / accounts, null without accounts"),
});

const cutoffSchema: z.ZodType<CutoffPreview> = z.object({
  at: instant,
  sessions: z.number().int(),
  accounts: z.number().int(),
  rows: z.array(
    z.object({
      clientId: z.string().nullable(),
      version: z.string().nullable(),
      status,
      reason: z
        .enum([
          "unlicensed-client",
          "unknown-key",
          "key-revoked",
          "licence-revoked",
          "licence-suspended",
          "licence-expired",
          "version-too-old",
          "version-blocked",
          "too-many-sessions",
          "bad-proof",
        ])
        .describe("the refusal condition (licensing-protocol.md §3)"),
      sessions: z.number().int(),
      accounts: z.number().int(),
    }),
  ),
  spared: z.object({
    exempt: tally.describe("refused but for an exemption"),
    rollout: tally.describe("refused but for a stage's percentage"),
  }),
});

export const statsClientsOutput: z.ZodType<ClientStatsReport> = z.object({
  at: instant,
  policy: z.object({
    revision: z.number().int(),
    mode,
    percentage: z.number(),
    nextStage: stageSchema.optional(),
  }),
  live: z
    .object({
      nodes: z.array(z.object({ nodeId: z.string(), at: instant, revision: z.number().int() })),
      sessions: z.number().int(),
      accounts: z.number().int(),
      rows: z.array(
        z.object({
          clientId: z.string().nullable(),
          version: z.string().nullable(),
          platform: z.string().nullable(),
          status,
          sessions: z.number().int(),
          accounts: z.number().int(),
        }),
      ),
      supported: share.describe(
        "accounts whose every live session runs a licensed client at or above the minimum",
      ),
      cutoff: cutoffSchema.describe("what enforcement for every account would cut off now"),
    })
    .nullable()
    .describe("the running servers' live figures; null when no server wrote a fresh snapshot"),
  staleNodes: z
    .array(z.object({ nodeId: z.string(), at: instant }))
    .describe("nodes whose last snapshot is too old"),
  daily: z.object({
    day: z.string().describe("UTC day, YYYY-MM-DD"),
    accounts: z.number().int(),
    rows: z.array(
      z.object({
        clientId: z.string().nullable(),
        version: z.string().nullable(),
        status,
        accounts: z.number().int(),
      }),
    ),
    supported: share.describe("the headline: accounts of the day on licensed, supported clients"),
  }),
});

export const auditOutput = z.object({
  entries: z.array(
    z.object({
      id: z.number().int(),
      at: instant,
      kind: z.string().describe("e.g. licence.revoke"),
      data: z.object({
        actor: z.string().describe("cli:<os user>, api:<token name> or console:<account>"),
        subject: z.string().describe("e.g. policy, licence:lic_…"),
        before: z.unknown().optional(),
        after: z.unknown().optional(),
      }),
    }),
  ),
});

export const licenceOutput = z.object({ licence: licenceViewSchema });
