/**
 * Presence between local accounts: subscription handshakes end to end,
 * pending requests, pre-approval, broadcast on login, update and logout,
 * probes, directed presence, and what non-subscribers never see.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ModuleDefinition } from "../../src/core/module.js";
import type { RosterItem } from "../../src/core/storage/types.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import presence, { NS_PRE_APPROVAL } from "../../src/modules/presence/index.js";
import roster, { NS_ROSTER } from "../../src/modules/roster/index.js";
import { type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const D = "example.test";
let h: Harness;
let seq = 0;

before(async () => {
  h = await startHarness({ modules: [roster, presence] as ModuleDefinition<unknown>[] });
});
after(() => h.stop());

/** Fresh account names for each test: `names("alice", "bob")` → ["alice7", "bob7"]. */
async function accounts(...prefixes: string[]): Promise<string[]> {
  const n = ++seq;
  const names = prefixes.map((p) => `${p}${n}`);
  for (const name of names) await h.createUser(name);
  return names;
}

async function take(s: FakeSession): Promise<XmlElement[]> {
  const got = s.pending();
  for (let i = 0; i < got.length; i++) await s.next();
  return got;
}

const presencesIn = (got: XmlElement[]) => got.filter((el) => el.name === "presence");
const pushesIn = (got: XmlElement[]) =>
  got.filter((el) => el.name === "iq" && el.attrs.type === "set" && el.getChild("query", NS_ROSTER));
const pushedItem = (push: XmlElement) => push.getChild("query", NS_ROSTER)!.getChild("item")!;
/** "from type" summaries of presence stanzas, for compact assertions. */
const summary = (got: XmlElement[]) =>
  presencesIn(got).map((el) => `${el.attrs.from} ${el.attrs.type ?? "available"}`);

/** A connected resource; `interested` requests the roster, `priority` sends initial presence. */
async function login(
  username: string,
  resource: string,
  opts: { interested?: boolean; priority?: number; show?: string; status?: string } = {},
): Promise<FakeSession> {
  const s = await h.connect(username, resource);
  if (opts.interested ?? true) await s.iq(x("iq", { type: "get" }, x("query", { xmlns: NS_ROSTER })));
  if (opts.priority !== undefined) {
    await s.sendStanza(
      x(
        "presence",
        null,
        opts.show !== undefined && x("show", null, opts.show),
        opts.status !== undefined && x("status", null, opts.status),
        x("priority", null, String(opts.priority)),
      ),
    );
  }
  return s;
}

async function setItem(
  username: string,
  contact: string,
  subscription: RosterItem["subscription"],
  approved = false,
) {
  await h.server.services.storage.roster.setItem(username, {
    jid: `${contact}@${D}`,
    subscription,
    ask: false,
    approved,
    groups: [],
  });
}

/** Both accounts subscribed to each other. */
async function mutual(a: string, b: string): Promise<void> {
  await setItem(a, b, "both");
  await setItem(b, a, "both");
}

async function subscriptionOf(username: string, contact: string): Promise<string | undefined> {
  const item = await h.server.services.storage.roster.getItem(username, `${contact}@${D}`);
  return item && `${item.subscription}${item.ask ? "+ask" : ""}${item.approved ? "+approved" : ""}`;
}

test("the stream features after authentication advertise pre-approval", async () => {
  const [u] = await accounts("feat");
  const s = await h.connect(u!);
  const offered: XmlElement[] = [];
  for (const p of h.server.services.streamFeatures.forStage("post-auth")) {
    const o = await p.offer(s);
    if (o) offered.push(...(Array.isArray(o) ? o : [o]));
  }
  assert.ok(offered.some((el) => el.name === "sub" && el.attrs.xmlns === NS_PRE_APPROVAL));
  await s.disconnect();
});

