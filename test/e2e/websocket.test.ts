/**
 * XMPP over WebSocket (RFC 7395) against the real server: @xmpp/client logs in over
 * ws:// and chats with slixmpp on TCP; the connection shows in the metrics; discovery
 * documents (XEP-0156); the framing rules (one complete element per message, <open/>
 * first, <close/> both ways, the stream restart after SASL), the stanza size limit, the
 * subprotocol and the TLS rule (loopback, a trusted proxy's X-Forwarded-Proto).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { JsPeer } from "../helpers/js-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { is, newId, xml } from "../helpers/stanza.js";
import { connectWs, RawWs, startWsServer, type WsServer } from "../helpers/ws-client.js";

const PW = { alice: "alice-ws-pw", bob: "bob-ws-pw" };
const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const OPEN = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;
const MAX_STANZA = 16_384;

function plainAuth(user: string, password: string): string {
  const payload = Buffer.from(`\0${user}\0${password}`).toString("base64");
  return `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${payload}</auth>`;
}

/** The stream error condition in a message, if it is one. */
function streamErrorCondition(text: string): string | undefined {
  if (!text.startsWith("<stream:error")) return undefined;
  return /<([a-z-]+) xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(text)?.[1];
}

/** Expects the stream to end with a stream error of `condition`, then <close/>, then the WebSocket close. */
async function expectStreamError(raw: RawWs, condition: string, what: string): Promise<void> {
  const err = await raw.waitFor(/^<stream:error/, what);
  assert.equal(streamErrorCondition(err.text), condition, `${what}: ${err.text}`);
  assert.match(
    err.text,
    /xmlns:stream=['"]http:\/\/etherx\.jabber\.org\/streams['"]/,
    "the message declares the stream prefix",
  );
  await raw.waitFor(
    new RegExp(`^<close xmlns=['"]${FRAMING}['"]`),
    `${what}: <close/> after the error`,
    err.index + 1,
  );
  const { code } = await raw.closed;
  assert.equal(code, 1000, `${what}: the server closes the WebSocket normally`);
}

describe("XMPP over WebSocket", () => {
  let web: WsServer;

  before(async () => {
    web = await startWsServer({
      name: "websocket",
      users: PW,
      extraArgs: ["--max-stanza-size", String(MAX_STANZA)],
    });
  });
  after(async () => {
    await web?.server.stop();
  });

  test("@xmpp/client logs in over ws:// on loopback; PLAIN is offered (loopback counts as secure), STARTTLS is not", async () => {
    const alice = await connectWs(web.wsUrl, { user: "alice", password: PW.alice, resource: "ws" });
    try {
      assert.equal(alice.jid, "alice@localhost/ws");
      assert.ok(alice.offeredMechanisms.includes("PLAIN"), `offered: ${alice.offeredMechanisms}`);
      const first = alice.features[0]!.toString();
      assert.doesNotMatch(first, /starttls/, "no STARTTLS over WebSocket (RFC 7395 §3.9)");
      await alice.sync();
    } finally {
      await alice.close();
    }
    const plain = await connectWs(web.wsUrl, {
      user: "bob",
      password: PW.bob,
      resource: "p",
      mechanism: "PLAIN",
    });
    await plain.close();
  });

  describe("with a TCP client", { skip: slixSkip }, () => {
    let alice: JsPeer;
    let bob: SlixPeer;
    before(async () => {
      alice = await connectWs(web.wsUrl, { user: "alice", password: PW.alice, resource: "browser" });
      bob = await connectSlix(web.server, { user: "bob", password: PW.bob, resource: "desk" });
      await alice.send(xml("presence"));
      await bob.command("presence");
    });
    after(async () => {
      await alice?.close();
      await bob?.close();
    });

    test("messages go both ways between WebSocket and TCP", async () => {
      await alice.send(
        xml("message", { to: bob.jid, type: "chat", id: newId() }, xml("body", {}, "over websocket")),
      );
      const got = await bob.next(is.message({ body: "over websocket" }), "alice's message on TCP");
      assert.equal(got.attrs.from, alice.jid);
      await bob.command("message", { to: "alice@localhost", body: "over tcp" });
      const back = await alice.next(is.message({ body: "over tcp" }), "bob's message on WebSocket");
      assert.equal(back.attrs.from, bob.jid);
    });

    test('the WebSocket connection is counted in switchboard_c2s_connections{transport="websocket"}', async () => {
      const text = await (await fetch(`${web.baseUrl}/metrics`)).text();
      const ws = /^switchboard_c2s_connections\{transport="websocket"\} (\d+)$/m.exec(text);
      const tcp = /^switchboard_c2s_connections\{transport="tls"\} (\d+)$/m.exec(text);
      assert.ok(
        ws,
        `no websocket figure in:\n${text
          .split("\n")
          .filter((l) => l.includes("c2s_conn"))
          .join("\n")}`,
      );
      assert.equal(Number(ws[1]), 1, "alice's WebSocket connection");
      assert.equal(Number(tcp?.[1]), 1, "bob's TLS connection");
    });
  });

  test("host-meta (XRD) and host-meta.json (JRD) name the endpoint, readable from any origin", async () => {
    const xrd = await fetch(`${web.baseUrl}/.well-known/host-meta`);
    assert.equal(xrd.status, 200);
    assert.match(xrd.headers.get("content-type") ?? "", /^application\/xrd\+xml/);
    assert.equal(xrd.headers.get("access-control-allow-origin"), "*");
    const body = await xrd.text();
    assert.match(body, /<XRD xmlns='http:\/\/docs\.oasis-open\.org\/ns\/xri\/xrd-1\.0'>/);
    assert.match(body, new RegExp(`<Link rel='urn:xmpp:alt-connections:websocket' href='${web.wsUrl}'/>`));
    const jrd = await fetch(`${web.baseUrl}/.well-known/host-meta.json`);
    assert.match(jrd.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(jrd.headers.get("access-control-allow-origin"), "*");
    assert.deepEqual(await jrd.json(), {
      links: [{ rel: "urn:xmpp:alt-connections:websocket", href: web.wsUrl }],
    });
  });

  test("the server's <open/> and features follow RFC 7395; <close/> is answered with <close/> and a normal close", async () => {
    const raw = await RawWs.open(web.wsUrl);
    assert.equal(raw.ws.protocol, "xmpp", "the server selects the xmpp subprotocol");
    const { open, features } = await raw.openStream();
    assert.match(
      open,
      new RegExp(`^<open xmlns='${FRAMING}' id='[^']+' from='localhost' version='1\\.0' xml:lang='en'/>$`),
    );
    assert.match(features, /<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">/);
    raw.send(`<close xmlns='${FRAMING}'/>`);
    await raw.waitFor(new RegExp(`^<close xmlns='${FRAMING}'/>$`), "the server's <close/>");
    assert.equal((await raw.closed).code, 1000);
  });

  test("stream restart after SASL (RFC 7395 §3.7): a new <open/>, a new stream id, the bind features; stanzas carry jabber:client", async () => {
    const raw = await RawWs.open(web.wsUrl);
    const first = await raw.openStream();
    raw.send(plainAuth("alice", PW.alice));
    const ok = await raw.waitFor(/^<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/, "SASL success");
    const second = await raw.openStream(ok.index + 1);
    const id1 = /id='([^']+)'/.exec(first.open)![1];
    const id2 = /id='([^']+)'/.exec(second.open)![1];
    assert.notEqual(id1, id2, "a restarted stream gets a new id");
    assert.match(second.features, /<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
    raw.send(
      "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>raw</resource></bind></iq>",
    );
    const bound = await raw.waitFor(/id="b1"/, "the bind result");
    assert.match(
      bound.text,
      /^<iq xmlns='jabber:client' type="result" id="b1">/,
      "a stanza declares jabber:client",
    );
    assert.match(bound.text, /<jid>alice@localhost\/raw<\/jid>/);
    raw.send(`<close xmlns='${FRAMING}'/>`);
    assert.equal((await raw.closed).code, 1000);
  });

  test("after SASL success, anything but a new <open/> is refused", async () => {
    const raw = await RawWs.open(web.wsUrl);
    await raw.openStream();
    raw.send(plainAuth("alice", PW.alice));
    await raw.waitFor(/^<success /, "SASL success");
    raw.send(
      "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    await expectStreamError(raw, "invalid-namespace", "an IQ instead of <open/>");
  });

  test("a stanza larger than limits.maxStanzaBytes is a policy-violation", async () => {
    const raw = await RawWs.open(web.wsUrl);
    await raw.openStream();
    raw.send(
      `<message xmlns='jabber:client' to='bob@localhost'><body>${"x".repeat(MAX_STANZA + 100)}</body></message>`,
    );
    await expectStreamError(raw, "policy-violation", "an oversized stanza");
  });

  test("a message far beyond the limit is cut off by the WebSocket layer (1009) without being buffered", async () => {
    const raw = await RawWs.open(web.wsUrl);
    await raw.openStream();
    const logFrom = readFileSync(web.server.logFile, "utf8").length;
    raw.send(`<message xmlns='jabber:client'><body>${"x".repeat(MAX_STANZA * 3)}</body></message>`);
    assert.equal((await raw.closed).code, 1009);
    // The client's fault: no error (level 50) with a stack trace in the server's log.
    await new Promise((r) => setTimeout(r, 200));
    const logged = readFileSync(web.server.logFile, "utf8").slice(logFrom);
    assert.doesNotMatch(logged, /"level":50/, logged);
  });

  const framingErrors: [string, string, (raw: RawWs) => void][] = [
    [
      "two elements in one message",
      "not-well-formed",
      (r) => r.send("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>"),
    ],
    ["half an element", "not-well-formed", (r) => r.send("<presence xmlns='jabber:client'>")],
    ["an element and text", "not-well-formed", (r) => r.send("<presence xmlns='jabber:client'/>junk")],
    ["ill-formed XML", "not-well-formed", (r) => r.send("<presence xmlns='jabber:client'></message>")],
    ["a second <open/>", "not-well-formed", (r) => r.send(OPEN)],
    [
      "an RFC 6120 stream header",
      "not-well-formed",
      (r) =>
        r.send(
          "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
        ),
    ],
    [
      "a binary message",
      "unsupported-encoding",
      (r) => r.send(Buffer.from("<presence xmlns='jabber:client'/>"), true),
    ],
    ["a comment", "restricted-xml", (r) => r.send("<!-- hello --><presence xmlns='jabber:client'/>")],
  ];
  for (const [what, condition, send] of framingErrors) {
    test(`framing: ${what} → <${condition}/>`, async () => {
      const raw = await RawWs.open(web.wsUrl);
      await raw.openStream();
      send(raw);
      await expectStreamError(raw, condition, what);
    });
  }

  test("framing: an element before <open/> → <invalid-namespace/>", async () => {
    const raw = await RawWs.open(web.wsUrl);
    raw.send("<presence xmlns='jabber:client'/>");
    await expectStreamError(raw, "invalid-namespace", "a stanza before <open/>");
  });

  test("whitespace-only messages are ignored", async () => {
    const raw = await RawWs.open(web.wsUrl);
    raw.send(" \n");
    const { features } = await raw.openStream();
    assert.match(features, /mechanisms/);
    raw.terminate();
  });

  test("an upgrade without the xmpp subprotocol is refused with a problem document", async () => {
    await assert.rejects(
      RawWs.open(web.wsUrl, { protocols: ["chat"] }),
      (err: Error & { status?: number; body?: string }) => {
        assert.equal(err.status, 400);
        assert.match(err.body ?? "", /xmpp.*subprotocol/);
        return true;
      },
    );
    const plain = await fetch(`${web.baseUrl}/xmpp-websocket`);
    assert.equal(plain.status, 400, "a plain GET is told what the path is for");
    assert.match(plain.headers.get("content-type") ?? "", /^application\/problem\+json/);
  });
});

describe("XMPP over WebSocket behind a reverse proxy (http.trustProxy)", () => {
  let web: WsServer;
  before(async () => {
    web = await startWsServer({ name: "websocket-proxy", users: PW, config: { http: { trustProxy: true } } });
  });
  after(async () => {
    await web?.server.stop();
  });

  test("a remote client the proxy received over plain http is refused: TLS is required", async () => {
    await assert.rejects(
      RawWs.open(web.wsUrl, { headers: { "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "http" } }),
      (err: Error & { status?: number; body?: string }) => {
        assert.equal(err.status, 403);
        assert.match(err.body ?? "", /TLS is required/);
        return true;
      },
    );
  });

  test("a remote client the proxy received over https is served, as secure (PLAIN offered)", async () => {
    const raw = await RawWs.open(web.wsUrl, {
      headers: { "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https" },
    });
    const { features } = await raw.openStream();
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
    assert.doesNotMatch(features, /sasl-channel-binding/, "no channel binding: TLS ends at the proxy");
    raw.terminate();
  });
});

describe("XMPP over WebSocket without TLS from other addresses", () => {
  let server: TestServer | undefined;
  after(async () => {
    await server?.stop();
  });

  test("allowPlaintext lets a remote plain ws client in, but not as secure: PLAIN is not offered", async () => {
    const web = await startWsServer({
      name: "websocket-plaintext",
      users: PW,
      extraArgs: ["--allow-plaintext"],
      config: { http: { trustProxy: true } },
    });
    server = web.server;
    const raw = await RawWs.open(web.wsUrl, {
      headers: { "x-forwarded-for": "203.0.113.8", "x-forwarded-proto": "http" },
    });
    const { features } = await raw.openStream();
    assert.match(features, /<mechanism>SCRAM-SHA-256<\/mechanism>/);
    assert.doesNotMatch(features, /<mechanism>PLAIN<\/mechanism>/);
    raw.terminate();
  });
});

describe("XMPP over WebSocket is off with http.websocket: false", () => {
  let server: TestServer | undefined;
  after(async () => {
    await server?.stop();
  });

  test("no endpoint, no host-meta", async () => {
    const [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "websocket-off",
      extraArgs: ["--http-port", String(httpPort)],
      config: { http: { websocket: false } },
    });
    const base = `http://127.0.0.1:${httpPort}`;
    let health = 0;
    for (let i = 0; i < 100 && health !== 200; i++) {
      health = await fetch(`${base}/api/v1/health`).then(
        (r) => r.status,
        () => 0,
      );
      if (health !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(health, 200, "the HTTP listener is up");
    assert.equal((await fetch(`${base}/.well-known/host-meta`)).status, 404);
    await assert.rejects(RawWs.open(`ws://127.0.0.1:${httpPort}/xmpp-websocket`), /HTTP 404/);
  });
});
