import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { defineModule, type ModuleDefinition } from "../../src/core/module.js";
import { verifyPassword } from "../../src/core/sasl/credentials.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import presence from "../../src/modules/presence/index.js";
import register, { NS_REGISTER_FEATURE } from "../../src/modules/register/index.js";
import roster from "../../src/modules/roster/index.js";
import { errorCondition, FakeSession, type Harness, startHarness } from "../kit/harness.js";

const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";

/** Stands in for the presence module: hands presence to local sessions. */
const presenceDelivery = defineModule({
  name: "test-presence-delivery",
  description: "delivers presence stanzas to local sessions",
  setup(ctx) {
    ctx.hook("presence/bare", ({ stanza, to }) => {
      for (const s of ctx.sessions.resourcesOf(to.local)) s.send(stanza);
      return true;
    });
  },
});

const condition = errorCondition;
const query = (...children: XmlElement[]) => x("query", { xmlns: NS_REGISTER }, ...children);
const legacy = (username: string, password: string) =>
  query(x("username", null, username), x("password", null, password));
let seq = 0;
const iq = (type: string, payload?: XmlElement, attrs: Record<string, string> = {}) =>
  x("iq", { type, id: `reg${++seq}`, ...attrs }, payload);

/** A submitted registration form: each field is its name then its values. */
const dataForm = (...fields: [string, ...string[]][]) =>
  x(
    "x",
    { xmlns: NS_DATA, type: "submit" },
    x("field", { var: "FORM_TYPE" }, x("value", null, NS_REGISTER)),
    ...fields.map(([name, ...values]) =>
      x("field", { var: name }, ...values.map((v) => x("value", null, v))),
    ),
  );

/** A stream that has not authenticated yet, from the given address. */
function anonymous(h: Harness, address = "192.0.2.1"): FakeSession {
  const s = new FakeSession(h);
  s.authenticated = false;
  Object.defineProperty(s, "remoteAddress", { value: address });
  return s;
}

/** Sends an IQ on an unauthenticated stream; returns the reply, or undefined if no module claimed it. */
async function preAuth(h: Harness, s: FakeSession, stanza: XmlElement): Promise<XmlElement | undefined> {
  const claimed = await h.server.services.hooks.fireAsync("c2s/unauthenticated-iq", { session: s, stanza });
  return claimed ? s.next() : undefined;
}

async function passwordMatches(h: Harness, username: string, password: string): Promise<boolean> {
  const account = await h.server.services.storage.accounts.get(username);
  assert.ok(account, `${username} exists`);
  return account.credentials.length === 2 && account.credentials.every((c) => verifyPassword(password, c));
}

async function preAuthFeatures(h: Harness, s: FakeSession): Promise<XmlElement[]> {
  const out: XmlElement[] = [];
  for (const p of h.server.services.streamFeatures.forStage("pre-auth")) {
    const offered = await p.offer(s);
    if (offered) out.push(...(Array.isArray(offered) ? offered : [offered]));
  }
  return out;
}

describe("registration disabled (the default)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      modules: [register] as ModuleDefinition<unknown>[],
      config: { modules: { register: { allowPasswordChange: false, allowRemoval: false } } },
    });
    await h.createUser("alice", "old-secret");
  });
  after(() => h.stop());

  test("no stream feature, no disco feature, and service-unavailable for get and set", async () => {
    const s = anonymous(h);
    assert.deepEqual(await preAuthFeatures(h, s), []);
    assert.ok(!h.server.services.disco.getFeatures("host").includes(NS_REGISTER));
    assert.equal(condition((await preAuth(h, s, iq("get", query())))!), "service-unavailable");
    const set = await preAuth(h, s, iq("set", legacy("mallory", "pw")));
    assert.equal(condition(set!), "service-unavailable");
    assert.equal(await h.server.services.storage.accounts.exists("mallory"), false);
  });

  test("password change and removal are not-allowed when disabled", async () => {
    const a = await h.connect("alice", "r");
    const change = await a.iq(iq("set", legacy("alice", "new-secret")));
    assert.equal(condition(change), "not-allowed");
    assert.equal(change.getChild("query"), undefined, "the request (and its password) is not echoed");
    assert.equal(condition(await a.iq(iq("set", query(x("remove"))))), "not-allowed");
    assert.ok(await passwordMatches(h, "alice", "old-secret"));
    await a.disconnect();
  });
});

