/** Admin commands for FAST tokens (XEP-0484): the clients of an account holding one, and revoking them. */
import { z } from "zod";
import { accountAddress, accountName, noAccount } from "../../commands/account-names.js";
import { auditCommand } from "../../commands/audit.js";
import {
  type CommandContext,
  type CommandDefinition,
  CommandError,
  defineCommand,
} from "../../core/commands.js";
import { credentialTag, FAST_STORE, FastTokens } from "./tokens.js";

const tokensOf = (ctx: CommandContext) => new FastTokens(ctx.storage.keyValue(FAST_STORE));
const iso = (ms: number) => new Date(ms).toISOString();

const FastClientView = z.object({
  client: z.string().describe("the client's SASL2 user-agent id"),
  software: z.string().optional(),
  device: z.string().optional(),
  mechanism: z.string(),
  expiresAt: z.number().int().describe("when its latest token expires (ms since 1970)"),
  lastUsedAt: z.number().int().optional().describe("its last login with a token (ms since 1970)"),
});

export const fastList = defineCommand({
  name: ["fast", "list"],
  description: "The clients of an account that hold FAST tokens (XEP-0484), with their expiry",
  args: [{ name: "name", description: "account name", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({ clients: z.array(FastClientView) }),
  mutates: false,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const account = await ctx.storage.accounts.get(name);
    if (!account) throw noAccount(ctx, name);
    const now = ctx.clock.now();
    const tag = credentialTag(account.credentials);
    const clients: z.infer<typeof FastClientView>[] = [];
    for (const t of await tokensOf(ctx).list(name)) {
      // Tokens from before the current password, or of a disabled account, no longer log in.
      if (account.disabled || t.credentialTag !== tag) continue;
      const live = [t.next, t.current].filter(
        (s): s is NonNullable<typeof s> => s !== undefined && s.expiresAt > now,
      );
      const latest = live.sort((a, b) => b.expiresAt - a.expiresAt)[0];
      if (!latest) continue;
      clients.push({
        client: t.agentId,
        software: t.software,
        device: t.device,
        mechanism: latest.mechanism,
        expiresAt: latest.expiresAt,
        lastUsedAt: t.lastUsedAt,
      });
    }
    const lines = clients.map(
      (c) =>
        `${c.client}  ${[c.software, c.device].filter(Boolean).join(" / ") || "-"}  ${c.mechanism}  expires ${iso(c.expiresAt)}  last used ${c.lastUsedAt === undefined ? "never" : iso(c.lastUsedAt)}`,
    );
    return { message: lines.join("\n") || "(no FAST tokens)", data: { clients } };
  },
});

export const fastRevoke = defineCommand({
  name: ["fast", "revoke"],
  description:
    "Revoke an account's FAST tokens: one client's (--client) or all; the client must log in with its password again",
  args: [
    { name: "name", description: "account name", positional: true },
    {
      name: "client",
      description: "the client's user-agent id (as `fast list` shows it); default: every client",
    },
  ],
  input: z.object({ name: z.string().min(1), client: z.string().min(1).optional() }),
  output: z.object({ revoked: z.number().int() }),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    if (!(await ctx.storage.accounts.exists(name))) throw noAccount(ctx, name);
    const store = tokensOf(ctx);
    let revoked: number;
    if (input.client !== undefined) {
      if (!(await store.get(name, input.client)))
        throw new CommandError(
          `no FAST token of client ${input.client} for ${accountAddress(name, ctx.config)}`,
          404,
        );
      await store.delete(name, input.client);
      revoked = 1;
    } else revoked = await store.deleteAll(name);
    await auditCommand(ctx, "fast.revoke", `account:${name}`, { before: { client: input.client ?? "all" } });
    return {
      message: `revoked the FAST tokens of ${revoked} client${revoked === 1 ? "" : "s"} of ${accountAddress(name, ctx.config)}`,
      data: { revoked },
    };
  },
});

export const fastCommands = [fastList, fastRevoke] as CommandDefinition<never>[];
