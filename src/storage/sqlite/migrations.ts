import type Database from "better-sqlite3";

/**
 * One step of the schema history. Migrations are applied once, in order, each in its own
 * transaction. A released migration is never edited: changes go into a new one.
 * PRAGMA foreign_keys cannot change inside a transaction, so a future migration that
 * rebuilds a referenced table must use the "create new, copy, drop, rename" sequence.
 */
export interface Migration {
  version: number;
  description: string;
  up(db: Database.Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description:
      "accounts, SCRAM credentials, roster, pending subscriptions, offline messages, key-value, blocklist",
    up(db) {
      db.exec(`
        CREATE TABLE accounts (
          username       TEXT    NOT NULL PRIMARY KEY,
          created_at     INTEGER NOT NULL,
          disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
          roster_version INTEGER NOT NULL DEFAULT 0
        ) STRICT;

        CREATE TABLE scram_credentials (
          username   TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
          hash       TEXT    NOT NULL CHECK (hash IN ('SHA-1', 'SHA-256')),
          salt       BLOB    NOT NULL,
          iterations INTEGER NOT NULL CHECK (iterations > 0),
          stored_key BLOB    NOT NULL,
          server_key BLOB    NOT NULL,
          PRIMARY KEY (username, hash)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE roster_items (
          username     TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
          jid          TEXT    NOT NULL,
          name         TEXT,
          subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
          ask          INTEGER NOT NULL CHECK (ask IN (0, 1)),
          approved     INTEGER NOT NULL CHECK (approved IN (0, 1)),
          PRIMARY KEY (username, jid)
        ) STRICT, WITHOUT ROWID;

        -- position keeps the order in which the client listed the groups.
        CREATE TABLE roster_groups (
          username TEXT    NOT NULL,
          jid      TEXT    NOT NULL,
          name     TEXT    NOT NULL,
          position INTEGER NOT NULL,
          PRIMARY KEY (username, jid, name),
          FOREIGN KEY (username, jid) REFERENCES roster_items (username, jid) ON DELETE CASCADE
        ) STRICT, WITHOUT ROWID;

        -- rowid gives the order of arrival, kept when a request is repeated.
        CREATE TABLE pending_subscriptions (
          username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
          from_jid TEXT NOT NULL,
          stanza   TEXT NOT NULL,
          UNIQUE (username, from_jid)
        ) STRICT;

        -- AUTOINCREMENT: ids are never reused, so removing delivered ids can never hit a newer message.
        CREATE TABLE offline_messages (
          id        INTEGER PRIMARY KEY AUTOINCREMENT,
          username  TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
          stanza    TEXT    NOT NULL,
          stored_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX offline_messages_by_account ON offline_messages (username, id);

        CREATE TABLE key_values (
          username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
          store    TEXT NOT NULL,
          key      TEXT NOT NULL,
          value    TEXT NOT NULL,
          PRIMARY KEY (username, store, key)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE blocklist (
          username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
          jid      TEXT NOT NULL,
          PRIMARY KEY (username, jid)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    description: "server-wide document maps and append-only archives (licensing, audit)",
    up(db) {
      db.exec(`
        CREATE TABLE documents (
          store TEXT NOT NULL,
          key   TEXT NOT NULL,
          value TEXT NOT NULL,
          PRIMARY KEY (store, key)
        ) STRICT, WITHOUT ROWID;

        -- AUTOINCREMENT: ids are never reused, so "after id N" paging never skips or repeats.
        CREATE TABLE archive (
          id    INTEGER PRIMARY KEY AUTOINCREMENT,
          store TEXT    NOT NULL,
          at    INTEGER NOT NULL,
          kind  TEXT    NOT NULL,
          data  TEXT    NOT NULL
        ) STRICT;
        CREATE INDEX archive_by_store_time ON archive (store, at);
        CREATE INDEX archive_by_store_kind ON archive (store, kind, id);
      `);
    },
  },
  {
    version: 3,
    description: "roster versions from one server-wide sequence (a re-created account never repeats one)",
    up(db) {
      // Versions handed out before this migration are at most the largest one still stored;
      // those of accounts deleted earlier cannot be known.
      db.exec(`
        CREATE TABLE roster_version_sequence (
          id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
          value INTEGER NOT NULL
        ) STRICT;
        INSERT INTO roster_version_sequence (id, value)
          SELECT 1, coalesce(max(roster_version), 0) FROM accounts;
      `);
    },
  },
  {
    version: 4,
    description: "message archives by owner: accounts' histories (deleted with them) and rooms'",
    up(db) {
      const table = (name: string, owner: string) => `
        -- seq (AUTOINCREMENT, never reused) is the archive order that paging follows.
        CREATE TABLE ${name} (
          seq           INTEGER PRIMARY KEY AUTOINCREMENT,
          store         TEXT    NOT NULL,
          owner         TEXT    NOT NULL ${owner},
          id            TEXT    NOT NULL,
          peer          TEXT    NOT NULL,
          peer_resource TEXT    NOT NULL,
          at            INTEGER NOT NULL,
          direction     TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
          stanza        TEXT    NOT NULL,
          text          TEXT    NOT NULL,
          folded        TEXT    NOT NULL,
          UNIQUE (store, owner, id)
        ) STRICT;
        CREATE INDEX ${name}_by_owner ON ${name} (store, owner, seq);
        CREATE INDEX ${name}_by_peer ON ${name} (store, owner, peer, seq);
        CREATE INDEX ${name}_by_time ON ${name} (store, at);
      `;
      db.exec(
        table("account_messages", "REFERENCES accounts (username) ON DELETE CASCADE") +
          table("room_messages", ""),
      );
    },
  },
  {
    version: 5,
    description: "account archives indexed by owner first, so deleting an account finds its messages",
    up(db) {
      // The account's foreign key cascades by owner alone: with store first in every index,
      // each account deletion scanned the whole table (92 ms at 300,000 rows, growing with it).
      // Every query gives both store and owner, which this order serves as well.
      db.exec(`
        CREATE INDEX account_messages_by_owner_first ON account_messages (owner, store, seq);
        DROP INDEX account_messages_by_owner;
      `);
    },
  },
  {
    version: 6,
    description: "message archives' unique key led by the id, so time-ordered ids append at its end",
    up(db) {
      // With (store, owner, id), each append wrote a random page of that index once an archive
      // outgrew memory; ids are now time-ordered (UUID version 7), and led by the id the key
      // grows at its end (docs/benchmarks.md, "Archive row ids"). SQLite cannot drop a UNIQUE
      // constraint: each table is rebuilt (new, copy, drop, rename), keeping every seq and the
      // AUTOINCREMENT counter, so no seq is ever handed out twice.
      const rebuild = (name: string, owner: string, indexes: string) => {
        const counter = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?").pluck().get(name) as
          | number
          | undefined;
        db.exec(`
          CREATE TABLE ${name}_rebuilt (
            seq           INTEGER PRIMARY KEY AUTOINCREMENT,
            store         TEXT    NOT NULL,
            owner         TEXT    NOT NULL ${owner},
            id            TEXT    NOT NULL,
            peer          TEXT    NOT NULL,
            peer_resource TEXT    NOT NULL,
            at            INTEGER NOT NULL,
            direction     TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
            stanza        TEXT    NOT NULL,
            text          TEXT    NOT NULL,
            folded        TEXT    NOT NULL,
            UNIQUE (id, store, owner)
          ) STRICT;
          INSERT INTO ${name}_rebuilt SELECT seq, store, owner, id, peer, peer_resource, at, direction, stanza, text, folded
            FROM ${name} ORDER BY seq;
          DROP TABLE ${name};
          ALTER TABLE ${name}_rebuilt RENAME TO ${name};
          ${indexes}
        `);
        if (counter !== undefined)
          db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?").run(counter, name);
      };
      rebuild(
        "account_messages",
        "REFERENCES accounts (username) ON DELETE CASCADE",
        `CREATE INDEX account_messages_by_owner_first ON account_messages (owner, store, seq);
         CREATE INDEX account_messages_by_peer ON account_messages (store, owner, peer, seq);
         CREATE INDEX account_messages_by_time ON account_messages (store, at);`,
      );
      rebuild(
        "room_messages",
        "",
        `CREATE INDEX room_messages_by_owner ON room_messages (store, owner, seq);
         CREATE INDEX room_messages_by_peer ON room_messages (store, owner, peer, seq);
         CREATE INDEX room_messages_by_time ON room_messages (store, at);`,
      );
    },
  },
];
