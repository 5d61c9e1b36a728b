/**
 * Applies account changes recorded by admin commands in other processes (the CLI) or in this
 * one (src/core/account-changes.ts): a deleted or disabled account's sessions are closed with
 * a policy-violation stream error, and a deletion fires `account/deleted` so modules drop
 * their caches. Only records written after the server started count; records older than a
 * day are pruned.
 */
import { z } from "zod";
import { type AccountChangeKind, accountChanges } from "../../core/account-changes.js";
import { StreamError } from "../../core/errors.js";
import { defineModule } from "../../core/module.js";

const DAY_MS = 86_400_000;

export const AccountChangesOptions = z.object({
  /** How often storage is checked for changes made by other processes. */
  pollIntervalMs: z.number().int().min(10).max(60_000).default(250),
});
export type AccountChangesOptions = z.infer<typeof AccountChangesOptions>;

export default defineModule<AccountChangesOptions>({
  name: "account-changes",
  description: "Applies account deletions and disablings made by admin commands (CLI, API) to live sessions",
  options: AccountChangesOptions,
  async setup(ctx) {
    const { storage, clock, sessions, log } = ctx;
    const changes = accountChanges(storage);
    let lastId = (await changes.query({ newestFirst: true, limit: 1 }))[0]?.id ?? 0;
    let polling = false;
    let lastPrune = 0;

    const apply = async (kind: AccountChangeKind, username: string, reason: string) => {
      for (const s of sessions.resourcesOf(username)) {
        if (!s.closed) s.close(new StreamError("policy-violation", reason));
      }
      if (kind === "deleted") await ctx.fire("account/deleted", { username });
    };

    const poll = async () => {
      if (polling) return;
      polling = true;
      try {
        for (const entry of await changes.query({ afterId: lastId, limit: 1000 })) {
          lastId = entry.id;
          await apply(entry.kind as AccountChangeKind, entry.data.username, entry.data.reason);
        }
        const now = clock.now();
        if (now - lastPrune > DAY_MS) {
          lastPrune = now;
          await changes.prune(now - DAY_MS);
        }
      } finally {
        polling = false;
      }
    };
    ctx.setInterval(() => {
      poll().catch((err) => log.error({ err }, "applying account changes failed"));
    }, ctx.options.pollIntervalMs);
  },
});
