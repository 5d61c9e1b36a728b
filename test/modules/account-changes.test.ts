/**
 * Account changes made by admin commands outside the server (the CLI: no live server in the
 * command's context) reach the running server through storage: the sessions of a deleted or
 * disabled account are closed within the polling interval, and a deletion fires
 * account/deleted for the modules' caches. Changes recorded before the server started are
 * not replayed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { userDisable } from "../../src/commands/user-sessions.js";
import { userDelete } from "../../src/commands/users.js";
import { recordAccountChange } from "../../src/core/account-changes.js";
import type { CommandContext } from "../../src/core/commands.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import accountChanges from "../../src/modules/account-changes/index.js";
import { openStorage } from "../../src/storage/index.js";
import { type Harness, startHarness } from "../kit/harness.js";

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(config: Record<string, unknown> = {}): Promise<Harness> {
  const h = await startHarness({
    modules: [accountChanges] as ModuleDefinition<unknown>[],
    config: { modules: { "account-changes": { pollIntervalMs: 20 } }, ...config },
  });
  harnesses.push(h);
  return h;
}

/** What the CLI passes a command: storage and clock, no live server. */
function cliContext(h: Harness): CommandContext {
  const { config, storage, clock } = h.server.services;
  return { config, storage, clock, actor: "cli:test" };
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("a CLI deletion closes the account's sessions in the running server and fires account/deleted", async () => {
  const h = await start();
  await h.createUser("alice");
  await h.createUser("bob");
  const deleted: string[] = [];
  h.server.services.hooks.on("account/deleted", ({ username }) => {
    deleted.push(username);
  });
  const a1 = await h.connect("alice", "phone");
  const a2 = await h.connect("alice", "desk");
  const bob = await h.connect("bob", "desk");

  const result = await userDelete.run(cliContext(h), { name: "alice" });
  assert.equal(
    (result.data as { disconnectedSessions: number }).disconnectedSessions,
    0,
    "the CLI has no live server",
  );
  await until(() => a1.closed && a2.closed, 1000, "alice's sessions closed");
  assert.equal(a1.closeError?.condition, "policy-violation");
  assert.equal(a1.closeError?.text, "account deleted");
  assert.equal(bob.closed, false, "other accounts are left alone");
  await until(() => deleted.length > 0, 1000, "account/deleted fired");
  assert.deepEqual(deleted, ["alice"]);
});

test("a CLI disabling closes the sessions; no account/deleted", async () => {
  const h = await start();
  await h.createUser("carol");
  const deleted: string[] = [];
  h.server.services.hooks.on("account/deleted", ({ username }) => {
    deleted.push(username);
  });
  const c = await h.connect("carol", "phone");
  const result = await userDisable.run(cliContext(h), { name: "carol" });
  assert.match(result.message, /a running server closes its sessions within a second/);
  await until(() => c.closed, 1000, "carol's session closed");
  assert.equal(c.closeError?.text, "account disabled");
  assert.deepEqual(deleted, []);
});

test("changes recorded before the server started are not replayed", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-account-changes-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await openStorage({ backend: "sqlite", path: path.join(dir, "switchboard.sqlite") });
  await recordAccountChange(storage, { now: () => Date.now() }, "deleted", {
    username: "dave",
    reason: "account deleted",
  });
  await storage.close();

  const h = await start({ dataDir: dir });
  await h.createUser("dave");
  const d = await h.connect("dave", "r");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(d.closed, false, "the record from before the start is not applied");
  await recordAccountChange(h.server.services.storage, h.server.services.clock, "disabled", {
    username: "dave",
    reason: "account disabled",
  });
  await until(() => d.closed, 1000, "a record made while running is applied");
});
