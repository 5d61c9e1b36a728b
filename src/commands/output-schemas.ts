/**
 * Pieces shared by the admin commands' output schemas (`CommandDefinition.output`: the layout
 * of `--json` and of the API's `data`). The account, session, token and component commands
 * print instants as ISO-8601 strings in UTC; the licensing and programme commands, whose
 * results are the domain's own records, print them as epoch milliseconds.
 */
import { z } from "zod";

/** What Date.prototype.toISOString writes. */
export const isoInstant = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  .describe("an instant in ISO 8601, UTC, e.g. 2027-01-15T09:30:00.000Z");

export const epochInstant = z
  .number()
  .int()
  .describe("an instant, in milliseconds since 1970-01-01T00:00:00Z");

export const count = (what: string) => z.number().int().min(0).describe(what);

export const accountJid = z.string().describe("the account's bare JID, name@domain");
export const accountLocalpart = z.string().describe("the account's name (the JID's localpart)");

const licenceTerms = {
  id: z.string().describe("lic_…"),
  status: z.enum(["active", "suspended", "revoked"]).describe("the stored status"),
  validFrom: epochInstant,
  validUntil: epochInstant.optional().describe("absent: no end"),
  maxSessions: z.number().int().optional().describe("absent: unlimited"),
  termsRef: z.string().optional(),
  createdAt: epochInstant,
};

/**
 * A licence as the registry stores it (a client licence names its app, a peering or gateway
 * licence its domain), with the `extra` fields a command adds to its view of one.
 */
export function licenceSchemaWith<Extra extends z.ZodRawShape>(extra: Extra) {
  return z.union([
    z.object({ ...licenceTerms, ...extra, scope: z.literal("client"), clientId: z.string() }),
    z.object({
      ...licenceTerms,
      ...extra,
      scope: z.enum(["peering", "gateway"]),
      domain: z.string(),
      publisherId: z.string().optional(),
    }),
  ]);
}
