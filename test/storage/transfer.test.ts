/**
 * Copying a whole server between backends (what `switchboard storage migrate` runs): every
 * store arrives unchanged as the Storage interface reads it, versions and ids are never given
 * twice afterwards, a non-empty target is refused unless replaced, and a copy that does not
 * verify leaves the target as it was. SQLite → SQLite always runs; the PostgreSQL directions
 * need a server (skipped with a message otherwise).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { storageMigrate } from "../../src/commands/storage.js";
import { type CommandContext, CommandError } from "../../src/core/commands.js";
import type { RosterItem, Storage } from "../../src/core/storage/types.js";
import { StorageUnavailableError } from "../../src/storage/errors.js";
import { openPostgresStorage } from "../../src/storage/postgres/index.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { CopyVerificationError, copyStorage, TargetNotEmptyError } from "../../src/storage/transfer/copy.js";
import type { StorageTransfer } from "../../src/storage/transfer/types.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { credentials } from "./conformance.js";

const KV_STORES = ["vcard", "private", "lastactivity"];
const DOC_STORES = ["licensing", "programme", "api-tokens"];
const ARCHIVES = ["audit", "account-changes"];

type Transferable = Storage & { transfer(): StorageTransfer };

const dir = mkdtempSync(join(tmpdir(), "switchboard-transfer-"));
let files = 0;
const sqlite = (): Promise<Transferable> => openSqliteStorage({ path: join(dir, `db-${++files}.sqlite`) });

const pgSkip = await postgresSkip();
let database: TestDatabase | undefined;
let schemas = 0;
const postgres = (): Promise<Transferable> =>
  openPostgresStorage({ url: database!.url, schema: `copy${++schemas}` });

before(async () => {
  if (!pgSkip) database = await createTestDatabase("transfer");
});
after(async () => {
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function item(jid: string, extra: Partial<RosterItem> = {}): RosterItem {
  return { jid, subscription: "none", ask: false, approved: false, groups: [], ...extra };
}

/** Data in every store, with the history that moves counters past what remains. */
async function fill(
  storage: Storage,
): Promise<{ maxVersion: number; maxOfflineId: number; maxArchiveId: number }> {
  let maxVersion = 0;
  for (const [n, user] of ["alice", "bob", "carol", "zoé", "gone"].entries()) {
    await storage.accounts.create(user, n % 2 === 0 ? credentials(n) : [credentials(n)[1]!]);
    maxVersion = Math.max(
      maxVersion,
      await storage.roster.setItem(
        user,
        item("friend@example.com", { name: "Friend ☎", subscription: "both", groups: ["Zed", "Alpha"] }),
      ),
      await storage.roster.setItem(user, item(`pending-${n}@example.org`, { ask: true, approved: n === 1 })),
    );
    for (const from of ["zed@example.net", "amy@example.net", "mid@example.net"]) {
      await storage.roster.addPending(user, { from, stanza: `<presence from='${from}' type='subscribe'/>` });
    }
    for (let m = 0; m < 3; m++)
      await storage.offline.push(user, `<message id='${user}-${m}'><body>hi ${m}</body></message>`, 100);
    for (const store of KV_STORES)
      await storage.keyValue(store).set(user, `${store}-key`, `<x xmlns='${store}'>${user}</x>`);
    await storage.keyValue("private").set(user, "", "<empty-key/>");
    await storage.blocklist.add(user, ["spam@example.com", "example.net", "b@x/res"]);
  }
  await storage.accounts.setDisabled("bob", true);
  // Removed messages and a deleted account: their ids and versions must stay unused.
  const [first] = await storage.offline.list("alice");
  await storage.offline.remove("alice", [first!.id]);
  const offlineIds = (await Promise.all(["alice", "bob", "gone"].map((u) => storage.offline.list(u))))
    .flat()
    .map((m) => m.id);
  const maxOfflineId = Math.max(...offlineIds);
  maxVersion = Math.max(maxVersion, await storage.roster.setItem("gone", item("last@example.com")));
  await storage.accounts.delete("gone");
  for (const [n, store] of DOC_STORES.entries()) {
    const docs = storage.documents(store);
    await docs.put("policy", { mode: "warn", stages: [{ at: n, mode: "enforce" }], text: "Ä \u0000 ☎" });
    await docs.put(`app:com.example.${n}`, ["a", 1, true, null]);
    await docs.update("revision", (r) => ((r as number | undefined) ?? 0) + n + 1);
  }
  let maxArchiveId = 0;
  for (const archive of ARCHIVES) {
    for (let i = 0; i < 4; i++) {
      maxArchiveId = await storage
        .archive(archive)
        .append({ at: 1_000 + i, kind: `${archive}.kind${i % 2}`, data: { i, who: "cli:root" } });
    }
  }
  await storage.archive("audit").prune(1_001); // the oldest entry goes, its id stays used
  // Message archives: appended in an order that is not the order of ids or times.
  const mam = storage.messages("mam", { ownedByAccounts: true });
  const muc = storage.messages("muc", { ownedByAccounts: false });
  for (const [n, id] of ["m3", "m1", "m2", "m5", "m4"].entries()) {
    for (const owner of ["alice", "carol"]) {
      await mam.append({
        id,
        owner,
        peer: "bob@localhost",
        peerResource: n % 2 ? "phone" : "",
        at: 10_000 - n,
        direction: n % 2 ? "in" : "out",
        stanza: `<message id='${id}'><body>Grüße ${id}</body></message>`,
        text: `Grüße ${id}`,
      });
    }
    await muc.append({
      id,
      owner: "room@conference.localhost",
      peer: "room@conference.localhost",
      peerResource: `nick${n}`,
      at: 20_000 + n,
      direction: "in",
      stanza: `<message type='groupchat'><body>${id}</body></message>`,
      text: id,
    });
  }
  return { maxVersion, maxOfflineId, maxArchiveId };
}

