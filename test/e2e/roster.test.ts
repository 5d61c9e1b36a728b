/**
 * Roster management (RFC 6121 §2): get, set, remove, pushes to every interested
 * resource of the account, error cases, and roster versioning (§2.6).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { rosterGet, rosterJids, rosterRemove, rosterSet } from "../helpers/roster.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixSkip } from "../helpers/slix-client.js";
import { type Element, is, NS, rosterItem, stanzaError, xml } from "../helpers/stanza.js";

const PW = { alice: "alice-roster-pw", bob: "bob-roster-pw", carol: "carol-roster-pw" };
const CAROL = "carol@localhost";

/** RFC 6121 §2.1.6: a push comes from the account's bare JID or carries no 'from'. */
function assertPushOrigin(push: Element, account: string): void {
  const from = push.attrs.from;
  assert.ok(
    from === undefined || from === account,
    `roster push from '${from}', expected none or ${account}`,
  );
}

describe("roster", () => {
  let server: TestServer;
  let a1: JsPeer;
  let a2: JsPeer;
  /** Versions seen, oldest first. */
  const versions: string[] = [];

  before(async () => {
    server = await startServer({ name: "roster", users: PW });
    a1 = await connectJs(server, { user: "alice", password: PW.alice, resource: "a1" });
    a2 = await connectJs(server, { user: "alice", password: PW.alice, resource: "a2" });
  });
  after(async () => {
    await a1?.close();
    await a2?.close();
    await server.stop();
  });

  test("the server advertises roster versioning (RFC 6121 §2.6.1)", () => {
    const features = a1.features.at(-1);
    assert.ok(features, "no stream features seen");
    assert.ok(
      features.getChild("ver", NS.rosterver),
      `post-auth features lack <ver xmlns='${NS.rosterver}'/>: ${features}`,
    );
  });

  test("an empty roster: a result with an empty <query/> and a version", async () => {
    const r1 = await rosterGet(a1, "");
    assert.equal(r1.attrs.type, "result", r1.toString());
    const q = r1.getChild("query", NS.roster);
    assert.ok(q, `no <query/> in ${r1}`);
    assert.deepEqual(rosterJids(r1), []);
    assert.ok(q.attrs.ver !== undefined, `no 'ver' on the roster result: ${r1}`);
    versions.push(q.attrs.ver!);
    // The second resource becomes interested too (RFC 6121 §2.1.6: pushes go to interested resources).
    const r2 = await rosterGet(a2);
    assert.equal(r2.attrs.type, "result", r2.toString());
  });

  test("roster set: empty result to the sender, a push to every interested resource", async () => {
    const reply = await rosterSet(a1, CAROL, { name: "Carol", groups: ["Friends"] });
    assert.equal(reply.attrs.type, "result", reply.toString());
    assert.equal(reply.getChildElements().length, 0, `the result should be empty: ${reply}`);
    const pushes = await Promise.all(
      [a1, a2].map((p) => p.next(is.rosterPush(CAROL), "the roster push adding carol")),
    );
    for (const push of pushes) {
      assertPushOrigin(push, "alice@localhost");
      const item = rosterItem(push, CAROL)!;
      assert.equal(item.attrs.name, "Carol");
      assert.equal(item.attrs.subscription ?? "none", "none");
      assert.equal(item.attrs.ask, undefined);
      assert.deepEqual(
        item.getChildren("group").map((g) => g.text()),
        ["Friends"],
      );
      assert.ok(
        push.getChild("query", NS.roster)!.attrs.ver !== undefined,
        `a versioned push carries 'ver': ${push}`,
      );
    }
    assert.equal(pushes[0]!.getChild("query")!.attrs.ver, pushes[1]!.getChild("query")!.attrs.ver);
  });

  test("roster get lists the item; with the current version the answer is an empty result", async () => {
    const full = await rosterGet(a1, "");
    assert.deepEqual(rosterJids(full), [CAROL]);
    const item = rosterItem(full, CAROL)!;
    assert.equal(item.attrs.name, "Carol");
    const ver = full.getChild("query")!.attrs.ver;
    assert.ok(
      ver !== undefined && ver !== versions[0],
      `the version must change after a modification (was ${versions[0]}, now ${ver})`,
    );
    versions.push(ver);
    const again = await rosterGet(a1, ver);
    assert.equal(again.attrs.type, "result", again.toString());
    assert.equal(
      again.getChild("query"),
      undefined,
      `unchanged roster: expected an empty result, got ${again}`,
    );
  });

  test("roster get with an older version brings the change (full roster, or empty result + pushes)", async () => {
    const reply = await rosterGet(a1, versions[0]);
    assert.equal(reply.attrs.type, "result", reply.toString());
    if (reply.getChild("query")) {
      assert.deepEqual(rosterJids(reply), [CAROL]);
    } else {
      const push = await a1.next(is.rosterPush(CAROL), "an interim roster push for carol (RFC 6121 §2.6.3)");
      assert.equal(rosterItem(push, CAROL)!.attrs.name, "Carol");
    }
  });

  test("updating an item (from the other resource) pushes the new state to both", async () => {
    const reply = await rosterSet(a2, CAROL, { name: "Caroline" });
    assert.equal(reply.attrs.type, "result", reply.toString());
    for (const p of [a1, a2]) {
      const push = await p.next(
        (el) => is.rosterPush(CAROL)(el) && rosterItem(el, CAROL)!.attrs.name === "Caroline",
        "the roster push renaming carol",
      );
      assert.deepEqual(rosterItem(push, CAROL)!.getChildren("group"), [], "groups are replaced by the set");
    }
  });

  test("a roster set with two items → bad-request (RFC 6121 §2.3.3)", async () => {
    const reply = await a1.iq(
      xml(
        "iq",
        { type: "set" },
        xml(
          "query",
          { xmlns: NS.roster },
          xml("item", { jid: "x@localhost" }),
          xml("item", { jid: "y@localhost" }),
        ),
      ),
    );
    assert.equal(stanzaError(reply)?.condition, "bad-request", reply.toString());
    const roster = await rosterGet(a1);
    assert.deepEqual(rosterJids(roster), [CAROL], "nothing added");
  });

  test("the roster of another account cannot be read", async () => {
    const reply = await a1.iq(
      xml("iq", { type: "get", to: "bob@localhost" }, xml("query", { xmlns: NS.roster })),
    );
    const err = stanzaError(reply);
    assert.ok(err, `expected an error, got ${reply}`);
    assert.ok(
      ["forbidden", "service-unavailable", "not-allowed", "not-authorized"].includes(err.condition ?? ""),
      `condition ${err.condition}`,
    );
    assert.equal(reply.getChild("query", NS.roster)?.getChildren("item").length ?? 0, 0, "no items leaked");
  });

  test("remove: subscription='remove' pushed to both resources, the item is gone", async () => {
    const reply = await rosterRemove(a1, CAROL);
    assert.equal(reply.attrs.type, "result", reply.toString());
    for (const p of [a1, a2]) {
      const push = await p.next(
        (el) => is.rosterPush(CAROL)(el) && rosterItem(el, CAROL)!.attrs.subscription === "remove",
        "the roster push removing carol",
      );
      assertPushOrigin(push, "alice@localhost");
    }
    assert.deepEqual(rosterJids(await rosterGet(a1)), []);
  });

  test("removing an item that is not in the roster → item-not-found (RFC 6121 §2.5.3)", async () => {
    const reply = await rosterRemove(a1, "nobody-here@localhost");
    assert.equal(stanzaError(reply)?.condition, "item-not-found", reply.toString());
  });

  test("slixmpp manages its roster through the same server", { skip: slixSkip }, async () => {
    const bob = await connectSlix(server, { user: "bob", password: PW.bob, resource: "desk" });
    try {
      const initial = await bob.request("roster_get");
      assert.equal(initial.attrs.type, "result", initial.toString());
      assert.deepEqual(rosterJids(initial), []);
      const set = await bob.request("roster_set", {
        jid: "alice@localhost",
        name: "Alice",
        groups: ["Work"],
      });
      assert.equal(set.attrs.type, "result", set.toString());
      const push = await bob.next(is.rosterPush("alice@localhost"), "the roster push for alice");
      assert.equal(rosterItem(push, "alice@localhost")!.attrs.name, "Alice");
      // Without 'ver' (slixmpp would send its cached version and rightly get an empty result).
      const listed = await rosterGet(bob);
      const item = rosterItem(listed, "alice@localhost");
      assert.equal(item?.attrs.name, "Alice", listed.toString());
      assert.deepEqual(
        item!.getChildren("group").map((g) => g.text()),
        ["Work"],
      );
      const removed = await bob.request("roster_remove", { jid: "alice@localhost" });
      assert.equal(removed.attrs.type, "result", removed.toString());
      assert.deepEqual(rosterJids(await rosterGet(bob)), []);
    } finally {
      await bob.close();
    }
  });
});