describe("registration enabled", () => {
  let h: Harness;
  const created: string[] = [];
  const deleted: string[] = [];
  before(async () => {
    h = await startHarness({
      modules: [register, presenceDelivery] as ModuleDefinition<unknown>[],
      config: {
        allowRegistration: true,
        modules: { register: { registrationsPerAddress: 3, windowSeconds: 600, maxPasswordLength: 20 } },
      },
    });
    h.server.services.hooks.on("account/created", ({ username }) => {
      created.push(username);
    });
    h.server.services.hooks.on("account/deleted", ({ username }) => {
      deleted.push(username);
    });
    await h.createUser("taken", "pw");
  });
  after(() => h.stop());

  test("the stream feature and the disco feature are advertised", async () => {
    const features = await preAuthFeatures(h, anonymous(h));
    assert.deepEqual(
      features.map((f) => f.toString()),
      [`<register xmlns="${NS_REGISTER_FEATURE}"/>`],
    );
    assert.ok(h.server.services.disco.getFeatures("host").includes(NS_REGISTER));
  });

  test("the form has instructions, username and password, also as a data form", async () => {
    const reply = (await preAuth(h, anonymous(h), iq("get", query(), { to: "example.test" })))!;
    assert.equal(reply.attrs.type, "result");
    const q = reply.getChild("query", NS_REGISTER)!;
    assert.ok(q.getChildText("instructions"));
    assert.ok(q.getChild("username") && q.getChild("password"));
    const form = q.getChild("x", NS_DATA)!;
    assert.equal(form.attrs.type, "form");
    const vars = form.getChildren("field").map((f) => f.attrs.var);
    assert.deepEqual(vars, ["FORM_TYPE", "username", "password"]);
  });

  test("an account is created with SCRAM credentials for the password", async () => {
    const s = anonymous(h, "192.0.2.10");
    const reply = (await preAuth(h, s, iq("set", legacy("Newbie", "s3cret!"))))!;
    assert.equal(reply.attrs.type, "result");
    assert.equal(reply.elements().length, 0);
    assert.ok(await passwordMatches(h, "newbie", "s3cret!"), "stored under the normalised name");
    assert.ok(!(await passwordMatches(h, "newbie", "wrong")));
    assert.ok(created.includes("newbie"));
    // One account per stream.
    const again = (await preAuth(h, s, iq("set", legacy("second", "pw"))))!;
    assert.equal(condition(again), "not-acceptable");
  });

  test("a submitted data form registers too", async () => {
    const form = x(
      "x",
      { xmlns: NS_DATA, type: "submit" },
      x("field", { var: "FORM_TYPE" }, x("value", null, NS_REGISTER)),
      x("field", { var: "username" }, x("value", null, "formuser")),
      x("field", { var: "password" }, x("value", null, "form-pw")),
    );
    const reply = (await preAuth(h, anonymous(h, "192.0.2.11"), iq("set", query(form))))!;
    assert.equal(reply.attrs.type, "result");
    assert.ok(await passwordMatches(h, "formuser", "form-pw"));
  });

  test("conflicts, missing fields, bad usernames and bad passwords are refused without echoing", async () => {
    const cases: [XmlElement, string][] = [
      [legacy("taken", "pw"), "conflict"],
      [legacy("TAKEN", "pw"), "conflict"],
      [legacy("nopass", ""), "not-acceptable"],
      [query(x("username", null, "onlyname")), "not-acceptable"],
      [legacy("", "pw"), "not-acceptable"],
      [legacy("a b", "pw"), "jid-malformed"],
      [legacy("a@b", "pw"), "jid-malformed"],
      [legacy("ctrl", "bad\u0007password"), "not-acceptable"],
      [query(x("remove")), "unexpected-request"],
      [query(x("username", null, "x"), x("remove")), "bad-request"],
      [
        query(x("username", null, "twice"), x("username", null, "other"), x("password", null, "pw")),
        "bad-request",
      ],
      [
        query(x("username", null, "twice"), x("password", null, "pw"), x("password", null, "pw2")),
        "bad-request",
      ],
      [query(dataForm(["username", "twice"], ["username", "other"], ["password", "pw"])), "bad-request"],
      [query(dataForm(["username", "twice", "other"], ["password", "pw"])), "bad-request"],
      [legacy("long", "p".repeat(100_000)), "not-acceptable"],
      [legacy("long", "\u{1F511}".repeat(21)), "not-acceptable"],
    ];
    for (const [payload, expected] of cases) {
      const reply = (await preAuth(h, anonymous(h, "192.0.2.12"), iq("set", payload)))!;
      assert.equal(condition(reply), expected, payload.toString());
      assert.equal(reply.getChild("query"), undefined, "no payload in errors");
    }
    for (const name of ["nopass", "onlyname", "ctrl", "twice", "other", "long"]) {
      assert.equal(await h.server.services.storage.accounts.exists(name), false, name);
    }
  });

  test("a password of maxPasswordLength characters is accepted, counted in code points", async () => {
    const password = "\u{1F511}".repeat(20); // 40 UTF-16 code units
    const reply = (await preAuth(h, anonymous(h, "192.0.2.14"), iq("set", legacy("longest", password))))!;
    assert.equal(reply.attrs.type, "result");
    assert.ok(await passwordMatches(h, "longest", password));
  });

  test("malformed IQs are bad requests; responses and other namespaces are left alone", async () => {
    const s = anonymous(h, "192.0.2.13");
    const noId = x("iq", { type: "get" }, query());
    assert.equal(condition((await preAuth(h, s, noId))!), "bad-request");
    const wrongElement = iq("get", x("register", { xmlns: NS_REGISTER }));
    assert.equal(condition((await preAuth(h, s, wrongElement))!), "bad-request");
    const twoChildren = x(
      "iq",
      { type: "get", id: "two" },
      query(),
      x("query", { xmlns: "jabber:iq:version" }),
    );
    assert.equal(condition((await preAuth(h, s, twoChildren))!), "bad-request");
    const claimed = await h.server.services.hooks.fireAsync("c2s/unauthenticated-iq", {
      session: s,
      stanza: iq("result", query()),
    });
    assert.equal(claimed, true);
    assert.equal(s.pending().length, 0, "no answer to a response");
    assert.equal(await preAuth(h, s, iq("get", x("query", { xmlns: "jabber:iq:version" }))), undefined);
  });

  test("registrations per address are limited within the window", async () => {
    const address = "198.51.100.7";
    for (const name of ["rate1", "rate2", "rate3"]) {
      const reply = (await preAuth(h, anonymous(h, address), iq("set", legacy(name, "pw"))))!;
      assert.equal(reply.attrs.type, "result", name);
    }
    const refused = (await preAuth(h, anonymous(h, address), iq("set", legacy("rate4", "pw"))))!;
    assert.equal(condition(refused), "not-acceptable");
    assert.equal(refused.getChild("error")!.attrs.type, "wait");
    // Another address is not affected.
    const other = (await preAuth(h, anonymous(h, "198.51.100.8"), iq("set", legacy("rate5", "pw"))))!;
    assert.equal(other.attrs.type, "result");
    h.clock.advance(600_000);
    const later = (await preAuth(h, anonymous(h, address), iq("set", legacy("rate4", "pw"))))!;
    assert.equal(later.attrs.type, "result");
  });

  test("an authenticated account reads its registration", async () => {
    await h.createUser("reader", "pw");
    const s = await h.connect("reader", "r");
    for (const to of [undefined, "example.test", "reader@example.test"]) {
      const reply = await s.iq(iq("get", query(), to ? { to } : {}));
      assert.equal(reply.attrs.type, "result", String(to));
      const q = reply.getChild("query", NS_REGISTER)!;
      assert.ok(q.getChild("registered"));
      assert.equal(q.getChildText("username"), "reader");
      assert.equal(q.getChildText("password"), "");
    }
    assert.equal(condition(await s.iq(iq("get", query(), { to: "taken@example.test" }))), "forbidden");
    await s.disconnect();
  });

  test("password change stores new credentials; bad requests keep the old password", async () => {
    await h.createUser("changer", "first");
    const s = await h.connect("changer", "r");
    assert.equal(
      (await s.iq(iq("set", legacy("changer", "second"), { to: "example.test" }))).attrs.type,
      "result",
    );
    assert.ok(await passwordMatches(h, "changer", "second"));
    // The username may be omitted or given as a bare JID; a data form works as well.
    assert.equal((await s.iq(iq("set", query(x("password", null, "third"))))).attrs.type, "result");
    assert.ok(await passwordMatches(h, "changer", "third"));
    const form = x(
      "x",
      { xmlns: NS_DATA, type: "submit" },
      x("field", { var: "FORM_TYPE" }, x("value", null, "jabber:iq:register:changepassword")),
      x("field", { var: "username" }, x("value", null, "changer@example.test")),
      x("field", { var: "password" }, x("value", null, "fourth")),
    );
    assert.equal((await s.iq(iq("set", query(form)))).attrs.type, "result");
    assert.ok(await passwordMatches(h, "changer", "fourth"));

    const refused: [XmlElement, string, Record<string, string>?][] = [
      [legacy("changer", ""), "bad-request"],
      [query(x("username", null, "changer"), x("password")), "bad-request"],
      [legacy("taken", "stolen"), "forbidden"],
      [legacy("changer", "x"), "forbidden", { to: "taken@example.test" }],
      [legacy("changer", "bad\u0000pw"), "not-acceptable"],
      [legacy("changer", "p".repeat(21)), "not-acceptable"],
      [query(x("password", null, "fifth"), x("password", null, "sixth")), "bad-request"],
    ];
    for (const [payload, expected, attrs] of refused) {
      const reply = await s.iq(iq("set", payload, attrs));
      assert.equal(condition(reply), expected, payload.toString());
      assert.equal(reply.getChild("query"), undefined, "the password is not echoed");
    }
    assert.ok(await passwordMatches(h, "changer", "fourth"));
    assert.ok(await passwordMatches(h, "taken", "pw"));
    // The refusal of a long password says why (its text), as at registration.
    const long = await s.iq(iq("set", legacy("changer", "\u{1F511}".repeat(21))));
    assert.equal(
      long.getChild("error")?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      "the password must have at most 20 characters",
    );
    await s.disconnect();
  });

  test("removal deletes the account, cancels subscriptions and closes every session after the result", async () => {
    await h.createUser("leaver", "pw");
    await h.createUser("friend", "pw");
    const { roster } = h.server.services.storage;
    await roster.setItem("leaver", {
      jid: "friend@example.test",
      subscription: "both",
      ask: false,
      approved: false,
      groups: [],
    });
    const friend = await h.connect("friend", "f");
    const s1 = await h.connect("leaver", "one");
    const s2 = await h.connect("leaver", "two");
    const reply = await s1.iq(iq("set", query(x("remove"))));
    assert.equal(reply.attrs.type, "result");
    assert.equal(s1.closed, false, "the result comes first");
    await new Promise((resolve) => setImmediate(resolve));
    for (const s of [s1, s2]) {
      assert.equal(s.closed, true);
      assert.equal(s.closeError?.condition, "not-authorized");
    }
    assert.equal(await h.server.services.storage.accounts.exists("leaver"), false);
    assert.ok(deleted.includes("leaver"));
    const types = friend
      .pending()
      .filter((el) => el.name === "presence")
      .map((el) => el.attrs.type)
      .sort();
    assert.deepEqual(types, ["unsubscribe", "unsubscribed"]);
    await friend.disconnect();
  });

  test("a removal request with other children is a bad request", async () => {
    await h.createUser("stayer", "pw");
    const s = await h.connect("stayer", "r");
    assert.equal(
      condition(await s.iq(iq("set", query(x("remove"), x("username", null, "stayer"))))),
      "bad-request",
    );
    assert.equal(await h.server.services.storage.accounts.exists("stayer"), true);
    await s.disconnect();
  });
});

