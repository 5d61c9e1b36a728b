/**
 * `storage migrate`: copies a whole server's data from one storage to another (SQLite to
 * PostgreSQL, or back). A command definition like the others, but local: it opens the two
 * storages it names itself rather than the configured one, and is not offered by the HTTP
 * API or the console — a running server must not copy its own storage from under itself.
 */
import { z } from "zod";
import { CommandError, defineCommand } from "../core/commands.js";
import { describeStorage, parseStorageUrl, type StorageOptions } from "../storage/index.js";
import {
  CopyVerificationError,
  copyStorage,
  describeCounts,
  TargetNotEmptyError,
} from "../storage/transfer/copy.js";
import { openForTransfer } from "../storage/transfer/open.js";
import { TRANSFER_TABLES, type TransferTable } from "../storage/transfer/types.js";
import { count } from "./output-schemas.js";

const storageMigrateOutput = z.object({
  from: z.string().describe("the source, sqlite:PATH or its postgres:// URL without the password"),
  to: z.string().describe("the target, written the same way"),
  replaced: z.boolean().describe("the target's previous data was deleted first (--replace)"),
  tables: z
    .record(z.enum(TRANSFER_TABLES as [TransferTable, ...TransferTable[]]), count("rows"))
    .describe("rows copied per table, as verified in the target"),
  stores: z
    .record(z.string(), count("rows"))
    .describe('rows per named store, e.g. "keyValues:vcard", "documents:licensing", "archive:audit"'),
  counters: z
    .object({
      rosterVersion: count("the largest roster version ever given"),
      offlineMessageId: count("the largest offline message id ever given"),
      archiveId: count("the largest archive entry id ever given"),
    })
    .describe("the target's high-water marks after the copy (at least the source's)"),
  seconds: z.number().min(0).describe("how long the copy took"),
});

function storageArg(name: string, url: string): StorageOptions {
  try {
    return parseStorageUrl(url);
  } catch (error) {
    throw new CommandError(`--${name}: ${(error as Error).message}`);
  }
}

function sameStorage(a: StorageOptions, b: StorageOptions): boolean {
  if (a.backend === "sqlite" && b.backend === "sqlite") return a.path === b.path;
  if (a.backend === "postgres" && b.backend === "postgres") {
    const [x, y] = [new URL(a.url), new URL(b.url)];
    return x.host === y.host && x.pathname === y.pathname && (a.schema ?? "") === (b.schema ?? "");
  }
  return false;
}

export const storageMigrate = defineCommand({
  name: ["storage", "migrate"],
  description:
    "Copy every account and all their data, documents and archives from one storage to another " +
    "(stop the server first); the target must be empty unless --replace",
  args: [
    { name: "from", description: "the storage to copy: sqlite:PATH or postgres://…" },
    { name: "to", description: "the storage to fill: sqlite:PATH or postgres://…" },
    { name: "replace", description: "delete what the target holds before copying", flag: true },
  ],
  input: z.object({
    from: z.string().min(1),
    to: z.string().min(1),
    replace: z.boolean().optional(),
  }),
  output: storageMigrateOutput,
  mutates: true,
  local: true,
  async run(_ctx, input) {
    const from = storageArg("from", input.from);
    const to = storageArg("to", input.to);
    if (sameStorage(from, to)) throw new CommandError("--from and --to name the same storage");
    const source = await openForTransfer(from, "source");
    try {
      const target = await openForTransfer(to, "target");
      try {
        const started = performance.now();
        const result = await copyStorage(source.transfer, target.transfer, {
          replace: input.replace ?? false,
        });
        const seconds = (performance.now() - started) / 1000;
        const [fromText, toText] = [describeStorage(from), describeStorage(to)];
        return {
          message: [
            `copied ${fromText} to ${toText} in ${seconds.toFixed(1)} s` +
              (result.replaced ? " (the target's previous data was deleted)" : ""),
            `verified: ${describeCounts(result.counts)}`,
          ].join("\n"),
          data: {
            from: fromText,
            to: toText,
            replaced: result.replaced,
            tables: result.counts.tables,
            stores: result.counts.stores,
            counters: result.counters,
            seconds,
          },
        };
      } finally {
        await target.storage.close();
      }
    } catch (error) {
      if (error instanceof TargetNotEmptyError) {
        throw new CommandError(
          `${error.message}; nothing was copied. Use --replace to delete the target's data and copy anyway`,
          409,
        );
      }
      if (error instanceof CopyVerificationError) throw new CommandError(error.message, 409);
      throw error;
    } finally {
      await source.storage.close();
    }
  },
});

export const storageCommands = [storageMigrate];
