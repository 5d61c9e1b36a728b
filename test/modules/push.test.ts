/**
 * Push notifications (XEP-0357) on the in-process harness: enable/disable and their
 * errors, the registrations in storage, a notification published to the app server for a
 * message to an account with no connection (summary form, publish options, no body unless
 * configured), an error answer disabling the registration.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { parseJid } from "../../src/core/jid.js";
import { defineModule, type ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import message from "../../src/modules/message/index.js";
import offline from "../../src/modules/offline/index.js";
import push from "../../src/modules/push/index.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

const NS_PUSH = "urn:xmpp:push:0";
const APP = "push.app.test";

/** A stand-in app server on its own domain: records publishes, answers as told. */
function appServer(received: XmlElement[], answer: { type: "result" | "error" }) {
  return defineModule({
    name: "test-app-server",
    description: "records push publishes",
    setup(ctx) {
      ctx.addRoute(APP, {
        kind: "service",
        deliver(stanza, from) {
          received.push(stanza);
          const reply = x("iq", { type: answer.type, id: stanza.attrs.id, from: APP, to: from.toString() });
          if (answer.type === "error")
            reply.append(
              x(
                "error",
                { type: "cancel" },
                x("item-not-found", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }),
              ),
            );
          return ctx.router.deliver(reply, parseJid(APP), from);
        },
      });
    },
  });
}

function enable(node: string, secret?: string): XmlElement {
  return x(
    "iq",
    { type: "set" },
    x(
      "enable",
      { xmlns: NS_PUSH, jid: APP, node },
      secret !== undefined &&
        x(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          x(
            "field",
            { var: "FORM_TYPE" },
            x("value", null, "http://jabber.org/protocol/pubsub#publish-options"),
          ),
          x("field", { var: "secret" }, x("value", null, secret)),
        ),
    ),
  );
}

function fields(form: XmlElement | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of form?.getChildren("field") ?? [])
    out[f.attrs.var!] = f.getChildren("value").map((v) => v.text());
  return out;
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function harnessWith(received: XmlElement[], answer: { type: "result" | "error" }, config = {}) {
  return startHarness({
    modules: [message, offline, push, appServer(received, answer)] as ModuleDefinition<unknown>[],
    config,
  });
}

