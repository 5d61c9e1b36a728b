/**
 * FAST (XEP-0484) with @xmpp/client at its defaults: a login with the password over SASL2
 * asks for a token (the client does so by itself when it has none) and gets it in the
 * <success/>; after a disconnection the client logs in again with the token only — no
 * password given to it — in one round trip with HT-SHA-256-NONE, and checks the server's
 * HMAC in the additional data. The client keeps its token and user-agent id across the two
 * client objects as an app keeps them across restarts.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { client, type Element, type FastToken } from "@xmpp/client";
import "../helpers/js-client.js"; // accepts the self-signed certificate for STARTTLS
import { startOnline } from "../../sdk/start-online.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { xml } from "../helpers/stanza.js";

const PW = { alice: "alice-fast-pw" };
const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_FAST = "urn:xmpp:fast:0";

type SavedToken = FastToken;

/** An @xmpp/client for alice with this user-agent id, recording what it sends and receives. */
function aliceClient(server: TestServer, agentId: string, password: string | undefined) {
  const xmpp = client({
    service: `xmpp://127.0.0.1:${server.c2sPort}`,
    domain: "localhost",
    username: "alice",
    password,
    resource: "phone",
    timeout: 10_000,
    userAgent: xml("user-agent", { id: agentId }, xml("software", {}, "fast e2e")),
  });
  const sent: Element[] = [];
  const received: Element[] = [];
  xmpp.on("send", (el: Element) => sent.push(el));
  xmpp.on("element", (el: Element) => received.push(el));
  xmpp.on("error", () => undefined);
  xmpp.reconnect.stop();
  return { xmpp, sent, received };
}

describe("FAST token login (@xmpp/client)", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: "fast", users: PW });
  });
  after(async () => {
    await server?.stop();
  });

  test("a password login gets a token; the next connection logs in with the token alone (FAST reconnect)", async () => {
    const agentId = randomUUID();
    let saved: SavedToken | undefined;

    const first = aliceClient(server, agentId, PW.alice);
    first.xmpp.fast.saveToken = async (t: SavedToken) => {
      saved = t;
    };
    try {
      const jid = await startOnline(first.xmpp);
      assert.equal(jid.bare().toString(), "alice@localhost");
    } finally {
      await first.xmpp.stop().catch(() => undefined);
    }
    const features = first.received.find((el) => el.getChild("authentication", NS_SASL2));
    const fast = features
      ?.getChild("authentication", NS_SASL2)
      ?.getChild("inline")
      ?.getChild("fast", NS_FAST);
    assert.ok(fast, `FAST offered inside SASL2: ${features}`);
    assert.ok(
      fast.getChildren("mechanism").some((m: Element) => m.text() === "HT-SHA-256-NONE"),
      `HT-SHA-256-NONE offered: ${fast}`,
    );
    const passwordAuth = first.sent.find((el) => el.is("authenticate", NS_SASL2));
    assert.ok(passwordAuth, "the client authenticated with SASL2");
    assert.doesNotMatch(passwordAuth.attrs.mechanism ?? "", /^HT-/, "the first login uses the password");
    assert.ok(
      passwordAuth.getChild("request-token", NS_FAST),
      `the client asked for a token: ${passwordAuth}`,
    );
    const success = first.received.find((el) => el.is("success", NS_SASL2));
    const issued = success?.getChild("token", NS_FAST);
    assert.ok(issued, `a token in <success/>: ${success}`);
    assert.ok(saved, "the client kept the token");
    assert.equal(saved.token, issued.attrs.token);
    assert.equal(saved.mechanism, "HT-SHA-256-NONE");
    const expiry = Date.parse(saved.expiry);
    assert.ok(expiry > Date.now() + 20 * 86_400_000, `expires in about 21 days: ${saved.expiry}`);

    // A new client object without the password: it has only the stored token and its id.
    const token = saved;
    const second = aliceClient(server, agentId, undefined);
    second.xmpp.fast.fetchToken = async () => token;
    try {
      const jid = await startOnline(second.xmpp);
      assert.equal(jid.bare().toString(), "alice@localhost");
      const pong = await second.xmpp.iqCaller.request(
        xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      );
      assert.equal(pong.attrs.type, "result", "the session works");
    } finally {
      await second.xmpp.stop().catch(() => undefined);
    }
    const auths = second.sent.filter((el) => el.is("authenticate", NS_SASL2));
    assert.equal(auths.length, 1, "one attempt");
    assert.equal(auths[0]!.attrs.mechanism, "HT-SHA-256-NONE");
    assert.ok(auths[0]!.getChild("fast", NS_FAST), "with <fast/>");
    const fastSuccess = second.received.find((el) => el.is("success", NS_SASL2));
    assert.ok(fastSuccess?.getChild("additional-data"), "the server proves it knows the token too");
    assert.equal(second.received.filter((el) => el.is("challenge", NS_SASL2)).length, 0, "one round trip");
  });
});
