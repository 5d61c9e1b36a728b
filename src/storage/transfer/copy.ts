/**
 * Copies a whole server's data from one storage to another: read from one snapshot of the
 * source, written in one transaction on the target, verified (row counts per table and per
 * store, counters) before that transaction commits. A failure at any point leaves the
 * target as it was.
 */
import {
  STORE_TABLES,
  type StorageTransfer,
  TRANSFER_TABLES,
  type TransferCounters,
  type TransferCounts,
  type TransferTable,
} from "./types.js";

export interface CopyResult {
  /** What the source held, and so what the target holds now. */
  counts: TransferCounts;
  /** The target's counters after the copy (at least the source's). */
  counters: TransferCounters;
  /** The target held data, which was deleted first (`replace`). */
  replaced: boolean;
}

/** The target holds data and `replace` was not given. */
export class TargetNotEmptyError extends Error {
  override readonly name = "TargetNotEmptyError";
  constructor(readonly counts: TransferCounts) {
    super(`the target storage is not empty (${describeCounts(counts)})`);
  }
}

/** After the copy, the target's counts differ from the source's (the copy was rolled back). */
export class CopyVerificationError extends Error {
  override readonly name = "CopyVerificationError";
  constructor(readonly differences: string[]) {
    super(`the copy does not match the source, nothing was kept: ${differences.join("; ")}`);
  }
}

export async function copyStorage(
  source: StorageTransfer,
  target: StorageTransfer,
  opts: { replace?: boolean; onTable?: (table: TransferTable, rows: number) => void } = {},
): Promise<CopyResult> {
  return source.read(async (reader) => {
    const expected = await reader.counts();
    const sourceCounters = await reader.counters();
    return target.write(async (writer) => {
      const before = await writer.counts();
      const replaced = totalRows(before) > 0;
      if (replaced && !opts.replace) throw new TargetNotEmptyError(before);
      if (replaced) await writer.clear();
      for (const table of TRANSFER_TABLES) {
        let copied = 0;
        for await (const rows of reader.rows(table)) {
          await writer.insert(table, rows);
          copied += rows.length;
        }
        opts.onTable?.(table, copied);
      }
      await writer.raiseCounters(sourceCounters);
      const differences = compareCounts(expected, await writer.counts());
      const counters = await writer.counters();
      for (const [name, value] of Object.entries(sourceCounters) as [keyof TransferCounters, number][]) {
        if (counters[name] < value) differences.push(`${name} is ${counters[name]}, the source's ${value}`);
      }
      if (differences.length > 0) throw new CopyVerificationError(differences);
      return { counts: expected, counters, replaced };
    });
  });
}

export function totalRows(counts: TransferCounts): number {
  return Object.values(counts.tables).reduce((a, b) => a + b, 0);
}

/** Every table and store whose count differs, as sentences. */
export function compareCounts(expected: TransferCounts, actual: TransferCounts): string[] {
  const differences: string[] = [];
  for (const table of TRANSFER_TABLES) {
    if (expected.tables[table] !== actual.tables[table]) {
      differences.push(`${LABEL[table]}: ${actual.tables[table]} instead of ${expected.tables[table]}`);
    }
  }
  for (const store of new Set([...Object.keys(expected.stores), ...Object.keys(actual.stores)])) {
    const [e, a] = [expected.stores[store] ?? 0, actual.stores[store] ?? 0];
    if (e !== a) differences.push(`${store}: ${a} instead of ${e}`);
  }
  return differences;
}

const LABEL: Record<TransferTable, string> = {
  accounts: "accounts",
  credentials: "SCRAM credentials",
  rosterItems: "roster items",
  pendingSubscriptions: "pending subscriptions",
  offlineMessages: "offline messages",
  keyValues: "key-value entries",
  blocklist: "blocked JIDs",
  documents: "documents",
  archive: "archive entries",
  accountMessages: "archived messages of accounts",
  roomMessages: "archived messages of rooms",
};

/** "3 accounts, 6 SCRAM credentials, …, 12 documents (licensing 10, programme 2), …" */
export function describeCounts(counts: TransferCounts): string {
  return TRANSFER_TABLES.map((table) => {
    const text = `${counts.tables[table]} ${LABEL[table]}`;
    if (!(STORE_TABLES as readonly TransferTable[]).includes(table)) return text;
    const stores = Object.entries(counts.stores)
      .filter(([key]) => key.startsWith(`${table}:`))
      .map(([key, n]) => `${key.slice(table.length + 1)} ${n}`);
    return stores.length > 0 ? `${text} (${stores.join(", ")})` : text;
  }).join(", ");
}
