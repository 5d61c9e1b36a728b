/**
 * Federation between two Switchboard servers on loopback (a.test on one address, b.test on
 * another, each finding the other through `--s2s-route`): subscription and chat both ways,
 * offline delivery for a federated sender, Server Dialback when the certificates are
 * self-signed and SASL EXTERNAL when both have certificates from a CA they trust
 * (`--s2s-ca`), a spoofed 'from' refused, the allowlist policy, and bounces for a domain
 * that cannot be reached.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { chatBothWays, LINK_WAIT_MS, metricValues, subscribe, sumWhere } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { RawConnection } from "../helpers/raw-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { is, stanzaError, xml } from "../helpers/stanza.js";
import { TestCa } from "../helpers/test-ca.js";

const NET = 100 + Math.floor(Math.random() * 150);
const HOST_A = `127.77.${NET}.1`;
const HOST_B = `127.77.${NET}.2`;
const PW = { alice: "alice-federation-pw", bob: "bob-federation-pw", carol: "carol-federation-pw" };

interface Pair {
  a: TestServer;
  b: TestServer;
  metricsA: string;
  metricsB: string;
}

async function startPair(
  name: string,
  opts: { ca?: TestCa; configA?: Record<string, unknown>; extraA?: string[] } = {},
): Promise<Pair> {
  const [s2sA, s2sB, httpA, httpB, tlsA] = (await freePorts(5)) as [number, number, number, number, number];
  const tlsConfig = (domain: string) => {
    if (!opts.ca) return {};
    const { certFile, keyFile } = opts.ca.issue(domain);
    return { tls: { certFile, keyFile } };
  };
  const common = (s2s: number, http: number, peer: string, peerHost: string, peerPort: number) => [
    "--s2s-port",
    String(s2s),
    "--s2s-route",
    `${peer}=${peerHost}:${peerPort}`,
    "--http-port",
    String(http),
    "--log-level",
    "info",
    ...(opts.ca ? ["--s2s-ca", opts.ca.caFile] : []),
  ];
  const a = await startServer({
    name: `${name}-a`,
    domain: "a.test",
    host: HOST_A,
    users: { alice: PW.alice, carol: PW.carol },
    config: { ...tlsConfig("a.test"), http: { tls: "off" }, s2sTlsPort: tlsA, ...opts.configA },
    extraArgs: [...common(s2sA, httpA, "b.test", HOST_B, s2sB), ...(opts.extraA ?? [])],
  });
  const b = await startServer({
    name: `${name}-b`,
    domain: "b.test",
    host: HOST_B,
    users: { bob: PW.bob },
    config: { ...tlsConfig("b.test"), http: { tls: "off" } },
    extraArgs: common(s2sB, httpB, "a.test", HOST_A, s2sA),
  }).catch(async (err) => {
    await a.stop();
    throw err;
  });
  Object.assign(a, { s2sTlsPort: tlsA });
  return {
    a,
    b,
    metricsA: `http://${HOST_A}:${httpA}/metrics`,
    metricsB: `http://${HOST_B}:${httpB}/metrics`,
  };
}

/**
 * A pair for one describe: alice on a.test and bob on b.test logged in and available
 * (`configA` for a.test); everything stopped after the describe.
 */
function chatPair(
  name: string,
  configA: Record<string, unknown>,
): { pair: Pair; alice: JsPeer; bob: JsPeer } {
  const c = {} as { pair: Pair; alice: JsPeer; bob: JsPeer };
  before(async () => {
    c.pair = await startPair(name, { configA });
    c.alice = await connectJs(c.pair.a, { user: "alice", password: PW.alice, resource: "desk" });
    c.bob = await connectJs(c.pair.b, { user: "bob", password: PW.bob, resource: "phone" });
    await c.alice.send(xml("presence"));
    await c.bob.send(xml("presence"));
  });
  after(async () => {
    await c.alice?.close();
    await c.bob?.close();
    await c.pair?.a.stop();
    await c.pair?.b.stop();
  });
  return c;
}

