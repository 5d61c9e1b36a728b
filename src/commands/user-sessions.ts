/**
 * Commands on the live sessions of an account, and disabling an account. Listing and
 * kicking need the running server (the HTTP API or the console run them inside it); the
 * CLI works on the database only, so it says so instead of pretending.
 */
import { z } from "zod";
import { recordAccountChange } from "../core/account-changes.js";
import { type CommandContext, CommandError, defineCommand, type LiveServer } from "../core/commands.js";
import { accountAddress, accountName, noAccount } from "./account-names.js";
import { auditCommand } from "./audit.js";
import { accountLocalpart, count, isoInstant } from "./output-schemas.js";

const liveSession = z.object({
  resource: z.string().describe("the bound resource"),
  address: z.string().describe("the client's network address"),
  transport: z.string().describe("how it connected: tcp, tls, websocket, …"),
  secure: z.boolean().describe("the connection is encrypted"),
  connectedAt: isoInstant.describe("when the session was established"),
  client: z
    .object({
      clientId: z.string().optional().describe("the client's licensed id or self-described name"),
      version: z.string().optional(),
      platform: z.string().optional(),
      verified: z.boolean().describe("the client proved a licence at login"),
    })
    .optional()
    .describe("the client as recorded at login; absent when unknown"),
});

function live(ctx: CommandContext): LiveServer {
  if (!ctx.live) {
    throw new CommandError(
      "this command acts on a running server: use the HTTP admin API or the web console",
    );
  }
  return ctx.live;
}

export const userSessions = defineCommand({
  name: ["user", "sessions"],
  description: "List the live sessions of an account (running server only)",
  args: [{ name: "name", description: "account name", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({ name: accountLocalpart, sessions: z.array(liveSession) }),
  mutates: false,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const server = live(ctx);
    if (!(await ctx.storage.accounts.exists(name))) throw noAccount(ctx, name);
    const sessions = server
      .sessionsOf(name)
      .map((s) => ({ ...s, connectedAt: new Date(s.connectedAt).toISOString() }));
    const lines = sessions.map(
      (s) =>
        `${accountAddress(name, ctx.config)}/${s.resource}  from ${s.address} (${s.transport}${s.secure ? ", encrypted" : ""}) since ${s.connectedAt}` +
        (s.client
          ? `  ${s.client.clientId ?? "?"} ${s.client.version ?? ""}${s.client.verified ? " (licensed)" : ""}`
          : ""),
    );
    return { message: lines.join("\n") || `(${name} has no live sessions)`, data: { name, sessions } };
  },
});

export const userKick = defineCommand({
  name: ["user", "kick"],
  description:
    "Close one live session of an account, or all of them without --resource (running server only)",
  args: [
    { name: "name", description: "account name", positional: true },
    { name: "resource", description: "the session's resource (default: every session)" },
    { name: "reason", description: "text sent to the client with the stream error" },
  ],
  input: z.object({
    name: z.string().min(1),
    resource: z.string().min(1).optional(),
    reason: z.string().max(500).optional(),
  }),
  output: z.object({ closed: count("sessions closed") }),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const server = live(ctx);
    const reason = input.reason ?? "disconnected by an administrator";
    if (input.resource !== undefined) {
      if (!server.kick(name, input.resource, reason))
        throw new CommandError(
          `${accountAddress(name, ctx.config)}/${input.resource} has no live session`,
          404,
        );
      await auditCommand(ctx, "user.kick", `account:${name}`, {
        after: { resource: input.resource, reason },
      });
      return { message: `closed ${accountAddress(name, ctx.config)}/${input.resource}`, data: { closed: 1 } };
    }
    const closed = server.disconnectAccount(name, reason);
    await auditCommand(ctx, "user.kick", `account:${name}`, { after: { closed, reason } });
    return {
      message: `closed ${closed} session(s) of ${accountAddress(name, ctx.config)}`,
      data: { closed },
    };
  },
});

function setDisabled(disabled: boolean) {
  return defineCommand({
    name: ["user", disabled ? "disable" : "enable"],
    description: disabled
      ? "Disable an account: it can no longer log in, and its live sessions are closed"
      : "Enable a disabled account again",
    args: [{ name: "name", description: "account name", positional: true }],
    input: z.object({ name: z.string().min(1) }),
    output: z.object({
      name: accountLocalpart,
      disabled: z.boolean().describe("the account's state now"),
      closedSessions: count("live sessions this server closed (0 from the CLI, and when enabling)"),
    }),
    mutates: true,
    async run(ctx, input) {
      const name = accountName(input.name, ctx.config);
      if (!(await ctx.storage.accounts.setDisabled(name, disabled))) throw noAccount(ctx, name);
      await auditCommand(ctx, disabled ? "user.disable" : "user.enable", `account:${name}`, {
        after: { disabled },
      });
      let closed = 0;
      if (disabled) {
        const reason = "account disabled";
        await recordAccountChange(ctx.storage, ctx.clock, "disabled", { username: name, reason });
        closed = ctx.live?.disconnectAccount(name, reason) ?? 0;
      }
      const note = disabled && !ctx.live ? " (a running server closes its sessions within a second)" : "";
      return {
        message: `${disabled ? "disabled" : "enabled"} ${accountAddress(name, ctx.config)}${note}`,
        data: { name, disabled, closedSessions: closed },
      };
    },
  });
}

export const userDisable = setDisabled(true);
export const userEnable = setDisabled(false);

export const userSessionCommands = [userSessions, userKick, userDisable, userEnable];
