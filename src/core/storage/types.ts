/**
 * The storage interface. Every backend (SQLite now, PostgreSQL later) implements
 * it; nothing above this file may know which backend is in use. Methods are async
 * so network backends fit; the SQLite backend resolves synchronously underneath.
 *
 * Account names passed here are already normalised localparts (see core/jid.ts).
 */

/** SCRAM credentials for one hash: the only form in which a password is kept (RFC 5802). */
export interface ScramCredential {
  /** "SHA-1" | "SHA-256" */
  hash: ScramHash;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramHash = "SHA-1" | "SHA-256";

export interface Account {
  username: string;
  createdAt: number;
  disabled: boolean;
  credentials: ScramCredential[];
}

export type Subscription = "none" | "to" | "from" | "both" | "remove";

/** One roster item (RFC 6121 §2.1.2), with the server-side flags the state machine needs. */
export interface RosterItem {
  /** Bare JID of the contact, normalised. */
  jid: string;
  name?: string;
  subscription: Exclude<Subscription, "remove">;
  /** Outbound subscription request pending ("ask='subscribe'"). */
  ask: boolean;
  /** Subscription pre-approved by the user (RFC 6121 §3.4). */
  approved: boolean;
  groups: string[];
}

/** A pending inbound subscription request that the user has not answered yet. */
export interface PendingSubscription {
  from: string;
  /** The original presence stanza as XML, so it can be redelivered on login (RFC 6121 §3.1.3). */
  stanza: string;
}

export interface OfflineMessage {
  id: number;
  /** Serialized stanza, already carrying its XEP-0203 delay element. */
  stanza: string;
  storedAt: number;
}

export interface AccountStore {
  create(username: string, credentials: ScramCredential[]): Promise<boolean>;
  get(username: string): Promise<Account | undefined>;
  exists(username: string): Promise<boolean>;
  setCredentials(username: string, credentials: ScramCredential[]): Promise<boolean>;
  setDisabled(username: string, disabled: boolean): Promise<boolean>;
  /** Deletes the account and every piece of data that belongs to it. */
  delete(username: string): Promise<boolean>;
  list(opts?: { prefix?: string; limit?: number; offset?: number }): Promise<string[]>;
  count(): Promise<number>;
  /** Creates many accounts in one transaction; returns how many were created (existing names are skipped). */
  createMany(items: { username: string; credentials: ScramCredential[] }[]): Promise<number>;
}

/**
 * Roster versions (RFC 6121 §2.6): 0 for a roster never changed; every change gives a
 * larger one, never given before on this server — not even to an account of the same
 * name that was deleted — so a client's cached version cannot match a different roster.
 */
export interface RosterStore {
  /** All items and the current roster version. */
  get(username: string): Promise<{ version: number; items: RosterItem[] }>;
  getItem(username: string, contact: string): Promise<RosterItem | undefined>;
  /** Inserts or replaces one item; bumps and returns the roster version. */
  setItem(username: string, item: RosterItem): Promise<number>;
  /** Removes one item; bumps and returns the roster version (unchanged if nothing was removed). */
  removeItem(username: string, contact: string): Promise<number>;
  getPending(username: string): Promise<PendingSubscription[]>;
  addPending(username: string, pending: PendingSubscription): Promise<void>;
  removePending(username: string, from: string): Promise<void>;
}

export interface OfflineStore {
  /** Appends a message unless the account already holds `quota` messages; returns false when full. */
  push(username: string, stanza: string, quota: number): Promise<boolean>;
  list(username: string): Promise<OfflineMessage[]>;
  count(username: string): Promise<number>;
  /** Removes the given messages (after successful delivery) or all of them when ids is omitted. */
  remove(username: string, ids?: number[]): Promise<void>;
}

/** Key-value store for per-account XML documents (vCard, private XML, etc.), namespaced by `store`. */
export interface KeyValueStore {
  get(username: string, key: string): Promise<string | undefined>;
  set(username: string, key: string, value: string): Promise<void>;
  delete(username: string, key: string): Promise<void>;
  keys(username: string): Promise<string[]>;
}

export interface BlocklistStore {
  list(username: string): Promise<string[]>;
  add(username: string, jids: string[]): Promise<void>;
  remove(username: string, jids?: string[]): Promise<void>;
}

/**
 * A server-wide map of JSON documents by key, for features that keep a small data
 * set of their own (the client-licence registry, policies, statistics). Values are
 * plain JSON (objects, arrays, strings, numbers, booleans, null).
 */
export interface DocumentStore<T = unknown> {
  get(key: string): Promise<T | undefined>;
  put(key: string, value: T): Promise<void>;
  /** Returns false when there was no such key. */
  delete(key: string): Promise<boolean>;
  /** Documents whose key starts with `prefix` (all when omitted), sorted by key. */
  list(opts?: { prefix?: string; limit?: number }): Promise<{ key: string; value: T }[]>;
  count(opts?: { prefix?: string }): Promise<number>;
  /**
   * Atomic read-modify-write of one document, safe against other processes (the CLI
   * and the server) changing it at the same time. `fn` receives the current value
   * (undefined if absent) and returns the new one (undefined deletes it). Returns the new value.
   */
  update(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined>;
}

export interface ArchiveEntry<T = unknown> {
  /** Increasing id, the order of appending. */
  id: number;
  /** Milliseconds since the epoch, given by the caller (an injectable clock). */
  at: number;
  /** A short classification used for filtering (e.g. "licence.revoke"). */
  kind: string;
  data: T;
}

/** An append-only log (audit trail): entries are never changed, only added and (by retention) pruned. */
export interface ArchiveStore<T = unknown> {
  append(entry: { at: number; kind: string; data: T }): Promise<number>;
  /** Entries matching every given filter, oldest first unless `newestFirst`. */
  query(opts?: {
    kind?: string;
    /** Entries whose kind starts with this. */
    kindPrefix?: string;
    since?: number;
    until?: number;
    afterId?: number;
    limit?: number;
    newestFirst?: boolean;
  }): Promise<ArchiveEntry<T>[]>;
  /** Removes entries older than `before`; returns how many. */
  prune(before: number): Promise<number>;
}

/**
 * One archived message: an account's 1:1 history (XEP-0313), a room's history, … `id` is
 * the server's stable id for it (XEP-0359 stanza-id), unique within its store and owner.
 */
export interface ArchivedMessage {
  id: string;
  /** Whose archive it is: an account's localpart, or a room's address in a store of rooms. */
  owner: string;
  /** The other party, a bare JID (the contact; in a room, whoever the store's user says). */
  peer: string;
  /** The other party's resource when known (XEP-0313 'with' may name a full JID); "" otherwise. */
  peerResource: string;
  /** Milliseconds since the epoch: when the server archived it. */
  at: number;
  /** "in": received by the owner; "out": sent by the owner. */
  direction: "in" | "out";
  /** The stanza as archived (serialized XML). */
  stanza: string;
  /** The searchable text (the body), "" when none. */
  text: string;
}

/**
 * A query on one owner's messages. Filters combine; results are in archive order (the order
 * of appending) — oldest first, or newest first with `newestFirst` (RSM paging backwards).
 */
export interface MessageQuery {
  owner: string;
  /** Bare JID of the other party. */
  peer?: string;
  /** With `peer`: only this resource of it. */
  peerResource?: string;
  /** Inclusive bounds in milliseconds. */
  start?: number;
  end?: number;
  /** Only messages after / before the one with this id (exclusive); an unknown id throws ArchiveIdNotFound. */
  afterId?: string;
  beforeId?: string;
  /** Only these ids. */
  ids?: string[];
  /** Case-insensitive substring of the text. */
  text?: string;
  limit?: number;
  newestFirst?: boolean;
}

/** An `afterId` or `beforeId` that names no message of the owner (XEP-0313: item-not-found). */
export class ArchiveIdNotFound extends Error {
  constructor(readonly id: string) {
    super(`no archived message with id ${id}`);
    this.name = "ArchiveIdNotFound";
  }
}

/**
 * Append-and-query history of messages by owner (message archives, room history).
 *
 * A caller need not wait for an append before going on: an owner's appends are stored in
 * the order they were made, and every read or removal sees the appends made before it in
 * this process. (Backends batch or queue appends accordingly.)
 */
export interface MessageArchiveStore {
  /** Adds a message; an id the owner already has is refused (returns false). */
  append(message: ArchivedMessage): Promise<boolean>;
  /**
   * Messages matching the query, at most `limit`, and whether the query's result ends with
   * them (`complete`: nothing more matches in the direction of reading).
   */
  query(q: MessageQuery): Promise<{ messages: ArchivedMessage[]; complete: boolean }>;
  /** How many messages match the query's filters (limit and paging ignored). */
  count(q: MessageQuery): Promise<number>;
  get(owner: string, id: string): Promise<ArchivedMessage | undefined>;
  /** Removes messages of one owner (all of them when ids is omitted); returns how many. */
  remove(owner: string, ids?: string[]): Promise<number>;
  /** Removes messages archived before `before` (of one owner, or of every owner); returns how many. */
  prune(before: number, owner?: string): Promise<number>;
  /**
   * Backpressure, where the backend queues appends: undefined while the store takes appends
   * now; when its queue is full, a promise that resolves once it takes them again. A caller
   * that can wait (the handler of a message) waits on it before appending, so a store slower
   * than a flood slows the flood instead of queueing it in memory. An append made without
   * waiting is still taken, in order.
   */
  roomToAppend?(): Promise<void> | undefined;
}

/** Figures of a store's queue of appends (metrics): since the storage was opened, or now. */
export interface AppendQueueFigures {
  /** Rows taken and not yet written, now. */
  queuedRows: number;
  /** Appends waiting for room in the queue, now (made without waiting on `roomToAppend`); where such a wait exists. */
  waitingForRoom?: number;
  /** Callers waiting on `roomToAppend`, now. */
  callersWaiting: number;
  /** Batches written (committed or failed) so far. */
  batches: number;
}

export interface MessageArchiveOptions {
  /**
   * Owners are accounts (localparts): their messages go when the account is deleted, and
   * appending for an account that does not exist is refused. Otherwise owners are free
   * strings (rooms) that the store's user manages.
   */
  ownedByAccounts: boolean;
}

export interface Storage {
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly blocklist: BlocklistStore;
  /** A key-value store for one feature (e.g. "vcard", "private", "lastactivity"). */
  keyValue(store: string): KeyValueStore;
  /** A server-wide document map for one feature (e.g. "licensing"). */
  documents<T = unknown>(store: string): DocumentStore<T>;
  /** An append-only log for one feature (e.g. "audit"). */
  archive<T = unknown>(store: string): ArchiveStore<T>;
  /** A message history by owner for one feature (e.g. "mam", "muc"). */
  messages(store: string, opts: MessageArchiveOptions): MessageArchiveStore;
  /** The queues of message-archive appends by store name, where the backend queues them. */
  appendQueues?(): Iterable<readonly [store: string, figures: AppendQueueFigures]>;
  /** Makes sure all writes are durable and releases the backend. */
  close(): Promise<void>;
}
