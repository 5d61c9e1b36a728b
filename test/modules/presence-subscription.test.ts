/**
 * The subscription state machine of RFC 6121 Appendix A, one test per table
 * row: the user is a local account, the contact sits on another server (a
 * captured remote route stands in for server-to-server), so each test sees
 * exactly one server's side of the exchange.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { parseJid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import type { RosterItem } from "../../src/core/storage/types.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import presence from "../../src/modules/presence/index.js";
import roster, { NS_ROSTER } from "../../src/modules/roster/index.js";
import { type FakeSession, type Harness, startHarness } from "../kit/harness.js";

const DOMAIN = "example.test";
const REMOTE = "remote.test";
let h: Harness;
const routed: XmlElement[] = [];
let seq = 0;

before(async () => {
  h = await startHarness({ modules: [roster, presence] as ModuleDefinition<unknown>[] });
  h.server.services.router.addRemoteRoute({
    kind: "test",
    priority: 0,
    canRoute: (d) => d === REMOTE,
    send: (stanza) => {
      routed.push(stanza.clone());
    },
  });
});
after(() => h.stop());

interface State {
  subscription: RosterItem["subscription"];
  ask: boolean;
  pendingIn: boolean;
  approved: boolean;
}

const S = (subscription: State["subscription"], ask = false, pendingIn = false, approved = false): State => ({
  subscription,
  ask,
  pendingIn,
  approved,
});

/** RFC 6121 A.1 states, and the pre-approved variants of §3.4. */
const STATES = {
  None: S("none"),
  "None + Pending Out": S("none", true),
  "None + Pending In": S("none", false, true),
  "None + Pending Out/In": S("none", true, true),
  To: S("to"),
  "To + Pending In": S("to", false, true),
  From: S("from"),
  "From + Pending Out": S("from", true),
  Both: S("both"),
  "None [pre-approved]": S("none", false, false, true),
  "None + Pending Out [pre-approved]": S("none", true, false, true),
  "To [pre-approved]": S("to", false, false, true),
} satisfies Record<string, State>;
type StateName = keyof typeof STATES;
type Type = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

/**
 * [existing state, what leaves for the contact (stanza types, "available" for presence
 * without type), new state or "=" for no state change].
 */
type OutRow = [StateName, string[], StateName | "="];
const OUTBOUND: Record<Type, OutRow[]> = {
  // A.2.1: always routed.
  subscribe: [
    ["None", ["subscribe"], "None + Pending Out"],
    ["None + Pending Out", ["subscribe"], "="],
    ["None + Pending In", ["subscribe"], "None + Pending Out/In"],
    ["None + Pending Out/In", ["subscribe"], "="],
    ["To", ["subscribe"], "="],
    ["To + Pending In", ["subscribe"], "="],
    ["From", ["subscribe"], "From + Pending Out"],
    ["From + Pending Out", ["subscribe"], "="],
    ["Both", ["subscribe"], "="],
    ["None [pre-approved]", ["subscribe"], "None + Pending Out [pre-approved]"],
    ["None + Pending Out [pre-approved]", ["subscribe"], "="],
    ["To [pre-approved]", ["subscribe"], "="],
  ],
  // A.2.2: always routed.
  unsubscribe: [
    ["None", ["unsubscribe"], "="],
    ["None + Pending Out", ["unsubscribe"], "None"],
    ["None + Pending In", ["unsubscribe"], "="],
    ["None + Pending Out/In", ["unsubscribe"], "None + Pending In"],
    ["To", ["unsubscribe"], "None"],
    ["To + Pending In", ["unsubscribe"], "None + Pending In"],
    ["From", ["unsubscribe"], "="],
    ["From + Pending Out", ["unsubscribe"], "From"],
    ["Both", ["unsubscribe"], "From"],
    ["None [pre-approved]", ["unsubscribe"], "="],
    ["None + Pending Out [pre-approved]", ["unsubscribe"], "None [pre-approved]"],
    ["To [pre-approved]", ["unsubscribe"], "None [pre-approved]"],
  ],
  // A.2.3, with §3.4 pre-approval where the table says "no state change" without a pending request.
  subscribed: [
    ["None", [], "None [pre-approved]"],
    ["None + Pending Out", [], "None + Pending Out [pre-approved]"],
    ["None + Pending In", ["subscribed", "available"], "From"],
    ["None + Pending Out/In", ["subscribed", "available"], "From + Pending Out"],
    ["To", [], "To [pre-approved]"],
    // Subscribed to the contact too: its presence is probed again (as Prosody, issue 1121).
    ["To + Pending In", ["subscribed", "available", "probe"], "Both"],
    ["From", [], "="],
    ["From + Pending Out", [], "="],
    ["Both", [], "="],
    ["None [pre-approved]", [], "="],
    ["None + Pending Out [pre-approved]", [], "="],
    ["To [pre-approved]", [], "="],
  ],
  // A.2.4; where nothing is routed it can only cancel a pre-approval.
  unsubscribed: [
    ["None", [], "="],
    ["None + Pending Out", [], "="],
    ["None + Pending In", ["unsubscribed"], "None"],
    ["None + Pending Out/In", ["unsubscribed"], "None + Pending Out"],
    ["To", [], "="],
    ["To + Pending In", ["unsubscribed"], "To"],
    ["From", ["unsubscribed", "unavailable"], "None"],
    ["From + Pending Out", ["unsubscribed", "unavailable"], "None + Pending Out"],
    ["Both", ["unsubscribed", "unavailable"], "To"],
    ["None [pre-approved]", [], "None"],
    ["None + Pending Out [pre-approved]", [], "None + Pending Out"],
    ["To [pre-approved]", [], "To"],
  ],
};

