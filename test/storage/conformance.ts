/**
 * Backend-agnostic behaviour every Storage implementation must show. A backend's test file calls
 * runStorageConformance with a factory that returns a fresh, empty storage on every call, and a
 * way to open a second handle on the same database (what another process does).
 *
 * Contract details pinned down here beyond the interface comments:
 * - writes that would create data for an account that does not exist reject (data never
 *   outlives its account), reads for such an account return empty results;
 * - `remove(username)` without ids/jids clears everything, with an empty array removes nothing;
 * - list results come back sorted (accounts, roster items, key names, blocked JIDs),
 *   offline messages by id, pending subscriptions by arrival.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  type ArchivedMessage,
  ArchiveIdNotFound,
  type RosterItem,
  type ScramCredential,
  type ScramHash,
  type Storage,
} from "../../src/core/storage/types.js";

export function credential(hash: ScramHash, seed: number): ScramCredential {
  const bytes = (length: number, salt: number) =>
    Buffer.from(Array.from({ length }, (_, i) => (seed * 31 + salt * 7 + i) & 0xff));
  const keyLength = hash === "SHA-1" ? 20 : 32;
  return {
    hash,
    salt: bytes(16, 1),
    iterations: 4096 + seed,
    storedKey: bytes(keyLength, 2),
    serverKey: bytes(keyLength, 3),
  };
}

export function credentials(seed: number): ScramCredential[] {
  return [credential("SHA-1", seed), credential("SHA-256", seed)];
}

function item(jid: string, extra: Partial<RosterItem> = {}): RosterItem {
  return { jid, subscription: "none", ask: false, approved: false, groups: [], ...extra };
}

export interface ConformanceOptions {
  /** node:test's skip: false to run, or the reason the backend cannot be tested here. */
  skip?: false | string;
  /**
   * Opens another handle on the database the last makeStorage() call created, as another
   * process (the CLI, a second server) would: for the guarantees that hold across processes.
   */
  openAnother: () => Promise<Storage>;
}

