/**
 * Message archive management (XEP-0313, XEP-0441 preferences) on the in-process harness:
 * what is archived and with which stanza-id, queries by every filter, RSM paging both ways
 * with complete flags, flipped pages, metadata, access, preferences, retention, deletion.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import carbons from "../../src/modules/carbons/index.js";
import type { MamApi } from "../../src/modules/mam/api.js";
import mam from "../../src/modules/mam/index.js";
import message from "../../src/modules/message/index.js";
import offline from "../../src/modules/offline/index.js";
import stanzaId from "../../src/modules/stanza-id/index.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { errorCondition, type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const SID = "urn:xmpp:sid:0";
const DAY = 86_400_000;
let h: Harness;
let open: FakeSession[] = [];

afterEach(async () => {
  for (const s of open) await s.disconnect();
  open = [];
});

let userSeq = 0;
/** Fresh accounts per test, so archives start empty. */
async function users(...names: string[]): Promise<string[]> {
  const out = names.map((n) => `${n}${++userSeq}`);
  for (const u of out) await h.createUser(u);
  return out;
}

async function online(user: string, resource = "r"): Promise<FakeSession> {
  const s = await h.connect(user, resource);
  open.push(s);
  s.presence = x("presence");
  return s;
}

const jid = (u: string) => `${u}@example.test`;
const chat = (to: string, body: string, ...extra: XmlElement[]) =>
  x("message", { to, type: "chat", id: `m-${body}` }, x("body", null, body), ...extra);

interface Field {
  var: string;
  values: string[];
}
function query(
  opts: { fields?: Field[]; set?: XmlElement[]; queryid?: string; flip?: boolean } = {},
): XmlElement {
  const q = x("query", { xmlns: MAM, ...(opts.queryid ? { queryid: opts.queryid } : {}) });
  if (opts.fields)
    q.append(
      x(
        "x",
        { xmlns: "jabber:x:data", type: "submit" },
        x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", null, MAM)),
        ...opts.fields.map((f) => x("field", { var: f.var }, ...f.values.map((v) => x("value", null, v)))),
      ),
    );
  if (opts.set) q.append(x("set", { xmlns: RSM }, ...opts.set));
  if (opts.flip) q.append(x("flip-page"));
  return x("iq", { type: "set" }, q);
}
const rsm = (max?: number, cursor?: { after?: string; before?: string }) => [
  ...(max !== undefined ? [x("max", null, String(max))] : []),
  ...(cursor?.after !== undefined ? [x("after", null, cursor.after)] : []),
  ...(cursor?.before !== undefined ? [x("before", null, cursor.before)] : []),
];

interface Page {
  iq: XmlElement;
  results: {
    id: string;
    body: string | undefined;
    stamp: string | undefined;
    message: XmlElement;
    queryid?: string;
  }[];
  complete: boolean;
  first?: string;
  firstIndex?: string;
  last?: string;
  count?: number;
}

/** Runs a query and collects the result messages sent before the IQ result. */
async function run(s: FakeSession, iq: XmlElement): Promise<Page> {
  const before = s.received.length;
  const reply = await s.iq(iq);
  const results = s.received
    .slice(before)
    .filter((m) => m.name === "message" && m.getChild("result", MAM))
    .map((m) => {
      const r = m.getChild("result", MAM)!;
      const fwd = r.getChild("forwarded", "urn:xmpp:forward:0")!;
      const inner = fwd.getChild("message")!;
      assert.equal(m.attrs.from, s.jid!.bareString, "results come from the archive's JID");
      assert.equal(inner.attrs.xmlns, "jabber:client");
      return {
        id: r.attrs.id!,
        body: inner.getChildText("body"),
        stamp: fwd.getChild("delay", "urn:xmpp:delay")?.attrs.stamp,
        message: inner,
        ...(r.attrs.queryid !== undefined ? { queryid: r.attrs.queryid } : {}),
      };
    });
  s.pending().length = 0;
  const fin = reply.getChild("fin", MAM);
  const set = fin?.getChild("set", RSM);
  const count = set?.getChildText("count");
  return {
    iq: reply,
    results,
    complete: fin?.attrs.complete === "true",
    ...(set?.getChild("first")
      ? { first: set.getChildText("first")!, firstIndex: set.getChild("first")!.attrs.index }
      : {}),
    ...(set?.getChild("last") ? { last: set.getChildText("last")! } : {}),
    ...(count !== undefined ? { count: Number(count) } : {}),
  } as Page;
}

