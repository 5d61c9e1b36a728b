/**
 * Who may administer the server over HTTP: API tokens (`token create|list|revoke`) and
 * the admin role of XMPP accounts for the web console (`admin grant|revoke|list`).
 */
import { z } from "zod";
import { type CommandContext, defineCommand } from "../core/commands.js";
import { AdminStore } from "../http/admin-store.js";
import { SessionStore } from "../http/sessions.js";
import { accountAddress, accountName, noAccount } from "./account-names.js";
import { accountLocalpart, count, isoInstant } from "./output-schemas.js";

const tokenName = z.string().describe("the token's name (audit logs record its requests as api:<name>)");
const actorField = (what: string) =>
  z.string().describe(`who ${what}: "cli:<os user>", "api:<token name>" or "console:<account>"`);

function store(ctx: CommandContext): AdminStore {
  return new AdminStore(ctx.storage, ctx.clock);
}

function actor(ctx: CommandContext): string {
  return ctx.actor ?? "unknown";
}

function iso(t: number): string;
function iso(t: number | undefined): string | undefined;
function iso(t: number | undefined): string | undefined {
  return t === undefined ? undefined : new Date(t).toISOString();
}

export const tokenCreate = defineCommand({
  name: ["token", "create"],
  description: "Create an API token for the HTTP admin API (the secret is printed once)",
  args: [
    {
      name: "name",
      description: "what the token is for, e.g. deploy-bot (recorded in audit logs as api:<name>)",
    },
  ],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({
    name: tokenName,
    token: z.string().describe("the secret, for Authorization: Bearer …; shown only this once"),
    createdAt: isoInstant,
  }),
  mutates: true,
  async run(ctx, input) {
    const { secret, record } = await store(ctx).createToken(input.name, actor(ctx));
    return {
      message: `created API token ${record.name}; it is shown only this once:\n${secret}`,
      data: { name: record.name, token: secret, createdAt: iso(record.createdAt) },
    };
  },
});

export const tokenList = defineCommand({
  name: ["token", "list"],
  description: "List API tokens (names and dates; secrets are never stored)",
  args: [],
  input: z.object({}),
  output: z.object({
    tokens: z.array(
      z.object({
        name: tokenName,
        createdAt: isoInstant,
        createdBy: actorField("created it"),
        lastUsedAt: isoInstant.optional().describe("its last accepted request; absent: never used"),
        revokedAt: isoInstant.optional().describe("absent: not revoked"),
        revokedBy: actorField("revoked it").optional(),
      }),
    ),
  }),
  mutates: false,
  async run(ctx) {
    const tokens = (await store(ctx).listTokens()).map((t) => ({
      name: t.name,
      createdAt: iso(t.createdAt),
      createdBy: t.createdBy,
      lastUsedAt: iso(t.lastUsedAt),
      revokedAt: iso(t.revokedAt),
      revokedBy: t.revokedBy,
    }));
    const lines = tokens.map(
      (t) =>
        `${t.name}  created ${t.createdAt} by ${t.createdBy}` +
        (t.lastUsedAt ? `, last used ${t.lastUsedAt}` : "") +
        (t.revokedAt ? `, revoked ${t.revokedAt} by ${t.revokedBy}` : ""),
    );
    return { message: lines.join("\n") || "(no API tokens)", data: { tokens } };
  },
});

export const tokenRevoke = defineCommand({
  name: ["token", "revoke"],
  description: "Revoke an API token (requests with it are refused from now on)",
  args: [{ name: "name", description: "the token's name", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({ name: tokenName, revokedAt: isoInstant }),
  mutates: true,
  async run(ctx, input) {
    const record = await store(ctx).revokeToken(input.name, actor(ctx));
    return {
      message: `revoked API token ${input.name}`,
      data: { name: input.name, revokedAt: iso(record.revokedAt) },
    };
  },
});

export const adminGrant = defineCommand({
  name: ["admin", "grant"],
  description: "Let an XMPP account log in to the web console as an administrator",
  args: [{ name: "name", description: "account name (localpart)", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({ name: accountLocalpart, grantedAt: isoInstant }),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    if (!(await ctx.storage.accounts.exists(name))) throw noAccount(ctx, name);
    const role = await store(ctx).grantAdmin(name, actor(ctx));
    return {
      message: `${accountAddress(name, ctx.config)} is now an administrator`,
      data: { name, grantedAt: iso(role.grantedAt) },
    };
  },
});

export const adminRevoke = defineCommand({
  name: ["admin", "revoke"],
  description: "Take the admin role from an account (its console sessions end)",
  args: [{ name: "name", description: "account name", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({
    name: accountLocalpart,
    endedSessions: count("console sessions of the account that were ended"),
  }),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    await store(ctx).revokeAdmin(name, actor(ctx));
    // The console checks the role on every request; ending the sessions also forgets them.
    const sessions = new SessionStore({ storage: ctx.storage, clock: ctx.clock, idleMs: 0, maxMs: 0 });
    const ended = await sessions.endFor({ kind: "console", id: name });
    return {
      message: `${accountAddress(name, ctx.config)} is no longer an administrator`,
      data: { name, endedSessions: ended },
    };
  },
});

export const adminList = defineCommand({
  name: ["admin", "list"],
  description: "List the accounts that hold the admin role",
  args: [],
  input: z.object({}),
  output: z.object({
    admins: z.array(
      z.object({
        name: accountLocalpart,
        grantedAt: isoInstant,
        grantedBy: actorField("granted the role"),
      }),
    ),
  }),
  mutates: false,
  async run(ctx) {
    const admins = (await store(ctx).listAdmins()).map((a) => ({
      name: a.name,
      grantedAt: iso(a.grantedAt),
      grantedBy: a.grantedBy,
    }));
    return {
      message:
        admins.map((a) => `${a.name}  since ${a.grantedAt} (by ${a.grantedBy})`).join("\n") ||
        "(no administrators)",
      data: { admins },
    };
  },
});

export const adminCommands = [tokenCreate, tokenList, tokenRevoke, adminGrant, adminRevoke, adminList];
