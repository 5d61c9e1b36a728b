/**
 * The admin commands that set a password (`user add`, `user passwd`, `user import`) refuse one
 * longer than the bound in-band registration applies (`modules.register.maxPasswordLength`,
 * counted in characters), as an invalid input: a CommandError with status 400, which the CLI
 * prints as one line and exits non-zero with. Nothing is created or changed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { userAdd, userImport, userPasswd } from "../../src/commands/users.js";
import { type CommandContext, CommandError } from "../../src/core/commands.js";
import { ConfigError } from "../../src/core/config.js";
import { verifyPassword } from "../../src/core/sasl/credentials.js";
import type { Storage } from "../../src/core/storage/types.js";
import { loadServerConfig } from "../../src/server/config.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { CLI } from "../helpers/server.js";

const TOO_LONG = /^invalid password: the password must have at most 256 characters$/;

function refusedAs(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CommandError, String(err));
    assert.equal(err.status, 400);
    assert.match(err.message, pattern);
    return true;
  };
}

describe("admin commands bound the password length", () => {
  let dir: string;
  let storage: Storage;
  const contextWith = (modules: Record<string, unknown> = {}): CommandContext =>
    ({
      storage,
      config: loadServerConfig({
        overrides: { domain: "example.test", dataDir: dir, scramIterations: 4096, modules },
      }),
      clock: { now: () => Date.now() },
      actor: "cli:test",
    }) as unknown as CommandContext;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-pwlen-"));
    storage = await openSqliteStorage({ path: path.join(dir, "switchboard.sqlite") });
  });
  after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("user add and user passwd refuse a password over 256 characters and accept 256", async () => {
    const ctx = contextWith();
    await assert.rejects(userAdd.run(ctx, { name: "al", password: "p".repeat(257) }), refusedAs(TOO_LONG));
    assert.equal(await storage.accounts.exists("al"), false);
    // 256 characters of two UTF-16 units each: counted as characters, as at registration.
    const longest = "\u{1F511}".repeat(256);
    await userAdd.run(ctx, { name: "al", password: longest });
    await assert.rejects(
      userPasswd.run(ctx, { name: "al", password: "\u{1F511}".repeat(257) }),
      refusedAs(TOO_LONG),
    );
    const account = await storage.accounts.get("al");
    assert.ok(account?.credentials.every((c) => verifyPassword(longest, c)));
  });

  test("the configured modules.register.maxPasswordLength applies", async () => {
    const ctx = contextWith({ register: { maxPasswordLength: 12 } });
    await assert.rejects(
      userAdd.run(ctx, { name: "bo", password: "p".repeat(13) }),
      refusedAs(/at most 12 characters$/),
    );
    await userAdd.run(ctx, { name: "bo", password: "p".repeat(12) });
    const wider = contextWith({ register: { maxPasswordLength: 300 } });
    await userPasswd.run(wider, { name: "bo", password: "p".repeat(300) });
  });

  test("an invalid bound is a configuration error when the configuration loads, also with registration off", () => {
    for (const disabledModules of [[], ["register"]])
      assert.throws(
        () =>
          loadServerConfig({
            overrides: {
              domain: "example.test",
              dataDir: dir,
              disabledModules,
              modules: { register: { maxPasswordLength: 0 } },
            },
          }),
        (err: unknown) => err instanceof ConfigError && /maxPasswordLength/.test(err.message),
      );
  });

  test("user import refuses the file, naming the line, before creating any account", async () => {
    const file = path.join(dir, "users.csv");
    writeFileSync(file, `cy,short-pw\ndi,${"p".repeat(257)}\n`);
    await assert.rejects(
      userImport.run(contextWith(), { file }),
      refusedAs(/^line 2: invalid password: the password must have at most 256 characters$/),
    );
    assert.equal(await storage.accounts.exists("cy"), false);
  });

  test("the CLI prints one line and exits non-zero", () => {
    const args = ["user", "add", "ed", "--password", "p".repeat(257), "--data-dir", dir];
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
    assert.notEqual(run.status, 0);
    assert.equal(
      run.stderr,
      "switchboard: invalid password: the password must have at most 256 characters\n",
    );
    assert.equal(run.stdout, "");
  });
});
