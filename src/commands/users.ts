/** Account administration: add, show, change password, delete, list, bulk import. */
import { readFile } from "node:fs/promises";
import os from "node:os";
import { z } from "zod";
import { recordAccountChange } from "../core/account-changes.js";
import { CommandError, defineCommand } from "../core/commands.js";
import type { ServerConfig } from "../core/config.js";
import { maxPasswordLength, passwordLengthProblem } from "../core/password-length.js";
import { deriveCredentials, deriveCredentialsAsync, PasswordError } from "../core/sasl/credentials.js";
import type { ScramCredential, ScramHash } from "../core/storage/types.js";
import { accountAddress, accountName, noAccount } from "./account-names.js";
import { auditCommand } from "./audit.js";
import { accountJid, accountLocalpart, count, isoInstant } from "./output-schemas.js";

const HASHES: ScramHash[] = ["SHA-1", "SHA-256"];
/** Accounts created per transaction by `user import`. */
const IMPORT_BATCH = 1000;

/** Refuses a password longer than the bound in-band registration applies, before deriving anything. */
function checkPasswordLength(password: string, config: ServerConfig, where = ""): void {
  const problem = passwordLengthProblem(password, maxPasswordLength(config));
  if (problem !== undefined) throw new CommandError(`${where}invalid password: ${problem}`);
}

function credentials(password: string, config: ServerConfig): ScramCredential[] {
  checkPasswordLength(password, config);
  try {
    return deriveCredentials(password, { iterations: config.scramIterations, hashes: HASHES });
  } catch (err) {
    if (err instanceof PasswordError) throw new CommandError(`invalid password: ${err.message}`);
    throw err;
  }
}

export const userAdd = defineCommand({
  name: ["user", "add"],
  description: "Create an account",
  args: [
    { name: "name", description: "account name (localpart)", positional: true },
    { name: "password", description: "its password" },
  ],
  input: z.object({ name: z.string().min(1), password: z.string().min(1) }),
  output: z.object({ jid: accountJid.describe("the new account's bare JID") }),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const created = await ctx.storage.accounts.create(name, credentials(input.password, ctx.config));
    if (!created) throw new CommandError(`account ${accountAddress(name, ctx.config)} already exists`, 409);
    await auditCommand(ctx, "user.add", `account:${name}`);
    return {
      message: `created ${accountAddress(name, ctx.config)}`,
      data: { jid: accountAddress(name, ctx.config) },
    };
  },
});

export const userShow = defineCommand({
  name: ["user", "show"],
  description: "Show an account: when it was created, and whether it is disabled",
  args: [{ name: "name", description: "account name", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({
    name: accountLocalpart,
    jid: accountJid,
    createdAt: isoInstant.describe("when the account was created"),
    disabled: z.boolean().describe("true: it cannot log in (`user disable`)"),
  }),
  mutates: false,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const account = await ctx.storage.accounts.get(name);
    if (!account) throw noAccount(ctx, name);
    const jid = accountAddress(name, ctx.config);
    const createdAt = new Date(account.createdAt).toISOString();
    return {
      message: `${jid}\ncreated ${createdAt}\n${account.disabled ? "disabled" : "enabled"}`,
      data: { name, jid, createdAt, disabled: account.disabled },
    };
  },
});

export const userPasswd = defineCommand({
  name: ["user", "passwd"],
  description: "Set an account's password",
  args: [
    { name: "name", description: "account name", positional: true },
    { name: "password", description: "the new password" },
  ],
  input: z.object({ name: z.string().min(1), password: z.string().min(1) }),
  output: z.object({}).describe("nothing beyond the message"),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const ok = await ctx.storage.accounts.setCredentials(name, credentials(input.password, ctx.config));
    if (!ok) throw noAccount(ctx, name);
    await auditCommand(ctx, "user.passwd", `account:${name}`);
    return { message: `password changed for ${accountAddress(name, ctx.config)}` };
  },
});