/**
 * A warmed-up link, a second for the rate's bucket to fill, then `count` messages from
 * `sender` to `receiverJid`, each awaited at `receiver` in order: the seconds it took.
 */
async function timedFlood(
  sender: JsPeer,
  receiver: JsPeer,
  receiverJid: string,
  count: number,
  prefix: string,
): Promise<number> {
  const chat = (body: string) => xml("message", { to: receiverJid, type: "chat" }, xml("body", {}, body));
  await sender.send(chat(`${prefix} warm-up`));
  await receiver.next(
    is.message({ body: `${prefix} warm-up` }),
    "the first message over the link",
    LINK_WAIT_MS,
  );
  await new Promise((r) => setTimeout(r, 1000)); // the bucket fills again
  const started = Date.now();
  for (let i = 0; i < count; i++) await sender.send(chat(`${prefix} ${i}`));
  for (let i = 0; i < count; i++)
    await receiver.next(is.message({ body: `${prefix} ${i}` }), `message ${i} of the flood`, 30_000);
  return (Date.now() - started) / 1000;
}

describe("two Switchboard servers federating with Server Dialback (self-signed certificates)", () => {
  let pair: Pair;
  let alice: JsPeer;
  let bob: JsPeer;

  before(async () => {
    pair = await startPair("federation-dialback");
    alice = await connectJs(pair.a, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectJs(pair.b, { user: "bob", password: PW.bob, resource: "phone" });
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await pair?.a.stop();
    await pair?.b.stop();
  });

  test("subscriptions and chat both ways", async () => {
    await subscribe(alice, bob);
    await subscribe(bob, alice);
    await chatBothWays(alice, bob, "dialback");
  });

  test("the links authenticated with dialback, counted per domain", async () => {
    const authA = await metricValues(pair.metricsA, "switchboard_s2s_authenticated_total");
    assert.ok(
      sumWhere(authA, { domain: "b.test", method: "dialback", direction: "out" }) >= 1,
      `a.test's outbound link used dialback: ${[...authA]}`,
    );
    assert.ok(
      sumWhere(authA, { domain: "b.test", method: "dialback", direction: "in" }) >= 1,
      `b.test's link to a.test used dialback: ${[...authA]}`,
    );
    const stanzas = await metricValues(pair.metricsA, "switchboard_s2s_stanzas_total");
    assert.ok((stanzas.get('domain="b.test",direction="out"') ?? 0) >= 3);
    assert.ok((stanzas.get('domain="b.test",direction="in"') ?? 0) >= 3);
  });

  test("offline delivery for a federated sender", async () => {
    const body = "a message bob finds when he is back";
    await bob.close();
    await alice.send(xml("message", { to: "bob@b.test", type: "chat" }, xml("body", {}, body)));
    // The message crosses the link and is stored before bob logs in again.
    await new Promise((r) => setTimeout(r, 1500));
    bob = await connectJs(pair.b, { user: "bob", password: PW.bob, resource: "phone" });
    await bob.send(xml("presence"));
    const got = await bob.next(is.message({ body }), "the offline message from alice@a.test", LINK_WAIT_MS);
    assert.equal(got.attrs.from, alice.jid);
    assert.ok(got.getChild("delay", "urn:xmpp:delay"), "stored messages carry a delay stamp");
  });

  test("blocking works for a contact on the other server (XEP-0191)", async () => {
    await alice.iq(
      xml(
        "iq",
        { type: "set" },
        xml("block", { xmlns: "urn:xmpp:blocking" }, xml("item", { jid: "bob@b.test" })),
      ),
    );
    await bob.send(
      xml("message", { to: "alice@a.test", type: "chat", id: "m-blocked" }, xml("body", {}, "blocked?")),
    );
    const refused = await bob.next(
      (el) => el.attrs.id === "m-blocked",
      "the error for a blocked sender",
      LINK_WAIT_MS,
    );
    assert.equal(stanzaError(refused)?.condition, "service-unavailable");
    await alice.none(is.message({ body: "blocked?" }), "a message from a blocked remote contact");
    await alice.iq(
      xml(
        "iq",
        { type: "set" },
        xml("unblock", { xmlns: "urn:xmpp:blocking" }, xml("item", { jid: "bob@b.test" })),
      ),
    );
    await bob.send(xml("message", { to: "alice@a.test", type: "chat" }, xml("body", {}, "unblocked")));
    await alice.next(is.message({ body: "unblocked" }), "a message once unblocked", LINK_WAIT_MS);
  });

  test("a message to an unknown account on the other server comes back as an error", async () => {
    await alice.send(
      xml("message", { to: "nobody@b.test", type: "chat", id: "m-nobody" }, xml("body", {}, "anyone?")),
    );
    const err = await alice.next(
      (el) => el.attrs.id === "m-nobody",
      "the error for nobody@b.test",
      LINK_WAIT_MS,
    );
    assert.equal(stanzaError(err)?.condition, "service-unavailable");
  });

  test("a domain nobody serves: remote-server-not-found", async () => {
    await alice.send(
      xml(
        "message",
        { to: "someone@unreachable.invalid", type: "chat", id: "m-unreach" },
        xml("body", {}, "hello?"),
      ),
    );
    const err = await alice.next((el) => el.attrs.id === "m-unreach", "the bounce", 60_000);
    assert.equal(stanzaError(err)?.condition, "remote-server-not-found");
  });
});

describe("two Switchboard servers federating with SASL EXTERNAL (certificates from a trusted CA)", () => {
  let pair: Pair;
  let ca: TestCa;
  let alice: JsPeer;
  let bob: JsPeer;

  before(async () => {
    ca = new TestCa();
    pair = await startPair("federation-external", { ca });
    alice = await connectJs(pair.a, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectJs(pair.b, { user: "bob", password: PW.bob, resource: "phone" });
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await pair?.a.stop();
    await pair?.b.stop();
  });

  test("subscription and chat over links authenticated by certificate", async () => {
    await subscribe(alice, bob);
    await chatBothWays(alice, bob, "sasl-external");
    const authA = await metricValues(pair.metricsA, "switchboard_s2s_authenticated_total");
    const authB = await metricValues(pair.metricsB, "switchboard_s2s_authenticated_total");
    assert.ok(
      sumWhere(authA, { method: "sasl-external", direction: "out" }) >= 1,
      `a.test out: ${[...authA]}`,
    );
    assert.ok(sumWhere(authB, { method: "sasl-external", direction: "in" }) >= 1, `b.test in: ${[...authB]}`);
    assert.equal(
      sumWhere(authA, { method: "dialback", direction: "out" }),
      0,
      "no dialback where certificates authenticate",
    );
  });

  test("a peer that authenticated as one domain and sends from another is cut off with invalid-from", async () => {
    const evil = ca.issue("evil.test");
    const c = await RawConnection.connect({
      host: HOST_A,
      port: (pair.a as TestServer & { s2sTlsPort: number }).s2sTlsPort,
      directTls: "a.test",
      clientCertificate: { cert: evil.cert, key: evil.key },
      label: "evil.test over direct TLS",
    });
    const header =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
      "xmlns:db='jabber:server:dialback' from='evil.test' to='a.test' version='1.0'>";
    c.write(header);
    await c.waitFor(
      /<mechanism>EXTERNAL<\/mechanism>/,
      "EXTERNAL offered for a certificate valid for evil.test",
    );
    c.write(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>${Buffer.from("evil.test").toString("base64")}</auth>`,
    );
    await c.waitFor(/<success/, "SASL EXTERNAL success");
    c.write(header);
    await c.waitFor(/<stream:features/, "features after the restart");
    c.write("<message from='mallory@evil.test' to='alice@a.test' type='chat'><body>legit</body></message>");
    await alice.next(is.message({ body: "legit" }), "a message from the authenticated domain");
    c.write("<message from='bob@b.test' to='alice@a.test' type='chat'><body>spoofed</body></message>");
    assert.equal(await c.streamError("a spoofed from"), "invalid-from");
    await alice.none(is.message({ body: "spoofed" }), "the spoofed message");
    const spoofed = await metricValues(pair.metricsA, "switchboard_s2s_spoofed_total");
    assert.equal(spoofed.get('domain="evil.test"'), 1);
    c.destroy();
  });
});

describe("links: queues, timeouts, idle closing and reconnection", () => {
  let pair: Pair;
  let alice: JsPeer;
  let bob: JsPeer;
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();

  before(async () => {
    // A host that accepts connections and never answers: links to it time out.
    silent = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => silentSockets.delete(socket));
    });
    await new Promise<void>((r) => silent.listen(0, HOST_A, () => r()));
    const silentPort = (silent.address() as net.AddressInfo).port;
    pair = await startPair("federation-links", {
      configA: {
        modules: {
          s2s: {
            maxQueuedStanzas: 2,
            connectTimeoutSeconds: 2,
            connectAttempts: 2,
            backoffSeconds: 0.5,
            idleTimeoutSeconds: 2,
          },
        },
      },
      extraA: ["--s2s-route", `silent.test=${HOST_A}:${silentPort}`],
    });
    alice = await connectJs(pair.a, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectJs(pair.b, { user: "bob", password: PW.bob, resource: "phone" });
    await bob.send(xml("presence"));
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await pair?.a.stop();
    await pair?.b.stop();
    for (const s of silentSockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  test("stanzas wait in a bounded queue and come back with remote-server-timeout", async () => {
    const started = Date.now();
    for (const id of ["q1", "q2", "q3"])
      await alice.send(xml("message", { to: "someone@silent.test", type: "chat", id }, xml("body", {}, id)));
    const overflow = await alice.next((el) => el.attrs.id === "q3", "the stanza over the queue's bound");
    assert.equal(stanzaError(overflow)?.condition, "resource-constraint");
    for (const id of ["q1", "q2"]) {
      const bounced = await alice.next((el) => el.attrs.id === id, `the bounce of ${id}`, 30_000);
      assert.equal(stanzaError(bounced)?.condition, "remote-server-timeout");
    }
    // Two attempts of two seconds with half a second between them.
    assert.ok(Date.now() - started >= 4000, `bounced after ${Date.now() - started} ms`);
    const bouncedTotal = await metricValues(pair.metricsA, "switchboard_s2s_bounced_total");
    assert.equal(bouncedTotal.get('condition="remote-server-timeout"'), 2);
    assert.equal(bouncedTotal.get('condition="resource-constraint"'), 1);
  });

  test("an idle link closes and the next stanza opens a new one", async () => {
    await alice.send(xml("message", { to: "bob@b.test", type: "chat" }, xml("body", {}, "first")));
    await bob.next(is.message({ body: "first" }), "the first message", LINK_WAIT_MS);
    const linksOut = async () =>
      sumWhere(await metricValues(pair.metricsA, "switchboard_s2s_links"), { direction: "out" });
    assert.equal(await linksOut(), 1);
    const deadline = Date.now() + 15_000;
    while ((await linksOut()) !== 0) {
      assert.ok(Date.now() < deadline, "the idle link was not closed");
      await new Promise((r) => setTimeout(r, 250));
    }
    await alice.send(xml("message", { to: "bob@b.test", type: "chat" }, xml("body", {}, "second")));
    await bob.next(is.message({ body: "second" }), "the message over a new link", LINK_WAIT_MS);
    const auth = await metricValues(pair.metricsA, "switchboard_s2s_authenticated_total");
    assert.equal(
      sumWhere(auth, { method: "dialback", direction: "out" }),
      2,
      "a second outbound link was authenticated",
    );
  });
});

describe("per-domain rate limits", () => {
  const RATE = 20;
  const BURST = 10;
  const COUNT = 60;
  const c = chatPair("federation-rates", {
    modules: { s2s: { domainRates: { "b.test": { stanzasPerSecond: RATE, burstStanzas: BURST } } } },
  });

  test("a domain over its stanza rate is slowed down, not cut off: everything arrives, in order", async () => {
    const { pair, alice, bob } = c;
    const seconds = await timedFlood(bob, alice, "alice@a.test", COUNT, "flood");
    const least = (COUNT - BURST) / RATE;
    assert.ok(seconds >= least * 0.8, `${COUNT} stanzas at ${RATE}/s (burst ${BURST}) took ${seconds} s`);
    const throttled = await metricValues(pair.metricsA, "switchboard_s2s_throttled_total");
    assert.ok(sumWhere(throttled, { domain: "b.test" }) >= 1, `throttled: ${[...throttled]}`);
    assert.match(pair.a.logTail(), /server-to-server input throttled/);
  });

  test("the other direction keeps the default limit", async () => {
    const { pair, alice, bob } = c;
    const started = Date.now();
    for (let i = 0; i < COUNT; i++)
      await alice.send(xml("message", { to: "bob@b.test", type: "chat" }, xml("body", {}, `back ${i}`)));
    for (let i = 0; i < COUNT; i++)
      await bob.next(is.message({ body: `back ${i}` }), `message ${i} back`, LINK_WAIT_MS);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < (COUNT - BURST) / RATE, `${COUNT} stanzas took ${seconds} s`);
    const throttled = await metricValues(pair.metricsB, "switchboard_s2s_throttled_total");
    assert.equal(sumWhere(throttled, { domain: "a.test" }), 0);
  });
});

describe("outbound rate per remote domain", () => {
  const RATE = 20;
  const BURST = 10;
  const COUNT = 60;
  const c = chatPair("federation-outbound-rate", {
    modules: { s2s: { outboundRates: { "b.test": { stanzasPerSecond: RATE, burstStanzas: BURST } } } },
  });

  test("what our users send a domain over its outbound rate waits and goes out at the rate, in order", async () => {
    const { pair, alice, bob } = c;
    const seconds = await timedFlood(alice, bob, "bob@b.test", COUNT, "paced");
    const least = (COUNT - BURST) / RATE;
    assert.ok(seconds >= least * 0.8, `${COUNT} stanzas at ${RATE}/s (burst ${BURST}) took ${seconds} s`);
    await alice.none((el) => stanzaError(el) !== undefined, "a bounce", 500);
    const held = await metricValues(pair.metricsA, "switchboard_s2s_held_total");
    assert.ok(
      sumWhere(held, { domain: "b.test", reason: "rate" }) >= COUNT - BURST - 5,
      `held: ${[...held]}`,
    );
    // The receiving server did not have to slow the link down: its default limit was never reached.
    assert.equal(sumWhere(await metricValues(pair.metricsB, "switchboard_s2s_throttled_total"), {}), 0);
    assert.match(pair.a.logTail(), /server-to-server output held/);
  });
});

describe("a peer that stops reading", () => {
  const STALLED_S = 3;
  const c = chatPair("federation-stalled", {
    // Alice writes as fast as she can: what is tested is the link, not her connection. The
    // bounces (each echoing its 200 KB body) pile up for her while she writes, so her send
    // buffer must hold them (the server otherwise disconnects her as a client that does not read).
    limits: { bytesPerSecond: 0, maxSendBufferBytes: 64 * 1024 * 1024 },
    modules: { s2s: { sendBufferBytes: 65_536, stalledSeconds: STALLED_S } },
  });

  test("stanzas wait in the bounded queue, not in memory, and the link closes after stalledSeconds", async () => {
    const { pair, alice, bob } = c;
    await alice.send(xml("message", { to: "bob@b.test", type: "chat" }, xml("body", {}, "warm-up")));
    await bob.next(is.message({ body: "warm-up" }), "the first message over the link", LINK_WAIT_MS);
    pair.b.proc.kill("SIGSTOP");
    try {
      const big = "x".repeat(200_000);
      const COUNT = 150; // 30 MB: more than the kernel's buffers, the send buffer and the queue hold
      for (let i = 0; i < COUNT; i++)
        await alice.send(
          xml("message", { to: "bob@b.test", type: "chat", id: `big-${i}` }, xml("body", {}, big)),
        );
      const full = await alice.next(
        (el) => stanzaError(el)?.condition === "resource-constraint",
        "a bounce: the queue for b.test is full",
        20_000,
      );
      assert.match(full.attrs.id ?? "", /^big-/);
      const stalled = await alice.next(
        (el) => stanzaError(el)?.condition === "remote-server-timeout",
        "what waited goes back when the link is closed as stalled",
        STALLED_S * 1000 + 10_000,
      );
      assert.match(stalled.attrs.id ?? "", /^big-/);
      assert.equal(
        sumWhere(await metricValues(pair.metricsA, "switchboard_s2s_stalled_total"), { domain: "b.test" }),
        1,
      );
      const held = await metricValues(pair.metricsA, "switchboard_s2s_held_total");
      assert.ok(sumWhere(held, { domain: "b.test", reason: "congested" }) >= 1, `held: ${[...held]}`);
      assert.match(pair.a.logTail(), /the remote server stopped reading/);
    } finally {
      pair.b.proc.kill("SIGCONT");
    }
    await alice.send(xml("message", { to: "bob@b.test", type: "chat" }, xml("body", {}, "after")));
    await bob.next(
      is.message({ body: "after" }),
      "a message over a new link once b.test reads again",
      30_000,
    );
  });
});

describe("federation allowlist", () => {
  let pair: Pair;
  let carol: JsPeer;
  let bob: JsPeer;

  before(async () => {
    pair = await startPair("federation-allowlist", {
      configA: { federation: { policy: "allowlist", allowlist: ["c.test"] } },
    });
    carol = await connectJs(pair.a, { user: "carol", password: PW.carol, resource: "desk" });
    bob = await connectJs(pair.b, { user: "bob", password: PW.bob, resource: "phone" });
  });
  after(async () => {
    await carol?.close();
    await bob?.close();
    await pair?.a.stop();
    await pair?.b.stop();
  });

  test("a domain off the allowlist is refused both ways with policy-violation", async () => {
    await carol.send(xml("message", { to: "bob@b.test", type: "chat", id: "m-out" }, xml("body", {}, "out")));
    const out = await carol.next((el) => el.attrs.id === "m-out", "the bounce of a message to b.test");
    assert.equal(stanzaError(out)?.condition, "policy-violation");
    assert.match(stanzaError(out)?.text ?? "", /allowlist/);
    await bob.send(xml("message", { to: "carol@a.test", type: "chat", id: "m-in" }, xml("body", {}, "in")));
    const back = await bob.next(
      (el) => el.attrs.id === "m-in",
      "the bounce of a message to a.test",
      LINK_WAIT_MS,
    );
    // b.test's link is refused with a stream error policy-violation, which its sender hears of.
    assert.equal(stanzaError(back)?.condition, "policy-violation");
    await carol.none(is.message({ body: "in" }), "a message over a refused link");
    const refused = await metricValues(pair.metricsA, "switchboard_s2s_refused_total");
    assert.ok((refused.get('domain="b.test",direction="in"') ?? 0) >= 1, `refused: ${[...refused]}`);
    assert.ok((refused.get('domain="b.test",direction="out"') ?? 0) >= 1, `refused: ${[...refused]}`);
  });
});