test("a subscription handshake between two online accounts, in both directions", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  const a = await login(alice!, "a", { priority: 1, show: "chat" });
  const b = await login(bob!, "b", { priority: 1 });
  await take(a);
  await take(b);

  await a.sendStanza(x("presence", { type: "subscribe", to: `${bob}@${D}` }));
  let got = await take(a);
  // The request is acknowledged with unavailable presence from the contact's account (as
  // Prosody does): nothing of bob's real presence before he approves.
  assert.deepEqual(summary(got), [`${bob}@${D} unavailable`]);
  assert.deepEqual(
    pushesIn(got).map((p) => pushedItem(p).attrs.ask),
    ["subscribe"],
  );
  got = await take(b);
  assert.deepEqual(summary(got), [`${alice}@${D} subscribe`]);
  assert.equal(pushesIn(got).length, 0, "a pending request is not a roster item of the contact");

  await b.sendStanza(x("presence", { type: "subscribed", to: `${alice}@${D}` }));
  got = await take(b);
  assert.deepEqual(
    pushesIn(got).map((p) => pushedItem(p).attrs.subscription),
    ["from"],
  );
  got = await take(a);
  assert.deepEqual(
    pushesIn(got).map((p) => [pushedItem(p).attrs.subscription, pushedItem(p).attrs.ask]),
    [["to", undefined]],
  );
  assert.deepEqual(summary(got), [`${bob}@${D} subscribed`, `${bob}@${D}/b available`]);
  assert.equal(await subscriptionOf(alice!, bob!), "to");
  assert.equal(await subscriptionOf(bob!, alice!), "from");

  // And back: bob subscribes to alice, alice approves.
  await b.sendStanza(x("presence", { type: "subscribe", to: `${alice}@${D}` }));
  assert.deepEqual(summary(await take(a)), [`${bob}@${D} subscribe`]);
  await a.sendStanza(x("presence", { type: "subscribed", to: `${bob}@${D}` }));
  got = await take(b);
  assert.deepEqual(summary(got).slice(-2), [`${alice}@${D} subscribed`, `${alice}@${D}/a available`]);
  assert.equal(presencesIn(got).at(-1)!.getChildText("show"), "chat");
  assert.equal(await subscriptionOf(alice!, bob!), "both");
  assert.equal(await subscriptionOf(bob!, alice!), "both");
  await a.disconnect();
  await b.disconnect();
});

test("roster pushes for subscription changes go to interested resources only", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  const interested = await login(alice!, "interested", { priority: 0 });
  const uninterested = await login(alice!, "quiet", { interested: false, priority: 0 });
  await take(interested);
  await take(uninterested);
  await uninterested.sendStanza(x("presence", { type: "subscribe", to: `${bob}@${D}` }));
  assert.equal(pushesIn(await take(interested)).length, 1);
  assert.equal(pushesIn(await take(uninterested)).length, 0);
  await interested.disconnect();
  await uninterested.disconnect();
});

test("a request to an offline contact is kept and delivered at each initial presence until answered", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  const a = await login(alice!, "a", { priority: 0 });
  await a.sendStanza(x("presence", { type: "subscribe", to: `${bob}@${D}` }, x("status", null, "it's me")));

  const b1 = await login(bob!, "one");
  assert.equal(presencesIn(await take(b1)).length, 0, "a connected but unavailable resource gets no request");
  await b1.sendStanza(x("presence"));
  const first = presencesIn(await take(b1)).filter((el) => el.attrs.type === "subscribe");
  assert.equal(first.length, 1);
  assert.equal(first[0]!.attrs.from, `${alice}@${D}`);
  assert.equal(first[0]!.getChildText("status"), "it's me");

  const b2 = await login(bob!, "two", { priority: 0 });
  assert.equal(presencesIn(await take(b2)).filter((el) => el.attrs.type === "subscribe").length, 1);

  await b2.sendStanza(x("presence", { type: "subscribed", to: `${alice}@${D}` }));
  assert.deepEqual(await h.server.services.storage.roster.getPending(bob!), []);
  const b3 = await login(bob!, "three", { priority: 0 });
  assert.equal(presencesIn(await take(b3)).filter((el) => el.attrs.type === "subscribe").length, 0);
  for (const s of [a, b1, b2, b3]) await s.disconnect();
});

