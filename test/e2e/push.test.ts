/**
 * Push notifications (XEP-0357) against the real server, with a test app server attached
 * as an external component (XEP-0114): a client enables push with publish options, its
 * connection drops while stream management keeps its session (the phone asleep), and a
 * message for it makes the server publish to the app server: the summary form with the
 * count and the sender, the options, no text. An account with no connection is notified the
 * same way; an error from the app server disables the registration.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { cli } from "../helpers/licensed-setup.js";
import { RawConnection } from "../helpers/raw-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { SmRaw } from "../helpers/sm-raw.js";
import { type Element, parseXml } from "../helpers/stanza.js";

const APP = "push.localhost";
const SECRET = "the-app-servers-component-secret";
const PW = { alice: "alice-push-pw", bob: "bob-push-pw", carol: "carol-push-pw" };
const NS_PUSH = "urn:xmpp:push:0";

/** The app server: a component that records every publish and answers with `answer`. */
class AppServer {
  readonly publishes: Element[] = [];
  answer: "result" | "error" = "result";
  private constructor(private readonly c: RawConnection) {}

  static async connect(server: TestServer, port: number): Promise<AppServer> {
    const c = await RawConnection.connect({ host: server.host, port, label: "app server component" });
    c.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${APP}'>`,
    );
    const m = await c.waitFor(/<stream:stream[^>]*\bid=['"]([^'"]+)['"][^>]*>/, "the server's stream header");
    c.write(`<handshake>${createHash("sha1").update(`${m[1]}${SECRET}`).digest("hex")}</handshake>`);
    await c.waitFor(/<handshake\s*\/>|<handshake><\/handshake>/, "the handshake's answer");
    const app = new AppServer(c);
    void app.serve();
    return app;
  }

  private async serve(): Promise<void> {
    for (;;) {
      let m: RegExpExecArray;
      try {
        m = await this.c.waitFor(/<iq\b[^>]*>[\s\S]*?<\/iq>/, "a publish", 3_600_000);
      } catch {
        return;
      }
      const iq = parseXml(m[0]);
      this.publishes.push(iq);
      const reply =
        this.answer === "result"
          ? `<iq type='result' id='${iq.attrs.id}' from='${APP}' to='${iq.attrs.from}'/>`
          : `<iq type='error' id='${iq.attrs.id}' from='${APP}' to='${iq.attrs.from}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`;
      this.c.write(reply);
    }
  }

  async next(count: number): Promise<Element> {
    const deadline = Date.now() + 10_000;
    while (this.publishes.length < count) {
      if (Date.now() > deadline)
        throw new Error(`the app server got ${this.publishes.length} publishes, expected ${count}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.publishes[count - 1]!;
  }

  close(): void {
    this.c.destroy();
  }
}

function summaryOf(iq: Element): Record<string, string[]> {
  const form = iq
    .getChild("pubsub", "http://jabber.org/protocol/pubsub")
    ?.getChild("publish")
    ?.getChild("item")
    ?.getChild("notification", NS_PUSH)
    ?.getChild("x", "jabber:x:data");
  const out: Record<string, string[]> = {};
  for (const f of form?.getChildren("field") ?? [])
    out[f.attrs.var!] = f.getChildren("value").map((v) => v.getText());
  return out;
}

async function enablePush(c: SmRaw, node: string): Promise<void> {
  c.raw.write(
    `<iq type='set' id='push-${node}'><enable xmlns='${NS_PUSH}' jid='${APP}' node='${node}'>` +
      "<x xmlns='jabber:x:data' type='submit'>" +
      "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
      `<field var='secret'><value>secret-of-${node}</value></field></x></enable></iq>`,
  );
  const reply = await c.raw.stanzaWithId("iq", `push-${node}`, "the answer to <enable/>");
  assert.equal(reply.attrs.type, "result", reply.toString());
}

describe("push notifications (XEP-0357) to an app server component", () => {
  let server: TestServer;
  let app: AppServer;
  before(async () => {
    const [port] = (await freePorts(1)) as [number];
    server = await startServer({ name: "push", users: PW, extraArgs: ["--component-port", String(port)] });
    await cli(server, ["component", "add", APP, "--secret", SECRET]);
    app = await AppServer.connect(server, port);
  });
  after(async () => {
    app?.close();
    await server?.stop();
  });

  test("a message for a hibernated session is published to the app server: summary form, publish options, no body", async () => {
    const alice = await SmRaw.login(server, "alice", PW.alice, "phone");
    const bob = await SmRaw.login(server, "bob", PW.bob, "desk");
    try {
      await alice.enable({ resume: true });
      await enablePush(alice, "alice-node");
      alice.cut();
      // The phone is asleep: stream management keeps its session; a message arrives for it.
      await new Promise((r) => setTimeout(r, 200));
      bob.raw.write(
        "<message to='alice@localhost' type='chat' id='p1'><body>wake up, alice</body></message>",
      );
      const iq = await app.next(1);
      assert.equal(iq.attrs.to, APP);
      assert.equal(iq.attrs.from, "localhost");
      const pubsub = iq.getChild("pubsub", "http://jabber.org/protocol/pubsub")!;
      assert.equal(pubsub.getChild("publish")?.attrs.node, "alice-node");
      const summary = summaryOf(iq);
      assert.deepEqual(summary.FORM_TYPE, ["urn:xmpp:push:summary"]);
      assert.deepEqual(summary["message-count"], ["1"]);
      assert.deepEqual(summary["last-message-sender"], ["bob@localhost/desk"]);
      assert.ok(!iq.toString().includes("wake up"), "no message text by default");
      const options = pubsub.getChild("publish-options")?.getChild("x", "jabber:x:data");
      const secret = options?.getChildren("field").find((f) => f.attrs.var === "secret");
      assert.equal(secret?.getChildText("value"), "secret-of-alice-node");
    } finally {
      alice.cut();
      await bob.closeCleanly();
    }
  });

  test("an account with no connection is notified; an error from the app server disables the registration", async () => {
    const carol = await SmRaw.login(server, "carol", PW.carol, "phone");
    await enablePush(carol, "carol-node");
    await carol.closeCleanly();
    const bob = await SmRaw.login(server, "bob", PW.bob, "desk2");
    try {
      const before = app.publishes.length;
      app.answer = "error";
      bob.raw.write("<message to='carol@localhost' type='chat' id='c1'><body>first</body></message>");
      const iq = await app.next(before + 1);
      assert.equal(iq.getChild("pubsub")?.getChild("publish")?.attrs.node, "carol-node");
      assert.deepEqual(summaryOf(iq)["message-count"], ["1"]);
      // The error disabled carol's registration: the next message is not published.
      await new Promise((r) => setTimeout(r, 500));
      app.answer = "result";
      bob.raw.write("<message to='carol@localhost' type='chat' id='c2'><body>second</body></message>");
      await bob.sync();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(app.publishes.length, before + 1, "no publish after the error");
      // Both messages wait in offline storage all the same.
      const back = await SmRaw.login(server, "carol", PW.carol, "back");
      await back.raw.waitFor(/second/, "the offline messages");
      assert.equal(back.count("<body>first</body>"), 1);
      await back.closeCleanly();
    } finally {
      await bob.closeCleanly();
    }
  });
});