/** [existing state, delivered to the user's resources?, new state, what the server sends the contact]. */
type InRow = [StateName, boolean, StateName | "=", string[]?];
const INBOUND: Record<Type, InRow[]> = {
  // A.3.1; "no *" rows are answered automatically, as are pre-approved contacts (§3.4). A
  // request left for the user to answer is acknowledged with unavailable presence from the
  // user's bare JID (as Prosody does).
  subscribe: [
    ["None", true, "None + Pending In", ["unavailable"]],
    ["None + Pending Out", true, "None + Pending Out/In", ["unavailable"]],
    ["None + Pending In", false, "=", ["unavailable"]],
    ["None + Pending Out/In", false, "=", ["unavailable"]],
    ["To", true, "To + Pending In", ["unavailable"]],
    ["To + Pending In", false, "=", ["unavailable"]],
    ["From", false, "=", ["subscribed", "available"]],
    ["From + Pending Out", false, "=", ["subscribed", "available"]],
    ["Both", false, "=", ["subscribed", "available"]],
    ["None [pre-approved]", false, "From", ["subscribed", "available"]],
    ["None + Pending Out [pre-approved]", false, "From + Pending Out", ["subscribed", "available"]],
    ["To [pre-approved]", false, "Both", ["subscribed", "available"]],
  ],
  // A.3.2; a contact that loses its subscription gets unavailable presence.
  unsubscribe: [
    ["None", false, "="],
    ["None + Pending Out", false, "="],
    ["None + Pending In", true, "None"],
    ["None + Pending Out/In", true, "None + Pending Out"],
    ["To", false, "="],
    ["To + Pending In", true, "To"],
    ["From", true, "None", ["unavailable"]],
    ["From + Pending Out", true, "None + Pending Out", ["unavailable"]],
    ["Both", true, "To", ["unavailable"]],
    ["None [pre-approved]", false, "="],
    ["None + Pending Out [pre-approved]", false, "="],
    ["To [pre-approved]", false, "="],
  ],
  // A.3.3
  subscribed: [
    ["None", false, "="],
    ["None + Pending Out", true, "To"],
    ["None + Pending In", false, "="],
    ["None + Pending Out/In", true, "To + Pending In"],
    ["To", false, "="],
    ["To + Pending In", false, "="],
    ["From", false, "="],
    ["From + Pending Out", true, "Both"],
    ["Both", false, "="],
    ["None [pre-approved]", false, "="],
    ["None + Pending Out [pre-approved]", true, "To [pre-approved]"],
    ["To [pre-approved]", false, "="],
  ],
  // A.3.4
  unsubscribed: [
    ["None", false, "="],
    ["None + Pending Out", true, "None"],
    ["None + Pending In", false, "="],
    ["None + Pending Out/In", true, "None + Pending In"],
    ["To", true, "None"],
    ["To + Pending In", true, "None + Pending In"],
    ["From", false, "="],
    ["From + Pending Out", true, "From"],
    ["Both", true, "From"],
    ["None [pre-approved]", false, "="],
    ["None + Pending Out [pre-approved]", true, "None [pre-approved]"],
    ["To [pre-approved]", true, "None [pre-approved]"],
  ],
};