test("a request reaches every available resource whatever its priority, not the unavailable ones", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  const high = await login(bob!, "high", { priority: 5 });
  const negative = await login(bob!, "negative", { priority: -1 });
  const connected = await login(bob!, "connected");
  for (const s of [high, negative, connected]) await take(s);
  const a = await login(alice!, "a", { priority: 0 });
  await a.sendStanza(x("presence", { type: "subscribe", to: `${bob}@${D}` }));
  assert.deepEqual(summary(await take(high)), [`${alice}@${D} subscribe`]);
  assert.deepEqual(summary(await take(negative)), [`${alice}@${D} subscribe`]);
  assert.deepEqual(summary(await take(connected)), []);
  for (const s of [a, high, negative, connected]) await s.disconnect();
});

test("pre-approval: the contact approves before being asked; the request is answered automatically", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  const b = await login(bob!, "b", { priority: 0, status: "pre" });
  const a = await login(alice!, "a", { priority: 0 });
  await take(a);
  await take(b);

  await b.sendStanza(x("presence", { type: "subscribed", to: `${alice}@${D}` }));
  let got = await take(b);
  assert.deepEqual(
    pushesIn(got).map((p) => [pushedItem(p).attrs.subscription, pushedItem(p).attrs.approved]),
    [["none", "true"]],
  );
  assert.equal(presencesIn(await take(a)).length, 0, "a pre-approval is not sent to the contact");
  assert.equal(await subscriptionOf(bob!, alice!), "none+approved");

  await a.sendStanza(x("presence", { type: "subscribe", to: `${alice}@${D}`.replace(alice!, bob!) }));
  got = await take(a);
  assert.deepEqual(summary(got), [`${bob}@${D} subscribed`, `${bob}@${D}/b available`]);
  assert.equal(presencesIn(got)[1]!.getChildText("status"), "pre");
  got = await take(b);
  assert.equal(presencesIn(got).length, 0, "the pre-approving user is not asked");
  assert.deepEqual(
    pushesIn(got).map((p) => [pushedItem(p).attrs.subscription, pushedItem(p).attrs.approved]),
    [["from", undefined]],
  );
  assert.equal(await subscriptionOf(alice!, bob!), "to");
  assert.equal(await subscriptionOf(bob!, alice!), "from");
  await a.disconnect();
  await b.disconnect();
});

test("initial presence: probes answered by each available resource, broadcast to subscribers, own resources both ways", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const b = await login(bob!, "b", { priority: 1, status: "bob here" });
  await take(b);

  const a1 = await login(alice!, "a1", { priority: 2, show: "chat" });
  const got1 = await take(a1);
  assert.deepEqual(summary(got1), [`${alice}@${D}/a1 available`, `${bob}@${D}/b available`]);
  const own = presencesIn(got1)[0]!;
  assert.equal(own.attrs.to, `${alice}@${D}`);
  assert.equal(own.getChildText("show"), "chat");
  assert.equal(presencesIn(got1)[1]!.getChildText("status"), "bob here");
  const atBob = presencesIn(await take(b));
  assert.deepEqual(
    atBob.map((el) => [el.attrs.from, el.attrs.to, el.getChildText("priority")]),
    [[`${alice}@${D}/a1`, `${bob}@${D}`, "2"]],
  );

  const a2 = await login(alice!, "a2", { priority: 0 });
  const got2 = summary(await take(a2));
  assert.ok(got2.includes(`${alice}@${D}/a2 available`), "its own presence");
  assert.ok(got2.includes(`${alice}@${D}/a1 available`), "the other resource's presence");
  assert.ok(got2.includes(`${bob}@${D}/b available`), "the contact's presence");
  assert.ok(summary(await take(a1)).includes(`${alice}@${D}/a2 available`));
  assert.deepEqual(summary(await take(b)), [`${alice}@${D}/a2 available`]);
  assert.equal(a1.priority, 2);
  assert.equal(a2.priority, 0);
  for (const s of [a1, a2, b]) await s.disconnect();
});