export const userDelete = defineCommand({
  name: ["user", "delete"],
  description: "Delete an account and all its data",
  args: [{ name: "name", description: "account name", positional: true }],
  input: z.object({ name: z.string().min(1) }),
  output: z.object({
    disconnectedSessions: count(
      "live sessions this server closed (0 from the CLI: running servers close theirs)",
    ),
  }),
  mutates: true,
  async run(ctx, input) {
    const name = accountName(input.name, ctx.config);
    const ok = await ctx.storage.accounts.delete(name);
    if (!ok) throw noAccount(ctx, name);
    await auditCommand(ctx, "user.delete", `account:${name}`);
    const reason = "account deleted";
    // Running servers (this one too) close the sessions and drop what they cached about the account.
    await recordAccountChange(ctx.storage, ctx.clock, "deleted", { username: name, reason });
    const kicked = ctx.live?.disconnectAccount(name, reason) ?? 0;
    return { message: `deleted ${accountAddress(name, ctx.config)}`, data: { disconnectedSessions: kicked } };
  },
});

export const userList = defineCommand({
  name: ["user", "list"],
  description: "List accounts",
  args: [
    { name: "prefix", description: "only names starting with this" },
    { name: "limit", description: "at most this many (default 1000)" },
    { name: "offset", description: "skip this many" },
  ],
  input: z.object({
    prefix: z.string().optional(),
    limit: z.coerce.number().int().min(1).max(100_000).default(1000),
    offset: z.coerce.number().int().min(0).default(0),
  }),
  output: z.object({
    accounts: z
      .array(accountLocalpart)
      .describe("account names in order, within --prefix, --offset and --limit"),
    total: count("how many accounts the server has, whatever the filter"),
  }),
  mutates: false,
  async run(ctx, input) {
    const names = await ctx.storage.accounts.list(input);
    const total = await ctx.storage.accounts.count();
    return { message: names.join("\n") || "(no accounts)", data: { accounts: names, total } };
  },
});

export const userImport = defineCommand({
  name: ["user", "import"],
  description: "Create accounts from a file of name,password lines (existing names are skipped)",
  args: [{ name: "file", description: "path of the file", positional: true }],
  input: z.object({ file: z.string().min(1) }),
  output: z.object({
    created: count("accounts created"),
    skipped: count("names in the file that already had an account"),
    seconds: z.number().min(0).describe("how long the import took"),
  }),
  mutates: true,
  async run(ctx, input) {
    let text: string;
    try {
      text = await readFile(input.file, "utf8");
    } catch (err) {
      throw new CommandError(`cannot read ${input.file}: ${(err as Error).message}`);
    }
    const entries: { name: string; password: string; line: number }[] = [];
    const seen = new Set<string>();
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const comma = line.indexOf(",");
      if (comma <= 0 || comma === line.length - 1)
        throw new CommandError(`line ${i + 1}: expected name,password`);
      const name = accountName(line.slice(0, comma), ctx.config);
      if (seen.has(name)) throw new CommandError(`line ${i + 1}: ${name} appears twice`);
      seen.add(name);
      const password = line.slice(comma + 1);
      checkPasswordLength(password, ctx.config, `line ${i + 1}: `);
      entries.push({ name, password, line: i + 1 });
    });
    const started = ctx.clock.now();
    // PBKDF2 runs in libuv's thread pool: keep every core busy, not more.
    const parallel = Math.max(2, os.availableParallelism());
    const items: { username: string; credentials: ScramCredential[] }[] = new Array(entries.length);
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const i = next++;
        const e = entries[i]!;
        try {
          items[i] = {
            username: e.name,
            credentials: await deriveCredentialsAsync(e.password, {
              iterations: ctx.config.scramIterations,
              hashes: HASHES,
            }),
          };
        } catch (err) {
          if (err instanceof PasswordError)
            throw new CommandError(`line ${e.line}: invalid password: ${err.message}`);
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    // In transactions of IMPORT_BATCH accounts: one for all of them held SQLite's write lock
    // for a second per 100,000 accounts, and a running server's writes waited that long.
    // Existing names are skipped, so an import cut short is completed by running it again.
    let created = 0;
    for (let i = 0; i < items.length; i += IMPORT_BATCH)
      created += await ctx.storage.accounts.createMany(items.slice(i, i + IMPORT_BATCH));
    const seconds = (ctx.clock.now() - started) / 1000;
    await auditCommand(ctx, "user.import", `file:${input.file}`, {
      after: { created, skipped: entries.length - created },
    });
    return {
      message: `imported ${created} accounts (${entries.length - created} already existed) in ${seconds.toFixed(1)} s`,
      data: { created, skipped: entries.length - created, seconds },
    };
  },
});

export const userCommands = [userAdd, userShow, userPasswd, userDelete, userList, userImport];