test("with the roster and presence modules: a removed account's contacts lose their subscriptions", async () => {
  const h = await startHarness({ modules: [roster, presence, register] as ModuleDefinition<unknown>[] });
  try {
    await h.createUser("leaver");
    await h.createUser("friend");
    const l = await h.connect("leaver", "a");
    const f = await h.connect("friend", "b");
    await l.sendStanza(x("presence"));
    await f.sendStanza(x("presence"));
    await l.sendStanza(x("presence", { type: "subscribe", to: "friend@example.test" }));
    await f.sendStanza(x("presence", { type: "subscribed", to: "leaver@example.test" }));
    await f.sendStanza(x("presence", { type: "subscribe", to: "leaver@example.test" }));
    await l.sendStanza(x("presence", { type: "subscribed", to: "friend@example.test" }));
    const item = () => h.server.services.storage.roster.getItem("friend", "leaver@example.test");
    assert.equal((await item())?.subscription, "both");

    assert.equal((await l.iq(iq("set", query(x("remove"))))).attrs.type, "result");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(l.closed, true);
    assert.equal((await item())?.subscription, "none");
    const last = f.received
      .filter((el) => el.name === "presence" && el.attrs.from === "leaver@example.test/a")
      .at(-1);
    assert.equal(last?.attrs.type, "unavailable");
  } finally {
    await h.stop();
  }
});