/** Everything the Storage interface shows of the filled data. */
async function contents(storage: Storage): Promise<unknown> {
  const accounts: Record<string, unknown> = {};
  for (const name of await storage.accounts.list()) {
    const keyValues: Record<string, Record<string, string | undefined>> = {};
    for (const store of KV_STORES) {
      const kv = storage.keyValue(store);
      keyValues[store] = Object.fromEntries(
        await Promise.all((await kv.keys(name)).map(async (k) => [k, await kv.get(name, k)] as const)),
      );
    }
    accounts[name] = {
      account: await storage.accounts.get(name),
      roster: await storage.roster.get(name),
      pending: await storage.roster.getPending(name),
      offline: await storage.offline.list(name),
      blocklist: await storage.blocklist.list(name),
      keyValues,
    };
  }
  const documents: Record<string, unknown> = {};
  for (const store of DOC_STORES) documents[store] = await storage.documents(store).list();
  const archives: Record<string, unknown> = {};
  for (const archive of ARCHIVES) archives[archive] = await storage.archive(archive).query();
  const mam = storage.messages("mam", { ownedByAccounts: true });
  const messages: Record<string, unknown> = {};
  messages.bob = await mam.query({ owner: "bob" });
  for (const owner of ["alice", "carol"]) {
    messages[owner] = {
      all: await mam.query({ owner }),
      // Paging follows the archive order, which must survive the copy.
      afterM1: await mam.query({ owner, afterId: "m1", limit: 2 }),
      text: await mam.query({ owner, text: "GRÜSSE M5".toLowerCase().replace("ss", "ß") }),
    };
  }
  const rooms = await storage
    .messages("muc", { ownedByAccounts: false })
    .query({ owner: "room@conference.localhost" });
  return { accounts, documents, archives, messages, rooms };
}

/** After a copy, the target gives versions and ids above everything the source ever gave. */
async function assertCountersCarried(
  target: Storage,
  marks: { maxVersion: number; maxOfflineId: number; maxArchiveId: number },
): Promise<void> {
  await target.accounts.create("gone", []);
  const version = await target.roster.setItem("gone", item("new@example.com"));
  assert.ok(version > marks.maxVersion, `roster version ${version} repeats one up to ${marks.maxVersion}`);
  await target.offline.push("gone", "<message/>", 10);
  const [message] = await target.offline.list("gone");
  assert.ok(
    message!.id > marks.maxOfflineId,
    `offline id ${message!.id} repeats one up to ${marks.maxOfflineId}`,
  );
  const entry = await target.archive("audit").append({ at: 5_000, kind: "after", data: null });
  assert.ok(entry > marks.maxArchiveId, `archive id ${entry} repeats one up to ${marks.maxArchiveId}`);
}

async function copyAndCompare(
  makeSource: () => Promise<Transferable>,
  makeTarget: () => Promise<Transferable>,
) {
  const source = await makeSource();
  const target = await makeTarget();
  try {
    const marks = await fill(source);
    const result = await copyStorage(source.transfer(), target.transfer());
    assert.equal(result.replaced, false);
    assert.equal(result.counts.tables.accounts, 4);
    assert.equal(result.counts.tables.offlineMessages, 11);
    assert.equal(result.counts.stores["documents:licensing"], 3);
    assert.equal(result.counts.stores["archive:audit"], 3);
    assert.equal(result.counts.stores["keyValues:private"], 8);
    assert.equal(result.counts.stores["accountMessages:mam"], 10);
    assert.equal(result.counts.stores["roomMessages:muc"], 5);
    assert.deepEqual(await contents(target), await contents(source));
    await assertCountersCarried(target, marks);
  } finally {
    await source.close();
    await target.close();
  }
}

