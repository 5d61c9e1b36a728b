/**
 * External components (XEP-0114) against the real server: the handshake with the shared
 * secret set by `component add`, stanzas both ways between a component and an @xmpp/client
 * user, spoofed addresses refused, the component in the server's disco#items, and
 * `component remove` disconnecting it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { metricValues, sumWhere } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { cli, cliFails } from "../helpers/licensed-setup.js";
import { RawConnection } from "../helpers/raw-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { is, xml } from "../helpers/stanza.js";

const GATEWAY = "gw.localhost";
const SECRET = "a-shared-secret-for-the-gateway";
const PW = { alice: "alice-components-pw" };

function componentHeader(domain: string): string {
  return (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' " +
    `xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`
  );
}

/** A component connection to `port` that completed its handshake for GATEWAY. */
async function attachComponent(server: TestServer, port: number, label: string): Promise<RawConnection> {
  const c = await RawConnection.connect({ host: server.host, port, label });
  c.write(componentHeader(GATEWAY));
  const m = await c.waitFor(/<stream:stream[^>]*\bid=['"]([^'"]+)['"][^>]*>/, "the server's stream header");
  c.write(
    `<handshake>${createHash("sha1")
      .update(m[1]! + SECRET)
      .digest("hex")}</handshake>`,
  );
  await c.waitFor(/<handshake\s*\/>|<handshake><\/handshake>/, "the handshake's answer");
  return c;
}

/**
 * For one describe: a server with GATEWAY registered, its component port and HTTP port, and
 * alice available; the gateway connection a test opens (`gw`) is closed after it.
 */
function gatewayServer(name: string, config: Record<string, unknown>) {
  const c = {} as { server: TestServer; port: number; httpPort: number; alice: JsPeer; gw?: RawConnection };
  before(async () => {
    [c.port, c.httpPort] = (await freePorts(2)) as [number, number];
    c.server = await startServer({
      name,
      users: PW,
      config,
      extraArgs: [
        "--component-port",
        String(c.port),
        "--http-port",
        String(c.httpPort),
        "--log-level",
        "info",
      ],
    });
    await cli(c.server, ["component", "add", GATEWAY, "--secret", SECRET]);
    c.alice = await connectJs(c.server, { user: "alice", password: PW.alice, resource: "desk" });
    await c.alice.send(xml("presence"));
  });
  after(async () => {
    c.gw?.destroy();
    await c.alice?.close();
    await c.server?.stop();
  });
  return c;
}

describe("external components (XEP-0114)", () => {
  let server: TestServer;
  let port: number;
  let alice: JsPeer;
  const opened: RawConnection[] = [];

  /** A component connection that sent its header; returns it with the server's stream id. */
  async function open(domain: string): Promise<{ c: RawConnection; id: string }> {
    const c = await RawConnection.connect({ host: server.host, port, label: `component ${domain}` });
    opened.push(c);
    c.write(componentHeader(domain));
    const m = await c.waitFor(/<stream:stream[^>]*\bid=['"]([^'"]+)['"][^>]*>/, "the server's stream header");
    return { c, id: m[1]! };
  }

  async function connectComponent(secret = SECRET): Promise<RawConnection> {
    const { c, id } = await open(GATEWAY);
    c.write(
      `<handshake>${createHash("sha1")
        .update(id + secret)
        .digest("hex")}</handshake>`,
    );
    await c.waitFor(/<handshake\s*\/>|<handshake><\/handshake>/, "the handshake's answer");
    return c;
  }

  before(async () => {
    [port] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "components",
      users: PW,
      extraArgs: ["--component-port", String(port), "--log-level", "info"],
    });
    await cli(server, ["component", "add", GATEWAY, "--secret", SECRET]);
    alice = await connectJs(server, { user: "alice", password: PW.alice, resource: "desk" });
    await alice.send(xml("presence"));
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await alice?.close();
    await server.stop();
  });

  test("a wrong secret or an unknown domain is refused with <not-authorized/>", async () => {
    const wrong = await connectComponent("not-the-secret").catch((e: Error) => e);
    assert.ok(wrong instanceof Error, "a wrong secret must not be accepted");
    const last = opened.at(-1)!;
    assert.equal(await last.streamError("after a wrong handshake"), "not-authorized");
    const { c, id } = await open("unknown.localhost");
    c.write(
      `<handshake>${createHash("sha1")
        .update(id + SECRET)
        .digest("hex")}</handshake>`,
    );
    assert.equal(await c.streamError("an unregistered domain"), "not-authorized");
  });

  test("stanzas flow both ways between the component and a local user", async () => {
    const gw = await connectComponent();
    await alice.send(
      xml(
        "message",
        { to: `bob%irc.example@${GATEWAY}`, type: "chat", id: "to-gw" },
        xml("body", {}, "hi irc"),
      ),
    );
    const m = await gw.waitFor(
      /<message[^>]*>[\s\S]*?hi irc[\s\S]*?<\/message>/,
      "alice's message at the gateway",
    );
    assert.match(m[0], /from=['"]alice@localhost\/desk['"]/);
    gw.write(
      `<message from='bob%irc.example@${GATEWAY}/irc' to='alice@localhost' type='chat'><body>hi xmpp</body></message>`,
    );
    const got = await alice.next(is.message({ body: "hi xmpp" }), "the gateway's message");
    assert.equal(got.attrs.from, `bob%irc.example@${GATEWAY}/irc`);

    // The server lists the connected component in its disco#items.
    const items = await alice.iq(
      xml(
        "iq",
        { type: "get", to: "localhost" },
        xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }),
      ),
    );
    assert.ok(
      items
        .getChild("query")
        ?.getChildren("item")
        .some((i) => i.attrs.jid === GATEWAY),
      items.toString(),
    );
    // A second connection for the same domain is refused while the first one is up.
    const second = await connectComponent().catch((e: Error) => e);
    assert.ok(second instanceof Error);
    assert.equal(await opened.at(-1)!.streamError("a second connection"), "conflict");

    // A stanza claiming another domain ends the link: a component speaks for its domain only.
    gw.write("<message from='admin@localhost' to='alice@localhost'><body>spoofed</body></message>");
    assert.equal(await gw.streamError("a spoofed from"), "invalid-from");
    await alice.none(is.message({ body: "spoofed" }), "a spoofed message");
  });

  test("a message to a component that is not connected is bounced", async () => {
    const reply = await alice.iq(
      xml("iq", { type: "get", to: "nobody.localhost" }, xml("query", { xmlns: "jabber:iq:version" })),
    );
    assert.equal(reply.attrs.type, "error");
    // A registered component's domain is this server's: not looked for over federation.
    const registered = await alice.iq(
      xml("iq", { type: "get", to: GATEWAY }, xml("query", { xmlns: "jabber:iq:version" })),
    );
    assert.equal(registered.attrs.type, "error");
    assert.equal(registered.getChild("error")?.attrs.type, "wait", registered.toString());
    assert.equal(registered.getChild("error")?.getChildElements()[0]?.name, "service-unavailable");
  });

  test("`component remove` disconnects the component within a second; `component list` shows what is accepted", async () => {
    const gw = await connectComponent();
    const listed = (await cli(server, ["component", "list"])) as { components: { domain: string }[] };
    assert.deepEqual(
      listed.components.map((c) => c.domain),
      [GATEWAY],
    );
    await cli(server, ["component", "remove", GATEWAY]);
    const returned = Date.now();
    assert.equal(await gw.streamError("after component remove", 5000), "not-authorized");
    const after = Date.now() - returned;
    assert.ok(after < 1500, `disconnected ${after} ms after the command returned`);
    assert.match(await cliFails(server, ["component", "remove", GATEWAY]), /no component/);
    assert.match(
      await cliFails(server, ["component", "add", "localhost", "--secret", SECRET]),
      /domain this server serves/,
    );
  });
});