/** Sends n messages alice → bob, one second apart. */
async function converse(from: FakeSession, to: string, n: number, prefix = "msg"): Promise<void> {
  for (let i = 1; i <= n; i++) {
    h.clock.advance(1000);
    await from.sendStanza(chat(to, `${prefix} ${i}`));
  }
}

/**
 * Makes the archive's store say it is full (its queue of appends), as a slow database does,
 * until `open()`; `asked` counts the callers told to wait.
 */
function fullStore() {
  const store = h.server.services.storage.messages("mam", { ownedByAccounts: true });
  let open!: () => void;
  const room = new Promise<void>((resolve) => {
    open = resolve;
  });
  const full = { asked: 0, open, restore: () => delete store.roomToAppend };
  store.roomToAppend = () => {
    full.asked++;
    return room;
  };
  return full;
}

const pgSkip = await postgresSkip();

for (const backend of ["sqlite", "postgres"] as const) {
  describe(`on ${backend}`, { skip: backend === "postgres" ? pgSkip : false }, () => {
    let db: TestDatabase | undefined;
    before(async () => {
      db = backend === "postgres" ? await createTestDatabase("mam") : undefined;
      h = await startHarness({
        modules: [message, stanzaId, offline, mam, carbons] as ModuleDefinition<unknown>[],
        config: {
          archive: { retentionDays: 30, maxPageSize: 100, maxAppendWaitSeconds: 0.5 },
          ...(db ? { storage: { url: db.url } } : {}),
        },
      });
    });
    after(async () => {
      await h.stop();
      await db?.drop();
    });

    test("the account JID advertises urn:xmpp:mam:2 and #extended", () => {
      const features = h.server.services.disco.getFeatures("account");
      for (const f of [MAM, `${MAM}#extended`]) assert.ok(features.includes(f), f);
    });

    describe("archiving", () => {
      test("both sides archive a message once; the recipient's copy carries the archive id", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        const b = await online(bob!);
        await a.sendStanza(chat(jid(bob!), "hello"));
        const got = await b.next();
        const ids = got.getChildren("stanza-id", SID);
        assert.equal(ids.length, 1, `one stanza-id, the recipient's: ${got}`);
        assert.equal(ids[0]!.attrs.by, jid(bob!));
        const bobs = await run(b, query());
        assert.deepEqual(
          bobs.results.map((r) => [r.id, r.body]),
          [[ids[0]!.attrs.id, "hello"]],
        );
        assert.equal(bobs.results[0]!.message.attrs.from, `${jid(alice!)}/r`);
        assert.equal(bobs.results[0]!.stamp, "2026-01-01T00:00:00Z");
        assert.deepEqual(
          [bobs.complete, bobs.count, bobs.first, bobs.last],
          [true, 1, ids[0]!.attrs.id, ids[0]!.attrs.id],
        );
        const alices = await run(a, query());
        assert.equal(alices.results.length, 1);
        assert.notEqual(alices.results[0]!.id, ids[0]!.attrs.id, "each archive has its own id");
        assert.equal(alices.results[0]!.message.attrs.to, jid(bob!));
      });

      test("a message whose archiving preferences cannot be read is delivered, not archived", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        const b = await online(bob!);
        // The preferences are read on the first message of each account (then cached).
        const prefs = h.server.services.storage.keyValue("mam-prefs");
        const read = prefs.get;
        prefs.get = () => Promise.reject(new Error("the database cannot be reached"));
        try {
          await a.sendStanza(chat(jid(bob!), "through"));
          const got = await b.next();
          assert.equal(got.getChildText("body"), "through", `delivered: ${got}`);
        } finally {
          prefs.get = read;
        }
        assert.deepEqual((await run(b, query())).results, [], "not archived");
      });

      test("a store that stays full holds a message for maxAppendWaitSeconds, then it goes on unarchived", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        const b = await online(bob!);
        await a.sendStanza(chat(jid(bob!), "before"));
        assert.equal((await b.next()).getChildText("body"), "before");
        const full = fullStore(); // never opened
        const started = Date.now();
        try {
          await a.sendStanza(chat(jid(bob!), "stuck"));
          const got = await b.next();
          assert.equal(got.getChildText("body"), "stuck", "delivered after the wait");
          assert.ok(Date.now() - started >= 450, `held about 0.5 s (${Date.now() - started} ms)`);
        } finally {
          full.restore();
        }
        assert.deepEqual(
          (await run(b, query())).results.map((r) => r.body),
          ["before"],
          "the message that waited in vain is not archived",
        );
      });

      test("while the archive's store is full, messages wait for room, then go on in the order they came", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const a = await online(alice!);
        const b = await online(bob!);
        const c = await online(carol!);
        // Preferences read once, so no sender waits for them below.
        await a.sendStanza(chat(jid(bob!), "hello"));
        await c.sendStanza(chat(jid(bob!), "hi"));
        assert.deepEqual(
          [(await b.next()).getChildText("body"), (await b.next()).getChildText("body")],
          ["hello", "hi"],
        );
        const full = fullStore();
        try {
          const sent = [
            a.sendStanza(chat(jid(bob!), "first")),
            c.sendStanza(chat(jid(bob!), "second")),
            a.sendStanza(chat(jid(bob!), "third")),
          ];
          const settled = sent.map(() => false);
          sent.forEach((p, i) => void p.then(() => (settled[i] = true)));
          await new Promise((r) => setTimeout(r, 50));
          assert.deepEqual(settled, [false, false, false], "the senders are held");
          assert.deepEqual(b.pending(), [], "nothing is delivered while the store is full");
          assert.equal(full.asked, 3, "each message asked for room once, as it left");
          full.open();
          await Promise.all(sent);
        } finally {
          full.restore();
        }
        const bodies = async (n: number) =>
          (await Promise.all(Array.from({ length: n }, () => b.next()))).map((m) => m.getChildText("body"));
        assert.deepEqual(await bodies(3), ["first", "second", "third"]);
        assert.deepEqual(
          (await run(b, query())).results.map((r) => r.body),
          ["hello", "hi", "first", "second", "third"],
          "the recipient's archive is in the order of delivery",
        );
        assert.deepEqual(
          (await run(a, query())).results.map((r) => r.body),
          ["hello", "first", "third"],
        );
      });

      test("a message to an account that does not exist bounces without an archive id of that account", async () => {
        const [alice] = await users("alice");
        const a = await online(alice!);
        await a.sendStanza(chat(jid("nobody"), "anyone?"));
        const bounce = await a.next();
        assert.equal(errorCondition(bounce), "service-unavailable");
        assert.equal(bounce.getChildText("body"), "anyone?", "the original payload comes back");
        assert.deepEqual(
          bounce.getChildren("stanza-id", SID).map((e) => e.attrs.by),
          [],
          `no stanza-id: ${bounce}`,
        );
      });

      test("only messages with a body (or a <store/> hint) of type chat or normal are archived", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        await online(bob!);
        const to = jid(bob!);
        await a.sendStanza(
          x(
            "message",
            { to, type: "chat" },
            x("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
          ),
        );
        await a.sendStanza(chat(to, "not stored", x("no-store", { xmlns: "urn:xmpp:hints" })));
        await a.sendStanza(chat(to, "not permanent", x("no-permanent-store", { xmlns: "urn:xmpp:hints" })));
        await a.sendStanza(x("message", { to, type: "headline" }, x("body", null, "headline")));
        await a.sendStanza(x("message", { to, type: "normal" }, x("body", null, "normal")));
        await a.sendStanza(
          x(
            "message",
            { to },
            x("store", { xmlns: "urn:xmpp:hints" }),
            x("received", { xmlns: "urn:xmpp:receipts", id: "1" }),
          ),
        );
        const page = await run(a, query());
        assert.deepEqual(
          page.results.map((r) => r.body ?? "(store hint)"),
          ["normal", "(store hint)"],
        );
      });

      test("a message to one's own account is archived once", async () => {
        const [alice] = await users("alice");
        const a = await online(alice!, "one");
        await online(alice!, "two");
        await a.sendStanza(chat(`${jid(alice!)}/two`, "note to self"));
        const page = await run(a, query({ fields: [{ var: "with", values: [jid(alice!)] }] }));
        assert.deepEqual(
          page.results.map((r) => r.body),
          ["note to self"],
        );
      });

      test("an offline message is stored with the id it has in the archive", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        await a.sendStanza(chat(jid(bob!), "while you were out"));
        const [stored] = await h.server.services.storage.offline.list(bob!);
        assert.ok(stored);
        const b = await online(bob!);
        const page = await run(b, query());
        assert.equal(page.results.length, 1);
        assert.ok(stored.stanza.includes(`id="${page.results[0]!.id}"`), `stored: ${stored.stanza}`);
        await h.server.services.storage.offline.remove(bob!);
      });

      test("carbons carry the archive ids of their account; the sender's id never reaches the recipient", async () => {
        const [alice, bob] = await users("alice", "bob");
        const phone = await online(alice!, "phone");
        const desk = await online(alice!, "desk");
        const b = await online(bob!);
        for (const s of [desk])
          await s.iq(x("iq", { type: "set" }, x("enable", { xmlns: "urn:xmpp:carbons:2" })));
        phone.priority = 5;
        await phone.sendStanza(chat(jid(bob!), "out"));
        const atBob = await b.next();
        assert.deepEqual(
          atBob.getChildren("stanza-id", SID).map((e) => e.attrs.by),
          [jid(bob!)],
        );
        const sent = await desk.nextMatching((m) => m.getChild("sent", "urn:xmpp:carbons:2") !== undefined);
        const inner = sent
          .getChild("sent", "urn:xmpp:carbons:2")!
          .getChild("forwarded", "urn:xmpp:forward:0")!
          .getChild("message")!;
        const mine = (await run(phone, query())).results[0]!.id;
        assert.deepEqual(
          inner.getChildren("stanza-id", SID).map((e) => [e.attrs.by, e.attrs.id]),
          [[jid(alice!), mine]],
        );
        await b.sendStanza(chat(jid(alice!), "in"));
        await phone.nextMatching((m) => m.getChildText("body") === "in");
        const received = await desk.nextMatching(
          (m) => m.getChild("received", "urn:xmpp:carbons:2") !== undefined,
        );
        const rinner = received
          .getChild("received", "urn:xmpp:carbons:2")!
          .getChild("forwarded", "urn:xmpp:forward:0")!
          .getChild("message")!;
        const last = (await run(phone, query({ set: rsm(1, { before: "" }) }))).results[0]!.id;
        assert.equal(rinner.getChild("stanza-id", SID)?.attrs.id, last);
      });
    });

    describe("queries", () => {
      test("RSM paging forwards and backwards over 45 messages, with complete on the last page", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        await online(bob!);
        await converse(a, jid(bob!), 45);
        const all = (await run(a, query({ set: rsm(100) }))).results.map((r) => r.body);
        assert.equal(all.length, 45);
        const forward: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        for (;;) {
          const p = await run(
            a,
            query({ set: rsm(10, cursor === undefined ? {} : { after: cursor }), queryid: "fw" }),
          );
          pages++;
          forward.push(...p.results.map((r) => r.body!));
          assert.ok(p.results.every((r) => r.queryid === "fw"));
          assert.equal(p.count, 45);
          if (cursor === undefined) assert.equal(p.firstIndex, "0");
          cursor = p.last;
          if (p.complete) break;
          assert.equal(p.results.length, 10);
        }
        assert.equal(pages, 5);
        assert.deepEqual(forward, all);
        const backward: string[] = [];
        let before = "";
        for (pages = 0; ; ) {
          const p = await run(a, query({ set: rsm(10, { before }) }));
          pages++;
          backward.unshift(...p.results.map((r) => r.body!));
          assert.ok(p.results.length > 0);
          before = p.first!;
          if (p.complete) break;
        }
        assert.equal(pages, 5);
        assert.deepEqual(backward, all, "pages backwards, each in chronological order");
        const flipped = await run(a, query({ set: rsm(5, { before: "" }), flip: true }));
        assert.deepEqual(
          flipped.results.map((r) => r.body),
          ["msg 45", "msg 44", "msg 43", "msg 42", "msg 41"],
        );
        assert.equal(flipped.first, flipped.results.at(-1)!.id, "RSM <first/> is still the page's oldest");
        const capped = await run(a, query({ set: rsm(1000) }));
        assert.equal(capped.results.length, 45, "under the page limit of 100");
        const countOnly = await run(a, query({ set: rsm(0) }));
        assert.deepEqual([countOnly.results.length, countOnly.count, countOnly.complete], [0, 45, false]);
        const defaultPage = await run(a, query());
        assert.equal(defaultPage.results.length, 45, "the default page size (50) holds them all");
        assert.equal(defaultPage.complete, true);
      });

      test("filters: with (bare and full), start/end, ids, after-id/before-id, full text", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const a = await online(alice!);
        await online(bob!);
        const c = await online(carol!, "phone");
        await converse(a, jid(bob!), 3, "to bob");
        await converse(a, jid(carol!), 2, "to carol");
        h.clock.advance(1000);
        await c.sendStanza(chat(jid(alice!), "Grüße from carol"));
        const bodies = (p: Page) => p.results.map((r) => r.body);
        assert.deepEqual(bodies(await run(a, query({ fields: [{ var: "with", values: [jid(carol!)] }] }))), [
          "to carol 1",
          "to carol 2",
          "Grüße from carol",
        ]);
        assert.deepEqual(
          bodies(await run(a, query({ fields: [{ var: "with", values: [`${jid(carol!)}/phone`] }] }))),
          ["Grüße from carol"],
        );
        const all = await run(a, query());
        const stamps = all.results.map((r) => r.stamp!);
        assert.deepEqual(
          bodies(
            await run(
              a,
              query({
                fields: [
                  { var: "start", values: [stamps[1]!] },
                  { var: "end", values: [stamps[3]!] },
                ],
              }),
            ),
          ),
          ["to bob 2", "to bob 3", "to carol 1"],
        );
        const ids = all.results.map((r) => r.id);
        assert.deepEqual(
          bodies(await run(a, query({ fields: [{ var: "ids", values: [ids[4]!, ids[0]!] }] }))),
          ["to bob 1", "to carol 2"],
        );
        const range = await run(
          a,
          query({
            fields: [
              { var: "after-id", values: [ids[0]!] },
              { var: "before-id", values: [ids[4]!] },
            ],
          }),
        );
        assert.deepEqual(bodies(range), ["to bob 2", "to bob 3", "to carol 1"]);
        assert.equal(range.count, undefined, "no count for an id range");
        const paged = await run(
          a,
          query({ fields: [{ var: "after-id", values: [ids[0]!] }], set: rsm(2, { after: ids[2]! }) }),
        );
        assert.deepEqual(bodies(paged), ["to carol 1", "to carol 2"], "RSM's cursor inside the range wins");
        const outside = await run(
          a,
          query({ fields: [{ var: "after-id", values: [ids[2]!] }], set: rsm(2, { after: ids[0]! }) }),
        );
        assert.deepEqual(
          bodies(outside),
          ["to carol 1", "to carol 2"],
          "the range wins over a cursor outside it",
        );
        assert.deepEqual(
          bodies(
            await run(a, query({ fields: [{ var: "{urn:xmpp:fulltext:0}fulltext", values: ["GRÜSSE"] }] })),
          ),
          [],
        );
        assert.deepEqual(
          bodies(
            await run(a, query({ fields: [{ var: "{urn:xmpp:fulltext:0}fulltext", values: ["grüße"] }] })),
          ),
          ["Grüße from carol"],
        );
      });

      test("bad queries get the errors of §4.1", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        await online(bob!);
        await converse(a, jid(bob!), 1);
        const cond = async (iq: XmlElement) => errorCondition(await a.iq(iq));
        assert.equal(await cond(query({ fields: [{ var: "ids", values: ["nope"] }] })), "item-not-found");
        assert.equal(
          await cond(query({ fields: [{ var: "after-id", values: ["nope"] }] })),
          "item-not-found",
        );
        assert.equal(await cond(query({ set: rsm(5, { after: "nope" }) })), "item-not-found");
        assert.equal(await cond(query({ set: rsm(5, { before: "nope" }) })), "item-not-found");
        assert.equal(
          await cond(query({ fields: [{ var: "mood", values: ["x"] }] })),
          "feature-not-implemented",
        );
        assert.equal(await cond(query({ fields: [{ var: "start", values: ["yesterday"] }] })), "bad-request");
        assert.equal(await cond(query({ fields: [{ var: "with", values: ["@bad"] }] })), "jid-malformed");
        assert.equal(await cond(query({ set: [x("max", null, "-1")] })), "bad-request");
        const other = await a.iq(x("iq", { type: "set", to: jid(bob!) }, x("query", { xmlns: MAM })));
        assert.equal(errorCondition(other), "forbidden", "another account's archive");
        const ok = await run(a, query({ fields: [{ var: "include-groupchat", values: ["false"] }] }));
        assert.equal(ok.iq.attrs.type, "result");
      });

      test("the query form lists every field; metadata gives the first and last message", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        await online(bob!);
        const form = await a.iq(x("iq", { type: "get" }, x("query", { xmlns: MAM })));
        const vars = form
          .getChild("query", MAM)
          ?.getChild("x", "jabber:x:data")
          ?.getChildren("field")
          .map((f) => f.attrs.var);
        for (const v of [
          "FORM_TYPE",
          "with",
          "start",
          "end",
          "before-id",
          "after-id",
          "ids",
          "{urn:xmpp:fulltext:0}fulltext",
        ])
          assert.ok(vars?.includes(v), v);
        const empty = await a.iq(x("iq", { type: "get" }, x("metadata", { xmlns: MAM })));
        assert.equal(empty.getChild("metadata", MAM)?.children.length, 0);
        await converse(a, jid(bob!), 3);
        const all = (await run(a, query())).results;
        const meta = (await a.iq(x("iq", { type: "get" }, x("metadata", { xmlns: MAM })))).getChild(
          "metadata",
          MAM,
        )!;
        assert.deepEqual(
          [meta.getChild("start")?.attrs.id, meta.getChild("end")?.attrs.id],
          [all[0]!.id, all[2]!.id],
        );
        assert.equal(meta.getChild("end")?.attrs.timestamp, all[2]!.stamp);
      });
    });

    describe("preferences (XEP-0441)", () => {
      const prefs = (mode: string, always: string[] = [], never: string[] = []) =>
        x(
          "iq",
          { type: "set" },
          x(
            "prefs",
            { xmlns: MAM, default: mode },
            x("always", null, ...always.map((j) => x("jid", null, j))),
            x("never", null, ...never.map((j) => x("jid", null, j))),
          ),
        );

      test("default always; never and the lists decide; roster archives contacts only", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const a = await online(alice!);
        await online(bob!);
        await online(carol!);
        const got = await a.iq(x("iq", { type: "get" }, x("prefs", { xmlns: MAM })));
        assert.equal(got.getChild("prefs", MAM)?.attrs.default, "always");
        const set = await a.iq(prefs("never", [jid(bob!)]));
        assert.equal(set.getChild("prefs", MAM)?.attrs.default, "never");
        await a.sendStanza(chat(jid(bob!), "to bob, always"));
        await a.sendStanza(chat(jid(carol!), "to carol, never"));
        await a.iq(prefs("always", [], [jid(bob!)]));
        await a.sendStanza(chat(jid(bob!), "to bob, never"));
        await a.sendStanza(chat(jid(carol!), "to carol, always"));
        await h.server.services.storage.roster.setItem(alice!, {
          jid: jid(carol!),
          subscription: "both",
          ask: false,
          approved: false,
          groups: [],
        });
        await a.iq(prefs("roster"));
        await a.sendStanza(chat(jid(bob!), "to bob, not a contact"));
        await a.sendStanza(chat(jid(carol!), "to carol, a contact"));
        const bodies = (await run(a, query())).results.map((r) => r.body);
        assert.deepEqual(bodies, ["to bob, always", "to carol, always", "to carol, a contact"]);
        const back = await a.iq(x("iq", { type: "get" }, x("prefs", { xmlns: MAM })));
        assert.equal(back.getChild("prefs", MAM)?.attrs.default, "roster");
        assert.equal(errorCondition(await a.iq(prefs("sometimes"))), "bad-request");
      });
    });

    describe("retention and deletion", () => {
      test("messages older than retentionDays go; the archive goes with its account", async () => {
        const [alice, bob] = await users("alice", "bob");
        const a = await online(alice!);
        await online(bob!);
        await converse(a, jid(bob!), 2, "old");
        h.clock.advance(20 * DAY);
        await converse(a, jid(bob!), 1, "recent");
        h.clock.advance(11 * DAY);
        const api = h.server.services.apis.get("mam") as MamApi;
        assert.ok((await api.pruneExpired()) >= 2);
        assert.deepEqual(
          (await run(a, query())).results.map((r) => r.body),
          ["recent 1"],
        );
        const store = h.server.services.storage.messages("mam", { ownedByAccounts: true });
        assert.equal(await store.count({ owner: bob! }), 1);
        await a.disconnect();
        open = open.filter((s) => s !== a);
        assert.equal(await h.server.services.storage.accounts.delete(alice!), true);
        assert.equal(await store.count({ owner: alice! }), 0);
      });
    });
  });
}

test("archive settings: defaults, SWITCHBOARD_ARCHIVE_RETENTION_DAYS, and refused values", async () => {
  const { loadServerConfig } = await import("../../src/server/config.js");
  const base = { overrides: { dataDir: "/tmp/sb-archive-config" } };
  const defaults = loadServerConfig(base).archive;
  assert.deepEqual([defaults.retentionDays, defaults.defaultMode, defaults.maxPageSize], [0, "always", 250]);
  const fromEnv = loadServerConfig({ ...base, env: { SWITCHBOARD_ARCHIVE_RETENTION_DAYS: "7" } }).archive;
  assert.equal(fromEnv.retentionDays, 7);
  assert.equal(fromEnv.defaultPageSize, 50, "the other settings keep their defaults");
  assert.throws(
    () => loadServerConfig({ overrides: { ...base.overrides, archive: { retentionDays: -1 } } }),
    /archive\.retentionDays/,
  );
});