async function take(s: FakeSession): Promise<XmlElement[]> {
  const got = s.pending();
  for (let i = 0; i < got.length; i++) await s.next();
  return got;
}

const kind = (el: XmlElement) => el.attrs.type ?? "available";

interface Fixture {
  user: string;
  userJid: string;
  contact: string;
  session: FakeSession;
}

/** A user in `state` with a remote contact, connected, interested and available; nothing pending. */
async function fixture(state: State): Promise<Fixture> {
  const user = `user${++seq}`;
  const contact = `contact${seq}@${REMOTE}`;
  await h.createUser(user);
  const storage = h.server.services.storage.roster;
  await storage.setItem(user, {
    jid: contact,
    name: "Contact",
    subscription: state.subscription,
    ask: state.ask,
    approved: state.approved,
    groups: ["Friends"],
  });
  if (state.pendingIn) {
    await storage.addPending(user, {
      from: contact,
      stanza: x("presence", { type: "subscribe", from: contact, to: `${user}@${DOMAIN}` }).toString(),
    });
  }
  const session = await h.connect(user, "res");
  await session.iq(x("iq", { type: "get" }, x("query", { xmlns: NS_ROSTER })));
  await session.sendStanza(x("presence", null, x("show", null, "chat")));
  await take(session);
  routed.length = 0;
  return { user, userJid: `${user}@${DOMAIN}`, contact, session };
}

async function stateOf(user: string, contact: string): Promise<State> {
  const storage = h.server.services.storage.roster;
  const item = await storage.getItem(user, contact);
  assert.ok(item, "the roster item is kept");
  assert.equal(item.name, "Contact");
  assert.deepEqual(item.groups, ["Friends"]);
  const pendingIn = (await storage.getPending(user)).some((p) => p.from === contact);
  return { subscription: item.subscription, ask: item.ask, pendingIn, approved: item.approved };
}

/** The roster pushes among `got`; checks they carry the new item state. */
function checkPushes(got: XmlElement[], contact: string, before: State, after: State): void {
  const pushes = got.filter((el) => el.name === "iq" && el.attrs.type === "set");
  const itemChanged =
    before.subscription !== after.subscription ||
    before.ask !== after.ask ||
    before.approved !== after.approved;
  assert.equal(pushes.length, itemChanged ? 1 : 0, itemChanged ? "one roster push" : "no roster push");
  if (!itemChanged) return;
  const item = pushes[0]!.getChild("query", NS_ROSTER)!.getChild("item")!;
  assert.equal(item.attrs.jid, contact);
  assert.equal(item.attrs.subscription, after.subscription);
  assert.equal(item.attrs.ask, after.ask ? "subscribe" : undefined);
  assert.equal(item.attrs.approved, after.approved ? "true" : undefined);
  assert.equal(item.attrs.name, "Contact");
}