test("probes with priorities and several resources: one answer per available resource", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const b1 = await login(bob!, "desk", { priority: 5, show: "dnd" });
  const b2 = await login(bob!, "phone", { priority: -1, show: "away" });
  const b3 = await login(bob!, "idle"); // connected, never available
  const a = await login(alice!, "a", { priority: 0 });
  const fromBob = presencesIn(await take(a)).filter((el) => el.attrs.from?.startsWith(`${bob}@`));
  assert.deepEqual(
    fromBob.map((el) => [el.attrs.from, el.getChildText("show"), el.getChildText("priority")]),
    [
      [`${bob}@${D}/desk`, "dnd", "5"],
      [`${bob}@${D}/phone`, "away", "-1"],
    ],
  );
  for (const s of [a, b1, b2, b3]) await s.disconnect();
});

test("an offline contact answers probes with its last unavailable presence, or a bare unavailable", async () => {
  const [alice, bob, carol] = await accounts("alice", "bob", "carol");
  await mutual(alice!, bob!);
  await mutual(alice!, carol!);
  const b = await login(bob!, "b", { priority: 0 });
  h.clock.t = Date.UTC(2026, 2, 1, 12, 0, 0);
  await b.sendStanza(x("presence", { type: "unavailable" }, x("status", null, "gone fishing")));
  await b.disconnect();

  const a = await login(alice!, "a", { priority: 0 });
  const got = presencesIn(await take(a)).filter((el) => el.attrs.from !== `${alice}@${D}/a`);
  const byFrom = new Map(got.map((el) => [el.attrs.from, el]));
  const last = byFrom.get(`${bob}@${D}/b`);
  assert.equal(last?.attrs.type, "unavailable");
  assert.equal(last?.getChildText("status"), "gone fishing");
  assert.equal(last?.getChild("delay", "urn:xmpp:delay")?.attrs.stamp, "2026-03-01T12:00:00Z");
  assert.equal(
    byFrom.get(`${carol}@${D}`)?.attrs.type,
    "unavailable",
    "never seen: unavailable from the bare JID",
  );
  assert.equal(got.length, 2);
  await a.disconnect();
});