describe("a component's rate limit (modules.components.rates)", () => {
  const RATE = { stanzasPerSecond: 20, burstStanzas: 10 };
  const COUNT = 60;
  const c = gatewayServer("components-rate", { modules: { components: { rates: { [GATEWAY]: RATE } } } });

  test("a component over its rate is slowed down, nothing is dropped, and it shows in the log and /metrics", async () => {
    const { server, port, httpPort, alice } = c;
    const gw = await attachComponent(server, port, "rate-limited component");
    c.gw = gw;

    const bodies: string[] = [];
    const all = (async () => {
      while (bodies.length < COUNT) {
        const got = await alice.next(is.message(), "the gateway's messages", 15_000);
        bodies.push(got.getChildText("body") ?? "");
      }
    })();
    const started = Date.now();
    gw.write(
      Array.from(
        { length: COUNT },
        (_, i) =>
          `<message from='bob%irc.example@${GATEWAY}/irc' to='alice@localhost' type='chat'><body>n${i}</body></message>`,
      ).join(""),
    );
    await all;
    const took = Date.now() - started;
    // 10 at once, then 20 per second: the last one no sooner than (60 - 10) / 20 = 2.5 s.
    assert.ok(took >= 2200, `60 stanzas at 20/s with a burst of 10 took only ${took} ms`);
    assert.deepEqual(
      bodies,
      Array.from({ length: COUNT }, (_, i) => `n${i}`),
      "all arrive, in order",
    );
    assert.match(server.logTail(200), /component input throttled/);
    const throttled = await metricValues(
      `http://${server.host}:${httpPort}/metrics`,
      "switchboard_component_throttled_total",
    );
    assert.ok(sumWhere(throttled, { domain: GATEWAY }) >= 1, [...throttled].join(" "));
  });
});

describe("a component that stops reading", () => {
  // Alice writes as fast as she can; the component may leave 4 MiB unread. The registry is
  // read once a minute: the component is added after the server's first read, connects and
  // is cut off long before the next, and its domain must still be known as a component's.
  const c = gatewayServer("components-stuck", {
    limits: { bytesPerSecond: 0, maxSendBufferBytes: 4 * 1024 * 1024 },
    modules: { components: { pollIntervalMs: 60_000 } },
  });

  test("is disconnected once its unread output passes the limit; its domain then answers service-unavailable", async () => {
    const { server, port, alice } = c;
    const gw = await attachComponent(server, port, "stuck component");
    c.gw = gw;
    gw.stopReading();
    const big = "x".repeat(100_000);
    // Up to 30 MB (more than the kernel's buffers and the limit hold), a few at a time until
    // the server says it cut the component off (the stuck client does not see its socket close).
    const cut = () => /component disconnected: it stopped reading/.test(server.logTail(200));
    for (let i = 0; i < 300 && !cut(); i += 5) {
      for (let j = 0; j < 5; j++)
        await alice.send(
          xml("message", { to: `bob%irc.example@${GATEWAY}`, type: "chat" }, xml("body", {}, big)),
        );
      await alice.sync();
    }
    assert.ok(cut(), "the stuck component was disconnected");
    const reply = await alice.iq(
      xml("iq", { type: "get", to: GATEWAY }, xml("query", { xmlns: "jabber:iq:version" })),
    );
    assert.equal(
      reply.getChild("error")?.getChildElements()[0]?.name,
      "service-unavailable",
      reply.toString(),
    );
    // The domain is free again: the component can come back.
    const again = await attachComponent(server, port, "the component again");
    again.destroy();
  });
});