for (const [type, rows] of Object.entries(OUTBOUND) as [Type, OutRow[]][]) {
  for (const [from, sends, to] of rows) {
    const target = to === "=" ? from : to;
    test(`outbound ${type} in "${from}" → ${sends.length ? `sends ${sends.join("+")}` : "nothing sent"}, "${target}"`, async () => {
      const f = await fixture(STATES[from]);
      await f.session.sendStanza(x("presence", { type, to: f.contact, id: "s1" }, x("status", null, "hi")));
      assert.deepEqual(await stateOf(f.user, f.contact), STATES[target]);
      assert.deepEqual(routed.map(kind), sends);
      for (const el of routed) {
        assert.equal(el.attrs.to, f.contact);
        if (el.attrs.type === type) {
          assert.equal(el.attrs.from, f.userJid, "stamped with the user's bare JID");
          assert.equal(el.attrs.id, "s1");
          assert.equal(el.getChildText("status"), "hi");
        } else if (el.attrs.type === "probe") {
          assert.equal(
            el.attrs.from,
            f.userJid,
            "the probe comes from the bare JID: every resource gets the answer",
          );
        } else {
          assert.equal(el.attrs.from, `${f.userJid}/res`, "presence comes from the available resource");
          if (kind(el) === "available") assert.equal(el.getChildText("show"), "chat");
        }
      }
      const got = await take(f.session);
      checkPushes(got, f.contact, STATES[from], STATES[target]);
      assert.equal(got.filter((el) => el.name !== "iq").length, 0, "the client gets nothing but pushes");
      await f.session.disconnect();
    });
  }
}

for (const [type, rows] of Object.entries(INBOUND) as [Type, InRow[]][]) {
  for (const [from, deliver, to, sends = []] of rows) {
    const target = to === "=" ? from : to;
    const what = `${deliver ? "delivered" : "not delivered"}${sends.length ? `, sends ${sends.join("+")}` : ""}`;
    test(`inbound ${type} in "${from}" → ${what}, "${target}"`, async () => {
      const f = await fixture(STATES[from]);
      const stanza = x(
        "presence",
        { type, from: f.contact, to: f.userJid, id: "in1" },
        x("status", null, "hello"),
      );
      await h.server.services.router.deliver(stanza, parseJid(f.contact), parseJid(f.userJid));
      assert.deepEqual(await stateOf(f.user, f.contact), STATES[target]);
      const got = await take(f.session);
      checkPushes(got, f.contact, STATES[from], STATES[target]);
      const presences = got.filter((el) => el.name === "presence");
      if (deliver) {
        assert.equal(presences.length, 1);
        assert.equal(presences[0]!.attrs.type, type);
        assert.equal(presences[0]!.attrs.from, f.contact);
        assert.equal(presences[0]!.getChildText("status"), "hello");
        // §3.1.6, §3.2.3, §3.3.3: delivered before the roster push of the new state.
        const push = got.findIndex((el) => el.name === "iq" && el.attrs.type === "set");
        if (push !== -1)
          assert.ok(got.indexOf(presences[0]!) < push, "the stanza comes before the roster push");
      } else {
        assert.equal(presences.length, 0);
      }
      assert.deepEqual(routed.map(kind), sends);
      for (const el of routed) {
        assert.equal(el.attrs.to, f.contact);
        const fromAccount =
          el.attrs.type === "subscribed" || (type === "subscribe" && el.attrs.type === "unavailable");
        assert.equal(el.attrs.from, fromAccount ? f.userJid : `${f.userJid}/res`);
      }
      await f.session.disconnect();
    });
  }
}

test("a subscription stanza addressed to a full JID is about the bare JID, both ways", async () => {
  const f = await fixture(STATES.None);
  await f.session.sendStanza(x("presence", { type: "subscribe", to: `${f.contact}/phone` }));
  assert.deepEqual(
    routed.map((el) => [el.attrs.from, el.attrs.to]),
    [[f.userJid, f.contact]],
  );
  routed.length = 0;
  await h.server.services.router.deliver(
    x("presence", { type: "subscribe", from: `${f.contact}/phone`, to: `${f.userJid}/res` }),
    parseJid(`${f.contact}/phone`),
    parseJid(`${f.userJid}/res`),
  );
  assert.deepEqual(await stateOf(f.user, f.contact), STATES["None + Pending Out/In"]);
  const pending = await h.server.services.storage.roster.getPending(f.user);
  assert.deepEqual(
    pending.map((p) => p.from),
    [f.contact],
  );
  const [delivered] = (await take(f.session)).filter((el) => el.name === "presence");
  assert.equal(delivered?.attrs.from, f.contact);
  assert.equal(delivered?.attrs.to, f.userJid);
  await f.session.disconnect();
});