test("presence updates go to subscribers and own resources, nobody else", async () => {
  const [alice, bob, carol] = await accounts("alice", "bob", "carol");
  await mutual(alice!, bob!);
  await setItem(alice!, carol!, "to"); // alice sees carol, carol does not see alice
  await setItem(carol!, alice!, "from");
  const a1 = await login(alice!, "a1", { priority: 0 });
  const a2 = await login(alice!, "a2", { priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  const c = await login(carol!, "c", { priority: 0 });
  for (const s of [a1, a2, b, c]) await take(s);

  await a1.sendStanza(x("presence", null, x("show", null, "away"), x("status", null, "lunch")));
  for (const s of [a1, a2, b]) {
    const got = presencesIn(await take(s));
    assert.deepEqual(
      got.map((el) => [el.attrs.from, el.getChildText("show"), el.getChildText("status")]),
      [[`${alice}@${D}/a1`, "away", "lunch"]],
    );
  }
  assert.deepEqual(await take(c), []);
  assert.equal(a1.presence?.getChildText("show"), "away");
  for (const s of [a1, a2, b, c]) await s.disconnect();
});

test("unavailable presence, sent or implied by a disconnect, reaches subscribers and own resources", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const a1 = await login(alice!, "a1", { priority: 0 });
  const a2 = await login(alice!, "a2", { priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  for (const s of [a1, a2, b]) await take(s);

  await a1.sendStanza(x("presence", { type: "unavailable" }, x("status", null, "bye")));
  for (const s of [a1, a2, b]) {
    const got = presencesIn(await take(s));
    assert.deepEqual(
      got.map((el) => [el.attrs.from, el.attrs.type, el.getChildText("status")]),
      [[`${alice}@${D}/a1`, "unavailable", "bye"]],
    );
  }
  assert.equal(a1.presence, undefined);
  await a1.disconnect();
  assert.deepEqual(await take(b), [], "no second unavailable after an explicit one");

  await a2.disconnect();
  assert.deepEqual(summary(await take(b)), [`${alice}@${D}/a2 unavailable`]);

  // Presence sent again after unavailable is initial presence again: probes included.
  const a3 = await login(alice!, "a3", { priority: 0 });
  assert.ok(summary(await take(a3)).includes(`${bob}@${D}/b available`));
  await a3.disconnect();
  await b.disconnect();
});

test("directed presence: delivered, remembered, and followed by unavailable on disconnect", async () => {
  const [alice, bob, carol, dave] = await accounts("alice", "bob", "carol", "dave");
  await setItem(alice!, bob!, "from");
  const a = await login(alice!, "a", { priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  const c = await login(carol!, "c", { priority: 0 });
  const d = await login(dave!, "d", { priority: 0 });
  for (const s of [a, b, c, d]) await take(s);

  await a.sendStanza(x("presence", { to: `${carol}@${D}` }, x("status", null, "just for you")));
  await a.sendStanza(x("presence", { to: `${dave}@${D}/d` }));
  await a.sendStanza(x("presence", { to: `${bob}@${D}` })); // a subscriber: gets the broadcast anyway
  const atCarol = presencesIn(await take(c));
  assert.deepEqual(
    atCarol.map((el) => [el.attrs.from, el.getChildText("status")]),
    [[`${alice}@${D}/a`, "just for you"]],
  );
  assert.deepEqual(summary(await take(d)), [`${alice}@${D}/a available`]);
  assert.deepEqual([...a.directedPresence].sort(), [`${carol}@${D}`, `${dave}@${D}/d`]);

  await a.sendStanza(x("presence", { to: `${dave}@${D}/d`, type: "unavailable" }));
  assert.deepEqual(summary(await take(d)), [`${alice}@${D}/a unavailable`]);
  assert.deepEqual([...a.directedPresence], [`${carol}@${D}`]);
  await take(b);

  await a.disconnect();
  assert.deepEqual(summary(await take(c)), [`${alice}@${D}/a unavailable`]);
  assert.deepEqual(await take(d), [], "dave already got unavailable");
  assert.deepEqual(summary(await take(b)), [`${alice}@${D}/a unavailable`], "exactly one for the subscriber");
  for (const s of [b, c, d]) await s.disconnect();
});

test("directed presence before initial presence is remembered too (e.g. joining a room first)", async () => {
  const [alice, carol] = await accounts("alice", "carol");
  const c = await login(carol!, "c", { priority: 0 });
  const a = await login(alice!, "a");
  await take(c);
  await a.sendStanza(x("presence", { to: `${carol}@${D}/c` }));
  assert.deepEqual(summary(await take(c)), [`${alice}@${D}/a available`]);
  await a.sendStanza(x("presence", { type: "unavailable" }));
  assert.deepEqual(summary(await take(c)), [`${alice}@${D}/a unavailable`]);
  assert.equal(a.directedPresence.size, 0);
  await a.disconnect();
  assert.deepEqual(await take(c), []);
  await c.disconnect();
});

test("no presence leak: probes from non-subscribers, pre-approved or one-way contacts get nothing", async () => {
  const [alice, carol, eve, trent] = await accounts("alice", "carol", "eve", "trent");
  await setItem(alice!, carol!, "none", true); // pre-approved only
  await setItem(alice!, trent!, "to"); // alice subscribed to trent, not the other way round
  await setItem(trent!, alice!, "from");
  const a = await login(alice!, "a", { priority: 0, status: "secret" });
  const c = await login(carol!, "c", { priority: 0 });
  const e = await login(eve!, "e", { priority: 0 });
  const t = await login(trent!, "t", { priority: 0 });
  for (const s of [a, c, e, t]) await take(s);

  for (const s of [c, e, t]) await s.sendStanza(x("presence", { type: "probe", to: `${alice}@${D}` }));
  for (const s of [c, e, t]) assert.deepEqual(summary(await take(s)), [], `${s.jid} learns nothing`);
  // The refusal to the probe changes nothing on the prober's side either.
  assert.equal(await subscriptionOf(eve!, alice!), undefined);
  assert.equal(
    await subscriptionOf(alice!, carol!),
    "none+approved",
    "a probe does not cancel a pre-approval",
  );

  await a.sendStanza(x("presence", null, x("status", null, "still secret")));
  for (const s of [c, e, t]) assert.deepEqual(await take(s), []);
  // Nor through an account that does not exist, nor through a resource.
  await e.sendStanza(x("presence", { type: "probe", to: `${alice}@${D}/a` }));
  await e.sendStanza(x("presence", { type: "probe", to: `nobody@${D}` }));
  assert.deepEqual(await take(e), []);
  assert.equal(
    (await take(a)).some((el) => el.attrs.type === "probe"),
    false,
    "probes are answered by the server, never delivered",
  );
  for (const s of [a, c, e, t]) await s.disconnect();
});

test("a subscriber whose subscription is cancelled stops receiving presence at once", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const a = await login(alice!, "a", { priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  await take(a);
  await take(b);
  await a.sendStanza(x("presence", { type: "unsubscribed", to: `${bob}@${D}` }));
  const got = await take(b);
  assert.deepEqual(summary(got), [`${alice}@${D} unsubscribed`, `${alice}@${D}/a unavailable`]);
  assert.deepEqual(
    pushesIn(got).map((p) => pushedItem(p).attrs.subscription),
    ["from"],
  );
  assert.equal(await subscriptionOf(alice!, bob!), "to");
  await a.sendStanza(x("presence", null, x("show", null, "xa")));
  assert.deepEqual(await take(b), []);
  await a.disconnect();
  await b.disconnect();
});

test("removing a contact cancels both subscriptions on the contact's side", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const a = await login(alice!, "a", { priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  await take(a);
  await take(b);
  const reply = await a.iq(
    x(
      "iq",
      { type: "set" },
      x("query", { xmlns: NS_ROSTER }, x("item", { jid: `${bob}@${D}`, subscription: "remove" })),
    ),
  );
  assert.equal(reply.attrs.type, "result");
  const got = await take(b);
  assert.deepEqual(summary(got), [
    `${alice}@${D} unsubscribe`,
    `${alice}@${D} unsubscribed`,
    `${alice}@${D}/a unavailable`,
  ]);
  assert.deepEqual(
    pushesIn(got).map((p) => pushedItem(p).attrs.subscription),
    ["to", "none"],
  );
  assert.equal(await subscriptionOf(alice!, bob!), undefined);
  assert.equal(await subscriptionOf(bob!, alice!), "none");
  await a.sendStanza(x("presence", null, x("show", null, "dnd")));
  await b.sendStanza(x("presence", null, x("show", null, "dnd")));
  assert.deepEqual(summary(await take(b)), [`${bob}@${D}/b available`], "bob only sees himself");
  // Alice hears of bob once more, the unavailable that ends her subscription (RFC 6121 §3.3.3;
  // it follows the roster set's result), and not of his dnd.
  assert.deepEqual(
    summary(await take(a)).filter((s) => s.startsWith(bob!)),
    [`${bob}@${D}/b unavailable`],
  );
  await a.disconnect();
  await b.disconnect();
});

test("priority: kept on the session, invalid values count as 0 and are not passed on", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const b = await login(bob!, "b", { priority: 0 });
  const a = await login(alice!, "a", { priority: -5 });
  assert.equal(a.priority, -5);
  await take(b);
  for (const [raw, expected] of [
    ["127", 127],
    ["-128", -128],
    ["128", 0],
    ["abc", 0],
    ["1.5", 0],
    ["", 0],
  ] as const) {
    await a.sendStanza(x("presence", null, x("priority", null, raw)));
    assert.equal(a.priority, expected, `priority '${raw}'`);
    const [atBob] = presencesIn(await take(b));
    assert.equal(atBob?.getChildText("priority"), expected === 0 ? undefined : raw);
  }
  await a.sendStanza(x("presence"));
  assert.equal(a.priority, 0);
  await a.disconnect();
  assert.equal(a.priority, 0);
  await b.disconnect();
});

test("session/available fires when a resource becomes available with non-negative priority", async () => {
  const [alice] = await accounts("alice");
  const fired: string[] = [];
  const off = h.server.services.hooks.on("session/available", ({ session }) => {
    fired.push(session.jid!.toString());
  });
  try {
    const a = await login(alice!, "a", { priority: -1 });
    assert.deepEqual(fired, []);
    await a.sendStanza(x("presence", null, x("priority", null, "1")));
    await a.sendStanza(x("presence", null, x("priority", null, "2")));
    assert.deepEqual(fired, [`${alice}@${D}/a`]);
    const b = await login(alice!, "b", { priority: 0 });
    assert.deepEqual(fired, [`${alice}@${D}/a`, `${alice}@${D}/b`]);
    await b.sendStanza(x("presence", { type: "unavailable" }));
    await b.sendStanza(x("presence"));
    assert.equal(fired.length, 3, "available again after unavailable");
    await a.disconnect();
    await b.disconnect();
  } finally {
    off();
  }
});

test("presence to full JIDs, presence errors and presence without a purpose", async () => {
  const [alice, carol] = await accounts("alice", "carol");
  const a = await login(alice!, "a", { priority: 0 });
  const idle = await login(alice!, "idle"); // connected, not available
  const c = await login(carol!, "c", { priority: 0 });
  for (const s of [a, idle, c]) await take(s);

  await c.sendStanza(x("presence", { to: `${alice}@${D}/ghost` }));
  await c.sendStanza(x("presence", { to: `${alice}@${D}/idle` }));
  assert.deepEqual(await take(a), [], "nothing for a resource that does not exist");
  assert.deepEqual(
    summary(await take(idle)),
    [`${carol}@${D}/c available`],
    "a connected resource gets presence sent to it",
  );

  const error = x(
    "presence",
    { type: "error", to: `${alice}@${D}/a` },
    x(
      "error",
      { type: "cancel" },
      x("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }),
    ),
  );
  await c.sendStanza(error);
  assert.deepEqual(summary(await take(a)), [`${carol}@${D}/c error`]);
  await c.sendStanza(x("presence", { type: "error" }));
  await c.sendStanza(x("presence", { type: "probe" }));
  assert.deepEqual(await take(c), [], "error and probe without 'to' are dropped, not answered");
  for (const s of [a, idle, c]) await s.disconnect();
});

test("approvals and cancellations reach the interested resources, also those that sent no presence (RFC 6121 §3.1.6, §3.2.3, §3.3.3)", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  // alice/roster asked for the roster but sent no presence; alice/chat sent presence but never
  // asked for the roster.
  const rosterOnly = await login(alice!, "roster", { interested: true });
  const presenceOnly = await login(alice!, "chat", { interested: false, priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  await take(rosterOnly);
  await take(presenceOnly);
  await rosterOnly.sendStanza(x("presence", { type: "subscribe", to: `${bob}@${D}` }));
  await take(rosterOnly);
  await take(presenceOnly); // bob's acknowledgement (unavailable presence) reaches both
  await take(b);

  const kinds = (got: XmlElement[]) =>
    presencesIn(got)
      .filter((el) => el.attrs.from === `${bob}@${D}`)
      .map((el) => el.attrs.type);
  for (const type of ["subscribed", "unsubscribed"]) {
    await b.sendStanza(x("presence", { type, to: `${alice}@${D}` }));
    assert.deepEqual(kinds(await take(rosterOnly)), [type], `${type} reaches the interested resource`);
    assert.deepEqual(
      kinds(await take(presenceOnly)),
      [],
      `${type} is not for a resource that never asked for the roster`,
    );
  }
  await setItem(alice!, bob!, "from");
  await setItem(bob!, alice!, "to");
  await b.sendStanza(x("presence", { type: "unsubscribe", to: `${alice}@${D}` }));
  assert.deepEqual(kinds(await take(rosterOnly)), ["unsubscribe"]);
  assert.deepEqual(kinds(await take(presenceOnly)), []);

  // A request still goes to every available resource (§3.1.3), interested or not.
  await b.sendStanza(x("presence", { type: "subscribe", to: `${alice}@${D}` }));
  assert.deepEqual(kinds(await take(presenceOnly)), ["subscribe"]);
  for (const s of [rosterOnly, presenceOnly, b]) await s.disconnect();
});

test("a second resource coming online gets its contacts' presence; the first one does not get it again", async () => {
  const [alice, bob, carol] = await accounts("alice", "bob", "carol");
  await mutual(alice!, bob!);
  await mutual(alice!, carol!);
  const b = await login(bob!, "b", { priority: 0, status: "bob" });
  const c = await login(carol!, "c", { priority: 0, status: "carol" });
  const a1 = await login(alice!, "a1", { priority: 0 });
  const first = summary(await take(a1));
  assert.ok(first.includes(`${bob}@${D}/b available`) && first.includes(`${carol}@${D}/c available`));
  await take(b);
  await take(c);

  const a2 = await login(alice!, "a2", { priority: 0 });
  const second = summary(await take(a2));
  assert.ok(second.includes(`${bob}@${D}/b available`), "the new resource gets bob's presence");
  assert.ok(second.includes(`${carol}@${D}/c available`), "the new resource gets carol's presence");
  assert.deepEqual(
    summary(await take(a1)),
    [`${alice}@${D}/a2 available`],
    "a1 only learns that a2 came online",
  );
  for (const s of [a1, a2, b, c]) await s.disconnect();
});

test("presence sent again later carries when it was sent (XEP-0203); live broadcasts do not", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  await mutual(alice!, bob!);
  const delayOf = (el: XmlElement | undefined) => el?.getChild("delay", "urn:xmpp:delay")?.attrs;
  h.clock.t = Date.UTC(2026, 4, 2, 9, 30, 0);
  const b = await login(bob!, "b", { priority: 0, status: "bob" });
  const echo = presencesIn(await take(b));
  assert.equal(delayOf(echo[0]), undefined, "the echo to the sender is live");

  h.clock.t = Date.UTC(2026, 4, 2, 10, 0, 0);
  const a = await login(alice!, "a", { priority: 0 });
  const atAlice = presencesIn(await take(a)).find((el) => el.attrs.from === `${bob}@${D}/b`);
  assert.deepEqual(delayOf(atAlice), { xmlns: "urn:xmpp:delay", from: D, stamp: "2026-05-02T09:30:00Z" });
  assert.equal(atAlice?.getChildText("status"), "bob");
  const liveAtBob = presencesIn(await take(b)).find((el) => el.attrs.from === `${alice}@${D}/a`);
  assert.equal(delayOf(liveAtBob), undefined, "a broadcast as it happens has no delay");

  // The account's next resource gets the first one's kept presence.
  const b2 = await login(bob!, "b2", { priority: 0 });
  const own = presencesIn(await take(b2)).find((el) => el.attrs.from === `${bob}@${D}/b`);
  assert.equal(delayOf(own)?.stamp, "2026-05-02T09:30:00Z");

  // A client's own delay is replaced, never doubled.
  await b.sendStanza(
    x("presence", null, x("delay", { xmlns: "urn:xmpp:delay", stamp: "2000-01-01T00:00:00Z" })),
  );
  await take(a);
  const a2 = await login(alice!, "a2", { priority: 0 });
  const kept = presencesIn(await take(a2)).filter((el) => el.attrs.from === `${bob}@${D}/b`);
  assert.equal(kept.length, 1);
  assert.deepEqual(
    kept[0]!.getChildren("delay", "urn:xmpp:delay").map((d) => d.attrs.stamp),
    ["2026-05-02T10:00:00Z"],
  );
  for (const s of [a, a2, b, b2]) await s.disconnect();
});

test("after an approval the contact gets the approver's presence with when it was sent", async () => {
  const [alice, bob] = await accounts("alice", "bob");
  h.clock.t = Date.UTC(2026, 4, 3, 8, 0, 0);
  const a = await login(alice!, "a", { priority: 0 });
  const b = await login(bob!, "b", { priority: 0 });
  await take(a);
  await take(b);
  await a.sendStanza(x("presence", { type: "subscribe", to: `${bob}@${D}` }));
  await take(a);
  await take(b);
  h.clock.t = Date.UTC(2026, 4, 3, 8, 5, 0);
  await b.sendStanza(x("presence", { type: "subscribed", to: `${alice}@${D}` }));
  const fromBob = presencesIn(await take(a)).find((el) => el.attrs.from === `${bob}@${D}/b`);
  assert.equal(fromBob?.getChild("delay", "urn:xmpp:delay")?.attrs.stamp, "2026-05-03T08:00:00Z");
  for (const s of [a, b]) await s.disconnect();
});