describe("storage transfer", () => {
  it("copies SQLite to SQLite: every store unchanged, counters carried", () =>
    copyAndCompare(sqlite, sqlite));

  it("copies SQLite to PostgreSQL", { skip: pgSkip }, () => copyAndCompare(sqlite, postgres));

  it("copies PostgreSQL to SQLite", { skip: pgSkip }, () => copyAndCompare(postgres, sqlite));

  it("copies PostgreSQL to PostgreSQL", { skip: pgSkip }, () => copyAndCompare(postgres, postgres));

  it("refuses a target that holds data, and with replace deletes it first", async () => {
    const source = await sqlite();
    const target = await sqlite();
    try {
      await fill(source);
      await target.accounts.create("squatter", credentials(9));
      await target.documents("licensing").put("old", 1);
      await assert.rejects(copyStorage(source.transfer(), target.transfer()), (error: unknown) => {
        assert.ok(error instanceof TargetNotEmptyError);
        assert.match(error.message, /1 accounts.*1 documents \(licensing 1\)/);
        return true;
      });
      assert.deepEqual(
        await target.accounts.list(),
        ["squatter"],
        "the refused copy left the target as it was",
      );
      const result = await copyStorage(source.transfer(), target.transfer(), { replace: true });
      assert.equal(result.replaced, true);
      assert.equal(await target.accounts.exists("squatter"), false);
      assert.equal(await target.documents("licensing").get("old"), undefined);
      assert.deepEqual(await contents(target), await contents(source));
    } finally {
      await source.close();
      await target.close();
    }
  });

  for (const [name, makeTarget] of [
    ["SQLite", sqlite],
    ["PostgreSQL", postgres],
  ] as const) {
    it(`a copy that does not verify is rolled back on ${name}`, {
      skip: name === "PostgreSQL" && pgSkip,
    }, async () => {
      const source = await sqlite();
      const target = await makeTarget();
      try {
        await fill(source);
        // A target that loses the last batch of offline messages: the counts cannot match.
        const real = target.transfer();
        const lossy: StorageTransfer = {
          read: (fn) => real.read(fn),
          write: (fn) =>
            real.write((writer) =>
              fn({
                ...writer,
                counts: () => writer.counts(),
                clear: () => writer.clear(),
                counters: () => writer.counters(),
                raiseCounters: (c) => writer.raiseCounters(c),
                insert: (table, rows) =>
                  writer.insert(table, table === "offlineMessages" ? rows.slice(1) : rows),
              }),
            ),
        };
        await assert.rejects(copyStorage(source.transfer(), lossy), (error: unknown) => {
          assert.ok(error instanceof CopyVerificationError);
          assert.match(error.message, /offline messages: 10 instead of 11/);
          return true;
        });
        assert.equal(await target.accounts.count(), 0, "nothing of the failed copy was kept");
        assert.deepEqual(await target.documents("licensing").list(), []);
      } finally {
        await source.close();
        await target.close();
      }
    });
  }
});

describe("storage migrate (the command)", () => {
  const run = (input: { from: string; to: string; replace?: boolean }) =>
    storageMigrate.run({} as CommandContext, input);

  it("copies, reports what it verified, refuses a non-empty target unless --replace", async () => {
    const from = join(dir, "command-source.sqlite");
    const to = join(dir, "command-target.sqlite");
    const source = await openSqliteStorage({ path: from });
    await fill(source);
    await source.close();

    const result = await run({ from: `sqlite:${from}`, to: `sqlite:${to}` });
    assert.match(
      result.message,
      /^copied sqlite:.*command-source\.sqlite to sqlite:.*command-target\.sqlite in /,
    );
    assert.match(result.message, /\nverified: 4 accounts, .*11 offline messages.*\(mam 10\)/);
    assert.deepEqual((result.data as { tables: Record<string, number> }).tables.accounts, 4);

    await assert.rejects(run({ from: `sqlite:${from}`, to: `sqlite:${to}` }), (error: unknown) => {
      assert.ok(error instanceof CommandError);
      assert.equal(error.status, 409);
      assert.match(error.message, /not empty \(4 accounts.*nothing was copied\. Use --replace/);
      return true;
    });
    const again = await run({ from: `sqlite:${from}`, to: `sqlite:${to}`, replace: true });
    assert.match(again.message, /the target's previous data was deleted/);
  });

  it("refuses a missing source, the same storage twice and what is not a storage URL", async () => {
    await assert.rejects(
      run({ from: `sqlite:${join(dir, "no-such.sqlite")}`, to: `sqlite:${join(dir, "x.sqlite")}` }),
      (error: unknown) =>
        error instanceof StorageUnavailableError && /no SQLite database at/.test(error.message),
    );
    const file = join(dir, "same.sqlite");
    await assert.rejects(
      run({ from: `sqlite:${file}`, to: `sqlite:${file}` }),
      (error: unknown) => error instanceof CommandError && /the same storage/.test(error.message),
    );
    await assert.rejects(
      run({ from: `sqlite:${file}`, to: "mysql://db/switchboard" }),
      (error: unknown) => error instanceof CommandError && /--to: not a storage URL/.test(error.message),
    );
  });
});