export function runStorageConformance(
  name: string,
  makeStorage: () => Promise<Storage>,
  opts: ConformanceOptions,
): void {
  describe(`Storage conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    let storage: Storage;
    /** Other handles opened by a test, closed after it. */
    const others: Storage[] = [];
    const another = async () => {
      const s = await opts.openAnother();
      others.push(s);
      return s;
    };

    beforeEach(async () => {
      storage = await makeStorage();
    });

    afterEach(async () => {
      await storage.close();
      for (const s of others.splice(0)) await s.close();
    });

    describe("accounts", () => {
      it("creates an account once and reads it back with its credentials as Buffers", async () => {
        const before = Date.now();
        assert.equal(await storage.accounts.create("alice", credentials(1)), true);
        const after = Date.now();
        assert.equal(await storage.accounts.create("alice", credentials(2)), false);

        const account = await storage.accounts.get("alice");
        assert.ok(account);
        assert.equal(account.username, "alice");
        assert.equal(account.disabled, false);
        assert.ok(
          account.createdAt >= before && account.createdAt <= after,
          "createdAt is the creation time",
        );
        assert.deepEqual(account.credentials, credentials(1), "the second create must not overwrite");
        for (const c of account.credentials) {
          assert.ok(Buffer.isBuffer(c.salt) && Buffer.isBuffer(c.storedKey) && Buffer.isBuffer(c.serverKey));
        }
      });

      it("allows an account without credentials", async () => {
        assert.equal(await storage.accounts.create("nopass", []), true);
        assert.deepEqual((await storage.accounts.get("nopass"))?.credentials, []);
      });

      it("answers get/exists for unknown accounts", async () => {
        assert.equal(await storage.accounts.get("nobody"), undefined);
        assert.equal(await storage.accounts.exists("nobody"), false);
        await storage.accounts.create("alice", credentials(1));
        assert.equal(await storage.accounts.exists("alice"), true);
        assert.equal(await storage.accounts.exists("Alice"), false, "names are compared exactly");
      });

      it("replaces the whole credential set", async () => {
        await storage.accounts.create("alice", credentials(1));
        const replacement = [credential("SHA-256", 9)];
        assert.equal(await storage.accounts.setCredentials("alice", replacement), true);
        assert.deepEqual((await storage.accounts.get("alice"))?.credentials, replacement);
        assert.equal(await storage.accounts.setCredentials("nobody", replacement), false);
        assert.equal(await storage.accounts.exists("nobody"), false);
      });

      it("sets and clears the disabled flag", async () => {
        await storage.accounts.create("alice", credentials(1));
        assert.equal(await storage.accounts.setDisabled("alice", true), true);
        assert.equal((await storage.accounts.get("alice"))?.disabled, true);
        assert.equal(await storage.accounts.setDisabled("alice", false), true);
        assert.equal((await storage.accounts.get("alice"))?.disabled, false);
        assert.equal(await storage.accounts.setDisabled("nobody", true), false);
      });

      it("deletes an account and every piece of its data, leaving other accounts alone", async () => {
        for (const user of ["alice", "bob"]) {
          await storage.accounts.create(user, credentials(1));
          await storage.roster.setItem(user, item("carol@example.com", { groups: ["Friends"] }));
          await storage.roster.addPending(user, { from: "dave@example.com", stanza: "<presence/>" });
          await storage.offline.push(user, "<message/>", 10);
          await storage.keyValue("vcard").set(user, "", "<vCard/>");
          await storage.keyValue("private").set(user, "ns", "<x/>");
          await storage.blocklist.add(user, ["spam@example.com"]);
        }

        const aliceVersion = (await storage.roster.get("alice")).version;
        const bobVersion = (await storage.roster.get("bob")).version;
        assert.ok(aliceVersion > 0);
        assert.equal(await storage.accounts.delete("alice"), true);
        assert.equal(await storage.accounts.delete("alice"), false);
        assert.equal(await storage.accounts.exists("alice"), false);

        // A new account with the same name must start from nothing.
        await storage.accounts.create("alice", []);
        assert.deepEqual(await storage.roster.get("alice"), { version: 0, items: [] });
        assert.deepEqual(await storage.roster.getPending("alice"), []);
        assert.deepEqual(await storage.offline.list("alice"), []);
        assert.deepEqual(await storage.keyValue("vcard").keys("alice"), []);
        assert.deepEqual(await storage.keyValue("private").keys("alice"), []);
        assert.deepEqual(await storage.blocklist.list("alice"), []);
        assert.deepEqual((await storage.accounts.get("alice"))?.credentials, []);
        // A client that cached the deleted account's roster must not be told it is current.
        for (let i = 0; i < 3; i++) {
          const v = await storage.roster.setItem("alice", item(`x${i}@example.com`));
          assert.ok(v > aliceVersion, `version ${v} of the new account repeats one of the deleted account's`);
        }

        const bobRoster = await storage.roster.get("bob");
        assert.equal(bobRoster.version, bobVersion);
        assert.equal(bobRoster.items.length, 1);
        assert.equal((await storage.roster.getPending("bob")).length, 1);
        assert.equal(await storage.offline.count("bob"), 1);
        assert.equal(await storage.keyValue("vcard").get("bob", ""), "<vCard/>");
        assert.equal(await storage.keyValue("private").get("bob", "ns"), "<x/>");
        assert.deepEqual(await storage.blocklist.list("bob"), ["spam@example.com"]);
        assert.deepEqual((await storage.accounts.get("bob"))?.credentials, credentials(1));
      });

      it("lists accounts sorted, with prefix, limit and offset", async () => {
        const names = ["carol", "alice", "bob", "alfred", "al", "a_b", "axb", "a%c"];
        for (const n of names) await storage.accounts.create(n, []);

        assert.deepEqual(await storage.accounts.list(), [...names].sort());
        assert.deepEqual(await storage.accounts.list({ prefix: "al" }), ["al", "alfred", "alice"]);
        assert.deepEqual(await storage.accounts.list({ prefix: "a_" }), ["a_b"], "_ is not a wildcard");
        assert.deepEqual(await storage.accounts.list({ prefix: "a%" }), ["a%c"], "% is not a wildcard");
        assert.deepEqual(await storage.accounts.list({ prefix: "zzz" }), []);
        assert.deepEqual(await storage.accounts.list({ prefix: "" }), [...names].sort());
        assert.deepEqual(await storage.accounts.list({ limit: 2 }), ["a%c", "a_b"]);
        assert.deepEqual(await storage.accounts.list({ limit: 2, offset: 2 }), ["al", "alfred"]);
        assert.deepEqual(await storage.accounts.list({ offset: 6 }), ["bob", "carol"]);
        assert.deepEqual(await storage.accounts.list({ prefix: "al", limit: 1, offset: 1 }), ["alfred"]);
        assert.deepEqual(await storage.accounts.list({ limit: 0 }), []);
        assert.deepEqual(await storage.accounts.list({ offset: 100 }), []);
      });

      it("rejects a negative or fractional limit/offset", async () => {
        await assert.rejects(storage.accounts.list({ limit: -1 }), RangeError);
        await assert.rejects(storage.accounts.list({ offset: 1.5 }), RangeError);
      });

      it("counts accounts", async () => {
        assert.equal(await storage.accounts.count(), 0);
        await storage.accounts.create("alice", []);
        await storage.accounts.create("bob", []);
        assert.equal(await storage.accounts.count(), 2);
        await storage.accounts.delete("alice");
        assert.equal(await storage.accounts.count(), 1);
      });

      it("createMany creates new names, skips existing and repeated ones", async () => {
        await storage.accounts.create("alice", credentials(1));
        const created = await storage.accounts.createMany([
          { username: "alice", credentials: credentials(5) },
          { username: "bob", credentials: credentials(2) },
          { username: "carol", credentials: credentials(3) },
          { username: "bob", credentials: credentials(4) },
        ]);
        assert.equal(created, 2);
        assert.deepEqual(await storage.accounts.list(), ["alice", "bob", "carol"]);
        assert.deepEqual((await storage.accounts.get("alice"))?.credentials, credentials(1));
        assert.deepEqual((await storage.accounts.get("bob"))?.credentials, credentials(2));
        assert.deepEqual((await storage.accounts.get("carol"))?.credentials, credentials(3));
        assert.equal(await storage.accounts.createMany([]), 0);
      });

      it("createMany is all-or-nothing when one item is invalid", async () => {
        const bad = { ...credential("SHA-256", 1), hash: "MD5" as ScramHash };
        await assert.rejects(
          storage.accounts.createMany([
            { username: "bob", credentials: credentials(2) },
            { username: "carol", credentials: [bad] },
          ]),
        );
        assert.equal(await storage.accounts.count(), 0);
      });
    });

    describe("roster", () => {
      beforeEach(async () => {
        await storage.accounts.create("alice", []);
        await storage.accounts.create("bob", []);
      });

      it("starts empty at version 0", async () => {
        assert.deepEqual(await storage.roster.get("alice"), { version: 0, items: [] });
        assert.equal(await storage.roster.getItem("alice", "carol@example.com"), undefined);
      });

      it("stores items with all their fields and bumps the version on every set", async () => {
        const carol = item("carol@example.com", {
          name: "Carol",
          subscription: "both",
          groups: ["Work", "Friends"],
        });
        const dave = item("dave@example.com", { subscription: "none", ask: true, approved: true });

        const v1 = await storage.roster.setItem("alice", carol);
        const v2 = await storage.roster.setItem("alice", dave);
        assert.ok(v2 > v1 && v1 > 0);

        assert.deepEqual(await storage.roster.get("alice"), { version: v2, items: [carol, dave] });
        assert.deepEqual(await storage.roster.getItem("alice", "carol@example.com"), carol);
        const storedDave = await storage.roster.getItem("alice", "dave@example.com");
        assert.deepEqual(storedDave, dave);
        assert.equal("name" in storedDave!, false, "an absent name stays absent");
      });

      it("replaces an existing item entirely, groups included", async () => {
        await storage.roster.setItem(
          "alice",
          item("carol@example.com", { name: "Carol", subscription: "to", ask: true, groups: ["A", "B"] }),
        );
        const replacement = item("carol@example.com", { subscription: "both", groups: ["C"] });
        const version = await storage.roster.setItem("alice", replacement);
        assert.deepEqual(await storage.roster.get("alice"), { version, items: [replacement] });
      });

      it("keeps group order and drops repeated group names", async () => {
        await storage.roster.setItem("alice", item("carol@example.com", { groups: ["Zed", "Alpha", "Zed"] }));
        assert.deepEqual((await storage.roster.getItem("alice", "carol@example.com"))?.groups, [
          "Zed",
          "Alpha",
        ]);
      });

      it("removeItem bumps the version only when something was removed", async () => {
        await storage.roster.setItem("alice", item("carol@example.com", { groups: ["G"] }));
        const v = await storage.roster.setItem("alice", item("dave@example.com"));
        const afterRemove = await storage.roster.removeItem("alice", "carol@example.com");
        assert.ok(afterRemove > v);
        assert.equal(await storage.roster.removeItem("alice", "carol@example.com"), afterRemove);
        assert.equal(await storage.roster.removeItem("alice", "nobody@example.com"), afterRemove);
        const roster = await storage.roster.get("alice");
        assert.equal(roster.version, afterRemove);
        assert.deepEqual(
          roster.items.map((i) => i.jid),
          ["dave@example.com"],
        );
        // Re-adding must not resurrect the old groups.
        await storage.roster.setItem("alice", item("carol@example.com"));
        assert.deepEqual((await storage.roster.getItem("alice", "carol@example.com"))?.groups, []);
      });

      it("keeps rosters and versions per account", async () => {
        await storage.roster.setItem("alice", item("carol@example.com"));
        await storage.roster.setItem("alice", item("dave@example.com"));
        assert.deepEqual(await storage.roster.get("bob"), { version: 0, items: [] });
        assert.equal(await storage.roster.removeItem("bob", "carol@example.com"), 0);
        const v = await storage.roster.setItem("bob", item("carol@example.com", { subscription: "from" }));
        assert.equal((await storage.roster.getItem("alice", "carol@example.com"))?.subscription, "none");
        assert.equal((await storage.roster.get("bob")).version, v);
        assert.equal((await storage.roster.get("alice")).items.length, 2);
      });

      it("rejects roster writes for an unknown account and reads it as empty", async () => {
        await assert.rejects(storage.roster.setItem("nobody", item("carol@example.com")));
        await assert.rejects(
          storage.roster.addPending("nobody", { from: "carol@example.com", stanza: "<p/>" }),
        );
        assert.deepEqual(await storage.roster.get("nobody"), { version: 0, items: [] });
        assert.deepEqual(await storage.roster.getPending("nobody"), []);
        assert.equal(await storage.roster.removeItem("nobody", "carol@example.com"), 0);
        await storage.roster.removePending("nobody", "carol@example.com");
        await storage.accounts.create("nobody", []);
        assert.deepEqual(await storage.roster.get("nobody"), { version: 0, items: [] });
        assert.deepEqual(await storage.roster.getPending("nobody"), []);
      });

      it("stores pending subscriptions in arrival order, one per sender", async () => {
        await storage.roster.addPending("alice", { from: "zoe@example.com", stanza: "<presence id='1'/>" });
        await storage.roster.addPending("alice", { from: "carol@example.com", stanza: "<presence id='2'/>" });
        await storage.roster.addPending("alice", { from: "zoe@example.com", stanza: "<presence id='3'/>" });
        assert.deepEqual(await storage.roster.getPending("alice"), [
          { from: "zoe@example.com", stanza: "<presence id='3'/>" },
          { from: "carol@example.com", stanza: "<presence id='2'/>" },
        ]);
        assert.deepEqual(await storage.roster.getPending("bob"), []);

        await storage.roster.removePending("alice", "zoe@example.com");
        await storage.roster.removePending("alice", "unknown@example.com");
        assert.deepEqual(await storage.roster.getPending("alice"), [
          { from: "carol@example.com", stanza: "<presence id='2'/>" },
        ]);
        assert.equal((await storage.roster.get("alice")).version, 0, "pending requests are not roster items");
      });

      it("orders concurrent changes to one roster from two handles: distinct, increasing versions", async () => {
        const other = await another();
        const writes = Array.from({ length: 10 }, (_, i) => [
          storage.roster.setItem("alice", item(`a${i}@example.com`)),
          other.roster.setItem("alice", item(`b${i}@example.com`)),
        ]).flat();
        const versions = await Promise.all(writes);
        assert.equal(new Set(versions).size, versions.length, `repeated versions: ${versions}`);
        const roster = await other.roster.get("alice");
        assert.equal(roster.items.length, 20);
        assert.equal(roster.version, Math.max(...versions), "the last change's version is the roster's");
        const removed = await storage.roster.removeItem("alice", "a0@example.com");
        assert.ok(removed > roster.version);
      });
    });

    describe("offline messages", () => {
      beforeEach(async () => {
        await storage.accounts.create("alice", []);
        await storage.accounts.create("bob", []);
      });

      it("appends messages in order with increasing ids and a storage time", async () => {
        const before = Date.now();
        assert.equal(await storage.offline.push("alice", "<message id='1'/>", 100), true);
        assert.equal(await storage.offline.push("alice", "<message id='2'/>", 100), true);
        assert.equal(await storage.offline.push("alice", "<message id='3'/>", 100), true);
        const after = Date.now();
        const messages = await storage.offline.list("alice");
        assert.deepEqual(
          messages.map((m) => m.stanza),
          ["<message id='1'/>", "<message id='2'/>", "<message id='3'/>"],
        );
        assert.ok(messages[0]!.id < messages[1]!.id && messages[1]!.id < messages[2]!.id);
        for (const m of messages) assert.ok(m.storedAt >= before && m.storedAt <= after);
        assert.equal(await storage.offline.count("alice"), 3);
        assert.equal(await storage.offline.count("bob"), 0);
        assert.deepEqual(await storage.offline.list("bob"), []);
      });

      it("enforces the quota per account", async () => {
        for (let i = 0; i < 3; i++)
          assert.equal(await storage.offline.push("alice", `<m n='${i}'/>`, 3), true);
        assert.equal(await storage.offline.push("alice", "<m n='over'/>", 3), false);
        assert.equal(await storage.offline.count("alice"), 3);
        assert.equal(await storage.offline.push("bob", "<m/>", 3), true, "bob has his own quota");
        assert.equal(await storage.offline.push("alice", "<m/>", 0), false);

        const [first] = await storage.offline.list("alice");
        await storage.offline.remove("alice", [first!.id]);
        assert.equal(await storage.offline.push("alice", "<m n='again'/>", 3), true);
        assert.equal(await storage.offline.push("alice", "<m n='over'/>", 3), false);
        assert.equal(
          (await storage.offline.list("alice")).some((m) => m.stanza === "<m n='over'/>"),
          false,
          "a refused message is not stored",
        );
      });

      it("enforces the quota under concurrent pushes", async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => storage.offline.push("alice", `<m n='${i}'/>`, 5)),
        );
        assert.equal(results.filter(Boolean).length, 5);
        assert.equal(await storage.offline.count("alice"), 5);
      });

      it("enforces the quota under concurrent pushes from two handles", async () => {
        const other = await another();
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => [
            storage.offline.push("alice", `<m n='${i}'/>`, 5),
            other.offline.push("alice", `<m n='other-${i}'/>`, 5),
          ]).flat(),
        );
        assert.equal(results.filter(Boolean).length, 5);
        assert.equal(await storage.offline.count("alice"), 5);
      });

      it("removes the given ids, all messages, or nothing for an empty list", async () => {
        for (let i = 0; i < 4; i++) await storage.offline.push("alice", `<m n='${i}'/>`, 10);
        await storage.offline.push("bob", "<m n='bob'/>", 10);
        const [m0, m1, m2, m3] = await storage.offline.list("alice");
        const [bobMessage] = await storage.offline.list("bob");

        await storage.offline.remove("alice", [m1!.id, m3!.id, 999_999]);
        assert.deepEqual(await storage.offline.list("alice"), [m0, m2]);

        await storage.offline.remove("alice", [bobMessage!.id]);
        assert.equal(await storage.offline.count("bob"), 1, "ids of another account are not touched");

        await storage.offline.remove("alice", []);
        assert.equal(await storage.offline.count("alice"), 2);

        await storage.offline.remove("alice");
        assert.equal(await storage.offline.count("alice"), 0);
        assert.equal(await storage.offline.count("bob"), 1);
      });

      it("never reuses an id after removal", async () => {
        await storage.offline.push("alice", "<m n='1'/>", 10);
        await storage.offline.push("alice", "<m n='2'/>", 10);
        const highest = Math.max(...(await storage.offline.list("alice")).map((m) => m.id));
        await storage.offline.remove("alice");
        await storage.offline.push("alice", "<m n='3'/>", 10);
        const [next] = await storage.offline.list("alice");
        assert.ok(next!.id > highest);
      });

      it("rejects a push for an unknown account", async () => {
        await assert.rejects(storage.offline.push("nobody", "<m/>", 10));
        assert.equal(await storage.offline.count("nobody"), 0);
        await storage.offline.remove("nobody");
        await storage.offline.remove("nobody", [1]);
      });
    });

    describe("key-value stores", () => {
      beforeEach(async () => {
        await storage.accounts.create("alice", []);
        await storage.accounts.create("bob", []);
      });

      it("sets, overwrites, reads and deletes values", async () => {
        const vcard = storage.keyValue("vcard");
        assert.equal(await vcard.get("alice", "card"), undefined);
        await vcard.set("alice", "card", "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>");
        assert.equal(await vcard.get("alice", "card"), "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>");
        await vcard.set("alice", "card", "<vCard xmlns='vcard-temp'><FN>Älice ☎</FN></vCard>");
        assert.equal(await vcard.get("alice", "card"), "<vCard xmlns='vcard-temp'><FN>Älice ☎</FN></vCard>");
        await vcard.delete("alice", "card");
        assert.equal(await vcard.get("alice", "card"), undefined);
        await vcard.delete("alice", "card");
      });

      it("lists keys sorted", async () => {
        const priv = storage.keyValue("private");
        await priv.set("alice", "storage:bookmarks", "<b/>");
        await priv.set("alice", "jabber:x:roster", "<r/>");
        await priv.set("alice", "", "<empty-key/>");
        assert.deepEqual(await priv.keys("alice"), ["", "jabber:x:roster", "storage:bookmarks"]);
        assert.deepEqual(await priv.keys("bob"), []);
      });

      it("isolates stores and accounts", async () => {
        await storage.keyValue("vcard").set("alice", "k", "vcard-alice");
        await storage.keyValue("private").set("alice", "k", "private-alice");
        await storage.keyValue("vcard").set("bob", "k", "vcard-bob");

        assert.equal(await storage.keyValue("vcard").get("alice", "k"), "vcard-alice");
        assert.equal(await storage.keyValue("private").get("alice", "k"), "private-alice");
        assert.equal(await storage.keyValue("vcard").get("bob", "k"), "vcard-bob");
        assert.equal(await storage.keyValue("private").get("bob", "k"), undefined);
        assert.deepEqual(await storage.keyValue("other").keys("alice"), []);

        await storage.keyValue("vcard").delete("alice", "k");
        assert.equal(await storage.keyValue("private").get("alice", "k"), "private-alice");
        assert.equal(await storage.keyValue("vcard").get("bob", "k"), "vcard-bob");
      });

      it("sees the same data through every handle of one store", async () => {
        await storage.keyValue("lastactivity").set("alice", "seen", "123");
        assert.equal(await storage.keyValue("lastactivity").get("alice", "seen"), "123");
      });

      it("rejects a write for an unknown account", async () => {
        await assert.rejects(storage.keyValue("vcard").set("nobody", "k", "v"));
        assert.equal(await storage.keyValue("vcard").get("nobody", "k"), undefined);
        assert.deepEqual(await storage.keyValue("vcard").keys("nobody"), []);
        await storage.keyValue("vcard").delete("nobody", "k");
      });
    });

    describe("blocklist", () => {
      beforeEach(async () => {
        await storage.accounts.create("alice", []);
        await storage.accounts.create("bob", []);
      });

      it("adds JIDs once each and lists them sorted", async () => {
        assert.deepEqual(await storage.blocklist.list("alice"), []);
        await storage.blocklist.add("alice", ["zed@example.com", "example.net"]);
        await storage.blocklist.add("alice", [
          "zed@example.com",
          "amy@example.com/phone",
          "amy@example.com/phone",
        ]);
        assert.deepEqual(await storage.blocklist.list("alice"), [
          "amy@example.com/phone",
          "example.net",
          "zed@example.com",
        ]);
        await storage.blocklist.add("alice", []);
        assert.equal((await storage.blocklist.list("alice")).length, 3);
        assert.deepEqual(await storage.blocklist.list("bob"), []);
      });

      it("removes given JIDs, nothing for an empty list, everything when omitted", async () => {
        await storage.blocklist.add("alice", ["a@example.com", "b@example.com", "c@example.com"]);
        await storage.blocklist.add("bob", ["a@example.com"]);
        await storage.blocklist.remove("alice", ["b@example.com", "not-blocked@example.com"]);
        assert.deepEqual(await storage.blocklist.list("alice"), ["a@example.com", "c@example.com"]);
        await storage.blocklist.remove("alice", []);
        assert.equal((await storage.blocklist.list("alice")).length, 2);
        await storage.blocklist.remove("alice");
        assert.deepEqual(await storage.blocklist.list("alice"), []);
        assert.deepEqual(await storage.blocklist.list("bob"), ["a@example.com"]);
      });

      it("rejects adding for an unknown account", async () => {
        await assert.rejects(storage.blocklist.add("nobody", ["a@example.com"]));
        assert.deepEqual(await storage.blocklist.list("nobody"), []);
        await storage.blocklist.remove("nobody");
      });
    });

    describe("document stores", () => {
      it("puts, gets, lists by prefix in key order, counts and deletes; stores are separate", async () => {
        const d = storage.documents<{ n: number; tags?: string[] }>("licensing");
        const other = storage.documents("other");
        assert.equal(await d.get("app:b"), undefined);
        await d.put("app:b", { n: 2, tags: ["x"] });
        await d.put("app:a", { n: 1 });
        await d.put("key:a", { n: 3 });
        await other.put("app:a", { n: 9 });
        assert.deepEqual(await d.get("app:b"), { n: 2, tags: ["x"] });
        assert.deepEqual(
          (await d.list({ prefix: "app:" })).map((e) => [e.key, e.value.n]),
          [
            ["app:a", 1],
            ["app:b", 2],
          ],
        );
        assert.equal((await d.list()).length, 3);
        assert.equal((await d.list({ limit: 1 })).length, 1);
        assert.equal(await d.count({ prefix: "app:" }), 2);
        assert.equal(await d.count(), 3);
        assert.equal(await d.delete("app:a"), true);
        assert.equal(await d.delete("app:a"), false);
        assert.deepEqual(await other.get("app:a"), { n: 9 });
      });

      it("treats prefix characters literally (no wildcards)", async () => {
        const d = storage.documents("wild");
        await d.put("a%b", 1);
        await d.put("a_b", 2);
        await d.put("axb", 3);
        assert.deepEqual(
          (await d.list({ prefix: "a%" })).map((e) => e.key),
          ["a%b"],
        );
        assert.deepEqual(
          (await d.list({ prefix: "a_" })).map((e) => e.key),
          ["a_b"],
        );
      });

      it("updates atomically: the function sees the current value; undefined deletes", async () => {
        const d = storage.documents<number>("counters");
        assert.equal(await d.update("c", (v) => (v ?? 0) + 1), 1);
        await Promise.all(Array.from({ length: 20 }, () => d.update("c", (v) => (v ?? 0) + 1)));
        assert.equal(await d.get("c"), 21);
        assert.equal(await d.update("c", () => undefined), undefined);
        assert.equal(await d.get("c"), undefined);
      });

      const values: unknown[] = [
        { name: "Ä ☎ 𝄞", nested: { list: [1, 2.5, -3, true, false, null], empty: {} } },
        ["a", { b: 1 }],
        'a string with a \u0000 and \\ and "',
        42,
        0.1,
        true,
        false,
        null,
      ];

      it("puts, reads back and deletes JSON values of every kind", async () => {
        const docs = storage.documents("registry");
        assert.equal(await docs.get("missing"), undefined);
        for (const [i, value] of values.entries()) await docs.put(`k${i}`, value);
        for (const [i, value] of values.entries()) assert.deepEqual(await docs.get(`k${i}`), value);
        await docs.put("k0", { replaced: true });
        assert.deepEqual(await docs.get("k0"), { replaced: true });
        assert.equal(await docs.delete("k0"), true);
        assert.equal(await docs.delete("k0"), false);
        assert.equal(await docs.get("k0"), undefined);
      });

      it("update leaves the document as it was when fn throws", async () => {
        const docs = storage.documents<number>("counters");
        await docs.put("c", 7);
        await assert.rejects(
          docs.update("c", () => {
            throw new Error("refused");
          }),
          /refused/,
        );
        assert.equal(await docs.get("c"), 7);
        await assert.rejects(
          docs.update("new", () => {
            throw new Error("refused");
          }),
        );
        assert.equal(await docs.get("new"), undefined);
      });

      it("update is atomic under concurrent updates from two handles, for new and existing documents", async () => {
        const other = await another();
        const increment = (s: Storage, key: string) =>
          s.documents<number>("counters").update(key, (cur) => (cur ?? 0) + 1);
        for (const key of ["fresh", "existing"]) {
          if (key === "existing") await storage.documents<number>("counters").put(key, 0);
          await Promise.all(
            Array.from({ length: 15 }, () => [increment(storage, key), increment(other, key)]).flat(),
          );
          assert.equal(await storage.documents<number>("counters").get(key), 30, key);
        }
      });
    });

    describe("append-only archives", () => {
      it("appends with increasing ids and filters by kind, prefix, time and id", async () => {
        const a = storage.archive<{ who: string }>("audit");
        const ids = [
          await a.append({ at: 1000, kind: "licence.grant", data: { who: "a" } }),
          await a.append({ at: 2000, kind: "licence.revoke", data: { who: "b" } }),
          await a.append({ at: 3000, kind: "policy.set", data: { who: "c" } }),
        ];
        assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!);
        assert.deepEqual(
          (await a.query()).map((e) => e.data.who),
          ["a", "b", "c"],
        );
        assert.deepEqual(
          (await a.query({ kind: "policy.set" })).map((e) => e.id),
          [ids[2]],
        );
        assert.deepEqual((await a.query({ kindPrefix: "licence." })).length, 2);
        assert.deepEqual(
          (await a.query({ since: 2000, until: 3000 })).map((e) => e.at),
          [2000],
        );
        assert.deepEqual((await a.query({ afterId: ids[0]! })).length, 2);
        assert.deepEqual(
          (await a.query({ newestFirst: true, limit: 1 })).map((e) => e.id),
          [ids[2]],
        );
        assert.equal((await storage.archive("other").query()).length, 0, "archives are separate");
      });

      it("prunes entries older than a time", async () => {
        const a = storage.archive("audit");
        await a.append({ at: 1000, kind: "k", data: 1 });
        await a.append({ at: 5000, kind: "k", data: 2 });
        assert.equal(await a.prune(5000), 1);
        assert.deepEqual(
          (await a.query()).map((e) => e.data),
          [2],
        );
      });

      async function fill(): Promise<number[]> {
        const log = storage.archive<{ n: number }>("audit");
        const ids: number[] = [];
        const kinds = ["licence.grant", "licence.revoke", "key.add", "licence_x", "licence.grant"];
        for (const [n, kind] of kinds.entries())
          ids.push(await log.append({ at: 1000 + n * 10, kind, data: { n } }));
        return ids;
      }

      it("filters by kind, literal kind prefix, time range and id, together", async () => {
        const ids = await fill();
        const log = storage.archive<{ n: number }>("audit");
        const ns = async (q: Parameters<typeof log.query>[0]) => (await log.query(q)).map((e) => e.data.n);
        assert.deepEqual(await ns({ kind: "licence.grant" }), [0, 4]);
        assert.deepEqual(await ns({ kindPrefix: "licence." }), [0, 1, 4]);
        assert.deepEqual(await ns({ kindPrefix: "licence_" }), [3], "_ is not a wildcard");
        assert.deepEqual(await ns({ kindPrefix: "" }), [0, 1, 2, 3, 4]);
        assert.deepEqual(await ns({ since: 1010, until: 1030 }), [1, 2], "since inclusive, until exclusive");
        assert.deepEqual(await ns({ afterId: ids[2] }), [3, 4]);
        assert.deepEqual(await ns({ kindPrefix: "licence", afterId: ids[0], until: 1040 }), [1, 3]);
        assert.deepEqual(await ns({ kind: "licence.grant", newestFirst: true, limit: 1 }), [4]);
        assert.deepEqual(await ns({ limit: 0 }), []);
        assert.deepEqual(await ns({ kind: "none" }), []);
      });

      it("gives distinct ids to concurrent appends from two handles, all readable in id order", async () => {
        const other = await another();
        const ids = await Promise.all(
          Array.from({ length: 10 }, (_, i) => [
            storage.archive("changes").append({ at: i, kind: "a", data: i }),
            other.archive("changes").append({ at: i, kind: "b", data: i }),
          ]).flat(),
        );
        assert.equal(new Set(ids).size, 20);
        const read = (await storage.archive("changes").query()).map((e) => e.id);
        assert.deepEqual(
          read,
          [...ids].sort((a, b) => a - b),
        );
      });
    });

    describe("message archives", () => {
      const message = (id: string, at: number, extra: Partial<ArchivedMessage> = {}): ArchivedMessage => ({
        id,
        owner: "alice",
        peer: "bob@example.com",
        peerResource: "",
        at,
        direction: "in",
        stanza: `<message id='${id}'><body>message ${id}</body></message>`,
        text: `message ${id}`,
        ...extra,
      });
      const ids = (r: { messages: ArchivedMessage[] }) => r.messages.map((m) => m.id);

      beforeEach(async () => {
        await storage.accounts.create("alice", []);
        await storage.accounts.create("bob", []);
      });

      it("appends once per id and reads back in archive order, with paging both ways", async () => {
        const mam = storage.messages("mam", { ownedByAccounts: true });
        for (let i = 1; i <= 5; i++) assert.equal(await mam.append(message(`m${i}`, i * 1000)), true);
        assert.equal(await mam.append(message("m3", 99_000)), false, "an id is archived once");
        assert.deepEqual(await mam.get("alice", "m2"), message("m2", 2000));
        assert.deepEqual(ids(await mam.query({ owner: "alice" })), ["m1", "m2", "m3", "m4", "m5"]);
        const first = await mam.query({ owner: "alice", limit: 2 });
        assert.deepEqual([ids(first), first.complete], [["m1", "m2"], false]);
        const next = await mam.query({ owner: "alice", limit: 2, afterId: "m2" });
        assert.deepEqual(ids(next), ["m3", "m4"]);
        const last = await mam.query({ owner: "alice", limit: 2, afterId: "m4" });
        assert.deepEqual([ids(last), last.complete], [["m5"], true]);
        const exact = await mam.query({ owner: "alice", limit: 5 });
        assert.equal(exact.complete, true, "exactly limit messages and nothing more: complete");
        const back = await mam.query({ owner: "alice", limit: 2, newestFirst: true });
        assert.deepEqual([ids(back), back.complete], [["m5", "m4"], false]);
        const before = await mam.query({ owner: "alice", limit: 2, newestFirst: true, beforeId: "m2" });
        assert.deepEqual([ids(before), before.complete], [["m1"], true]);
        assert.deepEqual(ids(await mam.query({ owner: "alice", afterId: "m1", beforeId: "m4" })), [
          "m2",
          "m3",
        ]);
        await assert.rejects(mam.query({ owner: "alice", afterId: "nope" }), ArchiveIdNotFound);
        await assert.rejects(
          mam.query({ owner: "bob", afterId: "m1" }),
          ArchiveIdNotFound,
          "ids are per owner",
        );
      });

      it("filters by peer, resource, time range, ids and text; counts ignore paging", async () => {
        const mam = storage.messages("mam", { ownedByAccounts: true });
        await mam.append(message("a", 1000));
        await mam.append(message("b", 2000, { peer: "carol@example.com", peerResource: "phone" }));
        await mam.append(
          message("c", 3000, { peer: "carol@example.com", peerResource: "desk", direction: "out" }),
        );
        await mam.append(message("d", 4000, { text: "Grüße aus Köln", stanza: "<message/>" }));
        await mam.append(message("x", 5000, { owner: "bob" }));
        assert.deepEqual(ids(await mam.query({ owner: "alice", peer: "carol@example.com" })), ["b", "c"]);
        assert.deepEqual(
          ids(await mam.query({ owner: "alice", peer: "carol@example.com", peerResource: "desk" })),
          ["c"],
        );
        assert.deepEqual(ids(await mam.query({ owner: "alice", start: 2000, end: 3000 })), ["b", "c"]);
        assert.deepEqual(ids(await mam.query({ owner: "alice", ids: ["d", "a", "x"] })), ["a", "d"]);
        assert.deepEqual(ids(await mam.query({ owner: "alice", ids: [] })), []);
        assert.deepEqual(ids(await mam.query({ owner: "alice", text: "KÖLN" })), ["d"], "case-insensitive");
        assert.deepEqual(ids(await mam.query({ owner: "alice", text: "50%" })), [], "no wildcards");
        assert.equal(await mam.count({ owner: "alice", limit: 1, afterId: "a" }), 4);
        assert.equal(await mam.count({ owner: "alice", peer: "carol@example.com" }), 2);
        assert.deepEqual(ids(await mam.query({ owner: "bob" })), ["x"]);
      });

      it("removes by ids or owner and prunes by age; stores are separate", async () => {
        const mam = storage.messages("mam", { ownedByAccounts: true });
        const other = storage.messages("other", { ownedByAccounts: true });
        for (let i = 1; i <= 4; i++) await mam.append(message(`m${i}`, i * 1000));
        await other.append(message("m1", 1000));
        assert.equal(await mam.remove("alice", ["m1", "nope"]), 1);
        assert.equal(await mam.remove("alice", []), 0);
        assert.equal(await mam.prune(3000, "alice"), 1);
        assert.deepEqual(ids(await mam.query({ owner: "alice" })), ["m3", "m4"]);
        assert.equal(await mam.prune(10_000), 2);
        assert.deepEqual(ids(await other.query({ owner: "alice" })), ["m1"]);
        assert.equal(await other.remove("alice"), 1);
      });

      it("goes with its account, refuses unknown accounts; room archives have free owners", async () => {
        const mam = storage.messages("mam", { ownedByAccounts: true });
        await mam.append(message("m1", 1000));
        await assert.rejects(mam.append(message("m2", 2000, { owner: "nobody" })));
        assert.equal(await storage.accounts.delete("alice"), true);
        await storage.accounts.create("alice", []);
        assert.deepEqual(ids(await mam.query({ owner: "alice" })), [], "a re-created account starts empty");
        const rooms = storage.messages("muc", { ownedByAccounts: false });
        assert.equal(await rooms.append(message("r1", 1000, { owner: "room@conference.example.com" })), true);
        assert.deepEqual(ids(await rooms.query({ owner: "room@conference.example.com" })), ["r1"]);
      });

      it("keeps an owner's appends in call order, seen by reads made before they resolve", async () => {
        const mam = storage.messages("mam", { ownedByAccounts: true });
        // Not awaited, with times going backwards: the order is the order of the calls.
        const writes = Array.from({ length: 30 }, (_, i) =>
          mam.append(message(`n${i}`, 100_000 - i, { owner: i % 3 === 0 ? "bob" : "alice" })),
        );
        const expected = (owner: string) =>
          Array.from({ length: 30 }, (_, i) => i)
            .filter((i) => (i % 3 === 0) === (owner === "bob"))
            .map((i) => `n${i}`);
        assert.deepEqual(ids(await mam.query({ owner: "alice" })), expected("alice"));
        assert.equal(await mam.count({ owner: "bob" }), 10);
        assert.deepEqual(ids(await mam.query({ owner: "bob", limit: 3, newestFirst: true })), [
          "n27",
          "n24",
          "n21",
        ]);
        assert.deepEqual(await Promise.all(writes), Array(30).fill(true));
        const late = mam.append(message("last", 0));
        assert.equal((await mam.get("alice", "last"))?.id, "last", "get sees an append made before it");
        assert.equal(await late, true);
        const failing = mam.append(message("gone", 1, { owner: "nobody" }));
        const after = mam.append(message("after-failure", 2));
        await assert.rejects(failing);
        assert.equal(await after, true, "a failed append does not stop the owner's next ones");
      });

      it("keeps appends from two handles, each id once, in one archive order for paging", async () => {
        const other = await another();
        const mine = storage.messages("mam", { ownedByAccounts: true });
        const theirs = other.messages("mam", { ownedByAccounts: true });
        const appended = await Promise.all(
          Array.from({ length: 10 }, (_, i) => [
            mine.append(message(`a${i}`, i)),
            theirs.append(message(`b${i}`, i)),
            theirs.append(message(`a${i}`, i)),
          ]).flat(),
        );
        assert.equal(appended.filter(Boolean).length, 20, "an id appended twice at once is kept once");
        const all = ids(await theirs.query({ owner: "alice" }));
        assert.equal(new Set(all).size, 20);
        const paged: string[] = [];
        for (let page = await mine.query({ owner: "alice", limit: 3 }); ; ) {
          paged.push(...ids(page));
          if (page.complete) break;
          page = await mine.query({ owner: "alice", limit: 3, afterId: paged.at(-1)! });
        }
        assert.deepEqual(paged, all, "paging forwards sees the same order");
      });
    });

    describe("close", () => {
      it("can be called twice and stops further use", async () => {
        await storage.accounts.create("alice", []);
        await storage.close();
        await storage.close();
        await assert.rejects(storage.accounts.exists("alice"));
      });
    });
  });
}
