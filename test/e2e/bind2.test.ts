/**
 * Bind 2 (XEP-0386) with stream management inline (XEP-0198 §7), with @xmpp/client at its
 * defaults on a server that offers Bind 2: one SASL2 round trip authenticates, binds a
 * `tag/id` resource and enables stream management (its <enabled/> inside <bound/>, no
 * stream features afterwards); after the connection is cut, the client resumes inside its
 * next <authenticate/> and a message sent meanwhile arrives exactly once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { client, type Element } from "@xmpp/client";
import "../helpers/js-client.js"; // accepts the self-signed certificate for STARTTLS
import { startOnline } from "../../sdk/start-online.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { SmRaw } from "../helpers/sm-raw.js";
import { xml } from "../helpers/stanza.js";

const PW = { alice: "alice-bind2-pw", bob: "bob-bind2-pw" };
const NS_SASL2 = "urn:xmpp:sasl:2";

describe("Bind 2 with stream management inline (@xmpp/client)", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: "bind2", users: PW, config: { bind2: true } });
  });
  after(async () => {
    await server?.stop();
  });

  test("one round trip binds and enables stream management; a cut session is resumed inside SASL2", async () => {
    const xmpp = client({
      service: `xmpp://127.0.0.1:${server.c2sPort}`,
      domain: "localhost",
      resource: "phone",
      timeout: 10_000,
      credentials: (authenticate) => authenticate({ username: "alice", password: PW.alice }, "SCRAM-SHA-1"),
    });
    const successes: Element[] = [];
    const features: Element[] = [];
    const got: Element[] = [];
    xmpp.on("element", (el: Element) => {
      if (el.is("success", NS_SASL2)) successes.push(el);
      else if (el.is("features", "http://etherx.jabber.org/streams")) features.push(el);
    });
    xmpp.on("stanza", (el: Element) => got.push(el));
    xmpp.on("error", () => undefined);
    const bob = await SmRaw.login(server, "bob", PW.bob, "desk");
    try {
      const jid = (await startOnline(xmpp)).toString();
      const bound = successes[0]?.getChild("bound", "urn:xmpp:bind:0");
      assert.ok(bound, `<success/> carries <bound/>: ${successes[0]}`);
      const enabled = bound.getChild("enabled", "urn:xmpp:sm:3");
      assert.ok(enabled, `stream management enabled inside <bound/>: ${bound}`);
      assert.equal(enabled.attrs.resume, "true");
      assert.match(jid, /^alice@localhost\/phone\/[\w-]{6,}$/, "a tag/id resource");
      assert.equal(successes[0]!.getChildText("authorization-identifier"), jid, "the full JID in <success/>");
      assert.ok(
        features.every((f) => !f.getChild("bind", "urn:ietf:params:xml:ns:xmpp-bind")),
        "no post-authentication features after a Bind 2 <success/>",
      );
      assert.ok(xmpp.streamManagement.enabled && xmpp.streamManagement.id === enabled.attrs.id);

      await xmpp.send(xml("presence"));
      bob.raw.write(`<message to='${jid}' type='chat' id='b1'><body>bind2-before</body></message>`);
      await waitUntil(() => bodies(got, "bind2-before") === 1, "the first message");

      const resumed = new Promise<void>((r) => xmpp.streamManagement.once("resumed", () => r()));
      const disconnected = new Promise<void>((r) => xmpp.once("disconnect", () => r()));
      const wrapper = (xmpp as unknown as { socket: { socket?: { destroy(): void }; destroy(): void } })
        .socket;
      (wrapper.socket ?? wrapper).destroy();
      await disconnected;
      bob.raw.write(`<message to='${jid}' type='chat' id='b2'><body>bind2-away</body></message>`);
      await bob.sync();
      await withTimeout(resumed, 20_000, "@xmpp/client resumes");
      const second = successes[1];
      assert.ok(second?.getChild("resumed", "urn:xmpp:sm:3"), `resumed inside <success/>: ${second}`);
      assert.equal(second.getChild("bound", "urn:xmpp:bind:0"), undefined, "no new binding on resumption");
      assert.equal(second.getChildText("authorization-identifier"), jid, "the same full JID");
      await waitUntil(() => bodies(got, "bind2-away") === 1, "the message sent while away");
      await xmpp.iqCaller.request(
        xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      );
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(bodies(got, "bind2-away"), 1, "exactly once");
      assert.equal(bodies(got, "bind2-before"), 1, "the acknowledged one is not sent again");
    } finally {
      xmpp.reconnect.stop();
      await xmpp.stop().catch(() => undefined);
      await bob.closeCleanly();
    }
  });
});

function bodies(got: Element[], body: string): number {
  return got.filter((el) => el.name === "message" && el.getChildText("body") === body).length;
}

async function waitUntil(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms);
    }),
  ]);
}