test("subscribing to a contact not in the roster adds it with ask, without name or groups", async () => {
  const user = `user${++seq}`;
  await h.createUser(user);
  const s = await h.connect(user, "res");
  await s.iq(x("iq", { type: "get" }, x("query", { xmlns: NS_ROSTER })));
  await s.sendStanza(x("presence", { type: "subscribe", to: `new@${REMOTE}` }));
  const item = await h.server.services.storage.roster.getItem(user, `new@${REMOTE}`);
  assert.deepEqual(item, {
    jid: `new@${REMOTE}`,
    subscription: "none",
    ask: true,
    approved: false,
    groups: [],
  });
  const [push] = await take(s);
  assert.equal(push?.getChild("query", NS_ROSTER)?.getChild("item")?.attrs.ask, "subscribe");
  await s.disconnect();
});

test("an inbound request from a stranger is pending without adding a roster item", async () => {
  const user = `user${++seq}`;
  await h.createUser(user);
  const s = await h.connect(user, "res");
  await s.iq(x("iq", { type: "get" }, x("query", { xmlns: NS_ROSTER })));
  await s.sendStanza(x("presence"));
  await take(s);
  const stranger = `stranger@${REMOTE}`;
  await h.server.services.router.deliver(
    x(
      "presence",
      { type: "subscribe", from: stranger, to: `${user}@${DOMAIN}` },
      x("nick", { xmlns: "http://jabber.org/protocol/nick" }, "Str"),
    ),
    parseJid(stranger),
    parseJid(`${user}@${DOMAIN}`),
  );
  const got = await take(s);
  assert.deepEqual(
    got.map((el) => `${el.name}:${el.attrs.type}`),
    ["presence:subscribe"],
  );
  assert.equal(got[0]!.getChild("nick", "http://jabber.org/protocol/nick")?.text(), "Str");
  assert.equal(await h.server.services.storage.roster.getItem(user, stranger), undefined);
  // Approving it creates the item with subscription "from".
  await s.sendStanza(x("presence", { type: "subscribed", to: stranger }));
  const item = await h.server.services.storage.roster.getItem(user, stranger);
  assert.equal(item?.subscription, "from");
  assert.equal((await h.server.services.storage.roster.getPending(user)).length, 0);
  await s.disconnect();
});

test("a request to an account that does not exist is refused with unsubscribed; other types are dropped", async () => {
  const from = `someone@${REMOTE}`;
  routed.length = 0;
  for (const type of ["subscribe", "subscribed", "unsubscribe", "unsubscribed"]) {
    await h.server.services.router.deliver(
      x("presence", { type, from, to: `nobody@${DOMAIN}` }),
      parseJid(from),
      parseJid(`nobody@${DOMAIN}`),
    );
  }
  assert.deepEqual(
    routed.splice(0).map((el) => [el.attrs.type, el.attrs.from, el.attrs.to]),
    [["unsubscribed", `nobody@${DOMAIN}`, from]],
  );
});

test("subscription stanzas a client cannot send: no 'to', or its own account", async () => {
  const user = `user${++seq}`;
  await h.createUser(user);
  const s = await h.connect(user, "res");
  routed.length = 0;
  await s.sendStanza(x("presence", { type: "subscribe", id: "no-to" }));
  await s.sendStanza(x("presence", { type: "subscribe", id: "self", to: `${user}@${DOMAIN}` }));
  await s.sendStanza(x("presence", { type: "bogus", id: "bogus", to: `x@${REMOTE}` }));
  const got = await take(s);
  const condition = (el: XmlElement) => el.getChild("error")?.elements()[0]?.name;
  assert.deepEqual(
    got.map((el) => [el.attrs.id, el.attrs.type, condition(el)]),
    [
      ["no-to", "error", "bad-request"],
      ["self", "error", "not-allowed"],
      ["bogus", "error", "bad-request"],
    ],
  );
  assert.equal(routed.length, 0);
  assert.equal((await h.server.services.storage.roster.get(user)).items.length, 0);
  await s.disconnect();
});