describe("push notifications (XEP-0357)", () => {
  let h: Harness;
  const received: XmlElement[] = [];
  const answer = { type: "result" as "result" | "error" };
  before(async () => {
    h = await harnessWith(received, answer);
    for (const u of ["romeo", "juliet", "nurse"]) await h.createUser(u);
  });
  after(() => h.stop());
  beforeEach(() => {
    received.length = 0;
    answer.type = "result";
  });

  test("enable needs a valid service jid and a publish-options form; another account cannot enable for you", async () => {
    const s = await h.connect("romeo", "phone");
    const noJid = await s.iq(x("iq", { type: "set" }, x("enable", { xmlns: NS_PUSH, node: "n" })));
    assert.equal(errorCondition(noJid), "bad-request");
    const badJid = await s.iq(
      x("iq", { type: "set" }, x("enable", { xmlns: NS_PUSH, jid: "a@@b", node: "n" })),
    );
    assert.equal(errorCondition(badJid), "jid-malformed");
    const wrongForm = await s.iq(
      x(
        "iq",
        { type: "set" },
        x(
          "enable",
          { xmlns: NS_PUSH, jid: APP, node: "n" },
          x(
            "x",
            { xmlns: "jabber:x:data", type: "submit" },
            x("field", { var: "FORM_TYPE" }, x("value", null, "urn:other")),
          ),
        ),
      ),
    );
    assert.equal(errorCondition(wrongForm), "bad-request");
    const forOther = enable("n");
    forOther.attrs.to = `juliet@${h.domain}`;
    assert.equal(errorCondition(await s.iq(forOther)), "forbidden");
    await s.disconnect();
  });

  test("the account's own JID, bare or full, is not accepted as its push service", async () => {
    const s = await h.connect("romeo", "phone");
    for (const jid of [
      `romeo@${h.domain}`,
      `romeo@${h.domain}/phone`,
      `ROMEO@${h.domain.toUpperCase()}/other`,
    ]) {
      const reply = await s.iq(x("iq", { type: "set" }, x("enable", { xmlns: NS_PUSH, jid, node: "n" })));
      assert.equal(errorCondition(reply), "not-acceptable", jid);
    }
    assert.equal(await h.server.services.storage.documents("push").get(`romeo@${h.domain}`), undefined);
    await s.disconnect();
  });

  test("a message to an account with no connection is published with the summary form and the publish options, without the body", async () => {
    const s = await h.connect("juliet", "phone");
    assert.equal((await s.iq(enable("node-1", "s3cret"))).attrs.type, "result");
    await s.disconnect();
    const stored = await h.server.services.storage
      .documents<{ registrations: unknown[] }>("push")
      .get(`juliet@${h.domain}`);
    assert.equal(stored?.registrations.length, 1, "the registration is in storage");

    const romeo = await h.connect("romeo", "desk");
    await romeo.sendStanza(
      x("message", { to: `juliet@${h.domain}`, type: "chat" }, x("body", null, "Wherefore art thou")),
    );
    await waitFor(() => received.length === 1, "one publish");
    const iq = received[0]!;
    assert.equal(iq.attrs.type, "set");
    assert.equal(iq.attrs.to, APP);
    const pubsub = iq.getChild("pubsub", "http://jabber.org/protocol/pubsub")!;
    assert.equal(pubsub.getChild("publish")!.attrs.node, "node-1");
    const notification = pubsub.getChild("publish")!.getChild("item")!.getChild("notification", NS_PUSH)!;
    const summary = fields(notification.getChild("x", "jabber:x:data"));
    assert.deepEqual(summary.FORM_TYPE, ["urn:xmpp:push:summary"]);
    assert.deepEqual(summary["message-count"], ["1"]);
    assert.deepEqual(summary["last-message-sender"], [`romeo@${h.domain}/desk`]);
    assert.equal(summary["last-message-body"], undefined, "no body unless push.includeBody");
    assert.ok(!iq.toString().includes("Wherefore"), "the text is nowhere in the notification");
    const options = fields(pubsub.getChild("publish-options")!.getChild("x", "jabber:x:data"));
    assert.deepEqual(options.secret, ["s3cret"]);

    await romeo.sendStanza(
      x("message", { to: `juliet@${h.domain}`, type: "chat" }, x("body", null, "again")),
    );
    await waitFor(() => received.length === 2, "a second publish");
    const second = fields(
      received[1]!
        .getChild("pubsub")!
        .getChild("publish")!
        .getChild("item")!
        .getChild("notification")!
        .getChild("x"),
    );
    assert.deepEqual(second["message-count"], ["2"], "counted since the account was last connected");

    // Chat states alone wake nobody.
    await romeo.sendStanza(
      x(
        "message",
        { to: `juliet@${h.domain}`, type: "chat" },
        x("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 2);
    await romeo.disconnect();
  });

  test("an error from the app server disables the registration; disable removes it", async () => {
    const s = await h.connect("nurse", "phone");
    assert.equal((await s.iq(enable("a"))).attrs.type, "result");
    assert.equal((await s.iq(enable("b"))).attrs.type, "result");
    const disable = x("iq", { type: "set" }, x("disable", { xmlns: NS_PUSH, jid: APP, node: "b" }));
    assert.equal((await s.iq(disable)).attrs.type, "result");
    await s.disconnect();
    answer.type = "error";
    const romeo = await h.connect("romeo", "sender");
    await romeo.sendStanza(x("message", { to: `nurse@${h.domain}`, type: "chat" }, x("body", null, "one")));
    await waitFor(() => received.length === 1, "a publish to node a only");
    assert.equal(received[0]!.getChild("pubsub")!.getChild("publish")!.attrs.node, "a");
    await waitFor(() => h.server.services.storage !== undefined, "");
    const docs = h.server.services.storage.documents<{ registrations: unknown[] }>("push");
    for (let i = 0; i < 100 && (await docs.get(`nurse@${h.domain}`)) !== undefined; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(await docs.get(`nurse@${h.domain}`), undefined, "disabled after the error");
    answer.type = "result";
    await romeo.sendStanza(x("message", { to: `nurse@${h.domain}`, type: "chat" }, x("body", null, "two")));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 1, "nothing more is published");
    await romeo.disconnect();
  });
});

describe("push notifications with push.includeBody", () => {
  let h: Harness;
  const received: XmlElement[] = [];
  before(async () => {
    h = await harnessWith(received, { type: "result" }, { push: { includeBody: true, maxBodyChars: 5 } });
    for (const u of ["romeo", "juliet"]) await h.createUser(u);
  });
  after(() => h.stop());

  test("the text goes in last-message-body, cut at maxBodyChars", async () => {
    const s = await h.connect("juliet", "phone");
    await s.iq(enable("n"));
    await s.disconnect();
    const romeo = await h.connect("romeo", "desk");
    await romeo.sendStanza(
      x("message", { to: `juliet@${h.domain}`, type: "chat" }, x("body", null, "Wherefore")),
    );
    await waitFor(() => received.length === 1, "a publish");
    const form = received[0]!
      .getChild("pubsub")!
      .getChild("publish")!
      .getChild("item")!
      .getChild("notification")!
      .getChild("x");
    assert.deepEqual(fields(form)["last-message-body"], ["Where"]);
    await romeo.disconnect();
  });
});
