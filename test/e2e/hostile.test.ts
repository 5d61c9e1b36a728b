/**
 * Hostile input on raw sockets: ill-formed XML (RFC 6120 §4.9.3.13), restricted
 * XML — DTDs/entity expansion, comments, processing instructions (§11.1,
 * §4.9.3.18) — oversized stanzas (§13.12, <policy-violation/>), and clients
 * that never authenticate or send stanzas before authenticating. After all
 * of it the server must still serve a normal login.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs } from "../helpers/js-client.js";
import { RawConnection, streamHeader } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { is, xml } from "../helpers/stanza.js";

const MAX_STANZA = 65536;
const AUTH_TIMEOUT_S = 2;
const PW = { alice: "alice-hostile-pw" };
// @xmpp/client computes SCRAM's PBKDF2 in plain JavaScript (about a second at the
// server's default iteration count), too close to the short timeout above on a
// busy machine; these logins are not about SASL, so they use PLAIN (over TLS).
const ALICE = { user: "alice", password: PW.alice, mechanism: "PLAIN" } as const;

const BILLION_LAUGHS =
  "<?xml version='1.0'?>" +
  "<!DOCTYPE stream:stream [" +
  '<!ENTITY lol "lol">' +
  Array.from({ length: 9 }, (_, i) => {
    const prev = i === 0 ? "lol" : `lol${i}`;
    return `<!ENTITY lol${i + 1} "${`&${prev};`.repeat(10)}">`;
  }).join("") +
  "]>";

describe("hostile clients", () => {
  let server: TestServer;
  const opened: RawConnection[] = [];

  async function raw(label: string, directTls = false): Promise<RawConnection> {
    const c = await RawConnection.open(server, { label, directTls });
    opened.push(c);
    return c;
  }

  before(async () => {
    server = await startServer({
      name: "hostile",
      users: PW,
      extraArgs: ["--max-stanza-size", String(MAX_STANZA)],
      config: { limits: { authTimeoutSeconds: AUTH_TIMEOUT_S } },
    });
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await server.stop();
  });

  test("ill-formed XML → <not-well-formed/>, then the stream is closed", async () => {
    const c = await raw("ill-formed XML");
    await c.openStream(server.domain);
    c.write("<message to='alice@localhost'><body>oops</message>");
    assert.equal(await c.streamError("after a mismatched end tag"), "not-well-formed");
    await c.waitClosed("after <not-well-formed/>");
    assert.match(c.received, /<\/stream:stream>/, "the server closes its stream before the connection");
  });

  test("a DOCTYPE with entity expansion (billion laughs) → <restricted-xml/>", async () => {
    const c = await raw("billion laughs");
    c.write(
      BILLION_LAUGHS +
        streamHeader(server.domain).replace("<?xml version='1.0'?>", "") +
        "<message>&lol9;</message>",
    );
    assert.equal(await c.streamError("after a DTD"), "restricted-xml");
    await c.waitClosed("after <restricted-xml/>");
    assert.ok(server.running, "the server survived");
  });

  test("a comment in the stream → <restricted-xml/> (RFC 6120 §11.1)", async () => {
    const c = await raw("comment");
    await c.openStream(server.domain);
    c.write("<!-- hello -->");
    assert.equal(await c.streamError("after a comment"), "restricted-xml");
    await c.waitClosed("after <restricted-xml/>");
  });

  test("a processing instruction in the stream → <restricted-xml/> (RFC 6120 §11.1)", async () => {
    const c = await raw("processing instruction");
    await c.openStream(server.domain);
    c.write("<?evil run='this'?>");
    assert.equal(await c.streamError("after a processing instruction"), "restricted-xml");
    await c.waitClosed("after <restricted-xml/>");
  });

  test("an oversized stanza before authentication → <policy-violation/>, detected before it ends", async () => {
    const c = await raw("oversized, unauthenticated");
    await c.openStream(server.domain);
    // No end tag: the server must not wait for (and buffer) the whole stanza.
    c.write("<message to='alice@localhost'><body>");
    const chunk = "A".repeat(16 * 1024);
    for (let sent = 0; sent < MAX_STANZA + 32 * 1024 && !c.closed; sent += chunk.length) c.write(chunk);
    assert.equal(await c.streamError("after more than the stanza size limit"), "policy-violation");
    await c.waitClosed("after <policy-violation/>");
  });

  test("after login: a stanza under the limit is handled, one over it → <policy-violation/>", async () => {
    const c = await raw("oversized, authenticated");
    const jid = await c.login(server, "alice", PW.alice, "big");
    assert.equal(jid, "alice@localhost/big");
    // 48 KiB in an IQ the server does not support: accepted, answered with an error.
    const payload = "B".repeat(48 * 1024);
    c.write(
      `<iq type='get' to='localhost' id='under'><query xmlns='urn:example:big'>${payload}</query></iq>`,
    );
    await c.waitFor(
      /<iq[^>]*id=['"]under['"][^>]*type=['"]error['"]|<iq[^>]*type=['"]error['"][^>]*id=['"]under['"]/,
      "the reply to the 48 KiB IQ",
    );
    c.write(`<message to='alice@localhost'><body>${"C".repeat(MAX_STANZA + 4096)}</body></message>`);
    assert.equal(await c.streamError("after a stanza over the limit"), "policy-violation");
    await c.waitClosed("after <policy-violation/>");
  });

  test("deep nesting → a stream error and a closed connection, not a stuck parser", async () => {
    const c = await raw("deep nesting");
    await c.openStream(server.domain);
    c.write("<message><body>" + "<x>".repeat(5000));
    const condition = await c.streamError("after 5000 nested elements");
    // RFC 6120 defines no condition for this; a limit is policy, malformed XML would be not-well-formed.
    assert.ok(["policy-violation", "not-well-formed", "restricted-xml"].includes(condition), condition);
    await c.waitClosed("after the stream error");
  });

  test("invalid UTF-8 → <unsupported-encoding/> or <not-well-formed/> (RFC 6120 §4.9.3.22)", async () => {
    const c = await raw("invalid UTF-8");
    await c.openStream(server.domain);
    c.write(
      Buffer.concat([
        Buffer.from("<message><body>"),
        Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
        Buffer.from("</body></message>"),
      ]),
    );
    const condition = await c.streamError("after bytes that are not UTF-8");
    assert.ok(["unsupported-encoding", "not-well-formed", "bad-format"].includes(condition), condition);
    await c.waitClosed("after the stream error");
  });

  test("a stanza before authentication → <not-authorized/>, never delivered (RFC 6120 §4.3.5)", async () => {
    const alice = await connectJs(server, { ...ALICE, resource: "watch" });
    try {
      await alice.send(xml("presence"));
      await alice.sync();
      const c = await raw("unauthenticated stanza");
      await c.openStream(server.domain);
      await c.startTls(server.domain);
      c.write("<message to='alice@localhost/watch' type='chat'><body>sneaked in</body></message>");
      assert.equal(await c.streamError("after a stanza sent before authenticating"), "not-authorized");
      await c.waitClosed("after <not-authorized/>");
      await alice.none(is.message({ body: "sneaked in" }), "a message from an unauthenticated stream");
    } finally {
      await alice.close();
    }
  });

  test("a connection that sends nothing is closed after the authentication timeout", async () => {
    const c = await raw("silent connection");
    const start = Date.now();
    await c.waitClosed("silence", (AUTH_TIMEOUT_S + 8) * 1000);
    const elapsed = (c.closedTime - start) / 1000;
    assert.ok(
      elapsed >= AUTH_TIMEOUT_S - 0.5,
      `closed after ${elapsed.toFixed(1)} s, before the ${AUTH_TIMEOUT_S} s timeout`,
    );
  });

  test("a stream that never authenticates → <connection-timeout/>", async () => {
    const c = await raw("unauthenticated stream");
    await c.openStream(server.domain);
    assert.equal(
      await c.streamError("waiting out the authentication timeout", (AUTH_TIMEOUT_S + 8) * 1000),
      "connection-timeout",
    );
    await c.waitClosed("after <connection-timeout/>");
  });

  test("after all this the server is healthy: a normal login works", async () => {
    assert.ok(server.running, `the server exited; log:\n${server.logTail()}`);
    const alice = await connectJs(server, { ...ALICE, resource: "fine" });
    await alice.sync();
    await alice.close();
  });
});
