/**
 * A whole server's data in a backend-neutral form, for copying it from one storage backend
 * to another (`switchboard storage migrate`). Unlike the Storage interface it carries what
 * the server itself never sets directly: roster versions, creation and storage times, the
 * ids of offline messages and archive entries, and the counters that keep ids and versions
 * from being given twice.
 */
import type { ScramHash, Subscription } from "../../core/storage/types.js";

export interface TransferRows {
  accounts: { username: string; createdAt: number; disabled: boolean; rosterVersion: number };
  credentials: {
    username: string;
    hash: ScramHash;
    salt: Buffer;
    iterations: number;
    storedKey: Buffer;
    serverKey: Buffer;
  };
  rosterItems: {
    username: string;
    jid: string;
    name: string | null;
    subscription: Exclude<Subscription, "remove">;
    ask: boolean;
    approved: boolean;
    groups: string[];
  };
  /** Read in order of arrival, and written in that order. */
  pendingSubscriptions: { username: string; from: string; stanza: string };
  offlineMessages: { id: number; username: string; stanza: string; storedAt: number };
  keyValues: { username: string; store: string; key: string; value: string };
  blocklist: { username: string; jid: string };
  /** value: the document's JSON text. */
  documents: { store: string; key: string; value: string };
  /** data: the entry's JSON text. */
  archive: { id: number; store: string; at: number; kind: string; data: string };
  /** Read in archive order and written in that order (the order paging follows). */
  accountMessages: ArchivedMessageRow;
  roomMessages: ArchivedMessageRow;
}

export interface ArchivedMessageRow {
  store: string;
  owner: string;
  id: string;
  peer: string;
  peerResource: string;
  at: number;
  direction: "in" | "out";
  stanza: string;
  text: string;
}

export type TransferTable = keyof TransferRows;

/** Every table, in an order that writes an account before anything that belongs to it. */
export const TRANSFER_TABLES: readonly TransferTable[] = [
  "accounts",
  "credentials",
  "rosterItems",
  "pendingSubscriptions",
  "offlineMessages",
  "keyValues",
  "blocklist",
  "documents",
  "archive",
  "accountMessages",
  "roomMessages",
];

/** Tables whose rows belong to a named store: counted per store as well. */
export const STORE_TABLES = [
  "keyValues",
  "documents",
  "archive",
  "accountMessages",
  "roomMessages",
] as const satisfies readonly TransferTable[];

export type TransferBatch = { [T in TransferTable]: { table: T; rows: TransferRows[T][] } }[TransferTable];

/** Rows per table, and per store for key-value stores, document stores and archives. */
export interface TransferCounts {
  tables: Record<TransferTable, number>;
  /** "keyValues:vcard" → rows, "documents:licensing" → rows, "archive:audit" → rows, "accountMessages:mam" → rows. */
  stores: Record<string, number>;
}

/** High-water marks: what a backend must never hand out again after the copy. */
export interface TransferCounters {
  /** The largest roster version ever given. */
  rosterVersion: number;
  /** The largest offline message id ever given. */
  offlineMessageId: number;
  /** The largest archive entry id ever given. */
  archiveId: number;
}

/** One consistent snapshot of a backend, read table by table. */
export interface TransferReader {
  counts(): Promise<TransferCounts>;
  counters(): Promise<TransferCounters>;
  /** The table's rows in batches; one table is read at a time. */
  rows<T extends TransferTable>(table: T): AsyncIterable<TransferRows[T][]>;
}

/** Writes into a backend inside one transaction. */
export interface TransferWriter {
  counts(): Promise<TransferCounts>;
  /** Deletes every row of every table (counters are kept: they only ever grow). */
  clear(): Promise<void>;
  insert<T extends TransferTable>(table: T, rows: TransferRows[T][]): Promise<void>;
  /** Raises the backend's counters to at least these values. */
  raiseCounters(counters: TransferCounters): Promise<void>;
  counters(): Promise<TransferCounters>;
}

/** What a backend offers for copying. */
export interface StorageTransfer {
  /** Runs `fn` over one read-only snapshot. */
  read<R>(fn: (reader: TransferReader) => Promise<R>): Promise<R>;
  /** Runs `fn` in one write transaction: everything it wrote is committed when it resolves, nothing when it throws. */
  write<R>(fn: (writer: TransferWriter) => Promise<R>): Promise<R>;
}

/** Rows read or written per batch. */
export const TRANSFER_BATCH = 1_000;

export function emptyCounts(): TransferCounts {
  const tables = Object.fromEntries(TRANSFER_TABLES.map((t) => [t, 0])) as Record<TransferTable, number>;
  return { tables, stores: {} };
}
