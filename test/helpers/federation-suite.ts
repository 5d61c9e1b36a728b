/**
 * The federation scenarios run against another server implementation (Prosody, ejabberd),
 * started by the test on its own loopback address with a certificate from a CA the test
 * makes. The peer finds Switchboard through the test's DNS server (SRV and A records);
 * Switchboard finds the peer through the same DNS server in the dialback run and through
 * `--s2s-route` in the certificate run. Subscription and chat both ways and offline delivery
 * for a federated sender, once over Server Dialback (Switchboard's self-signed certificate,
 * trusted by nobody, and the peer's not trusted by Switchboard) and once over SASL EXTERNAL
 * (both certificates from the test CA and trusted both ways). Switchboard federates under
 * `--federation licensed` with the default (open) licensing policy, so the peer needs no licence
 * until the peering scenarios (helpers/peering-scenarios.ts) change the policy at the end.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chatBothWays, LINK_WAIT_MS, metricValues, subscribe, sumWhere } from "./federation.js";
import { connectJs, type JsPeer } from "./js-client.js";
import { cli } from "./licensed-setup.js";
import { licenceRevoked, type PeeringSetup, warnHeadline } from "./peering-scenarios.js";
import { freePorts, startServer, type TestServer } from "./server.js";
import { is, xml } from "./stanza.js";
import { TestCa } from "./test-ca.js";
import { TestDns } from "./test-dns.js";

/** A running peer server. */
export interface PeerServer {
  readonly endpoint: { domain: string; host: string; c2sPort: number; c2sTlsPort: number };
  register(user: string, password: string): void;
  logTail(): string;
  stop(): Promise<void>;
}

export interface PeerStart {
  name: string;
  domain: string;
  host: string;
  c2sPort: number;
  s2sPort: number;
  certFile: string;
  keyFile: string;
  caFile: string;
  resolvConf: string;
  /** Only peers whose certificate authenticates them (the certificate run). */
  secureAuth: boolean;
}

const PW = { alice: "alice-federation-pw", dave: "dave-federation-pw", bob: "bob-on-the-peer-pw" };

interface Setup {
  sb: TestServer;
  peer: PeerServer;
  dns: TestDns;
  metrics: string;
  alice: JsPeer;
  bob: JsPeer;
  peering: PeeringSetup;
}

interface SuiteOptions {
  /** "prosody", "ejabberd": names logs and tests. */
  peerName: string;
  /** The peer's domain and loopback address. */
  domain: string;
  host: string;
  /** Switchboard's and the DNS server's addresses: 127.<net>.<random>.1 and .53. */
  net: number;
  skip: false | string;
  start(opts: PeerStart): Promise<PeerServer>;
}

async function setUp(o: SuiteOptions, name: string, mode: "dialback" | "certificates"): Promise<Setup> {
  // What is running so far, stopped if a later step fails (a peer left running keeps the test process alive).
  const started: (() => Promise<unknown>)[] = [];
  try {
    return await startAll(o, name, mode, started);
  } catch (err) {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    throw err;
  }
}

async function startAll(
  o: SuiteOptions,
  name: string,
  mode: "dialback" | "certificates",
  started: (() => Promise<unknown>)[],
): Promise<Setup> {
  const sub = 100 + Math.floor(Math.random() * 150);
  const SB_HOST = `127.${o.net}.${sub}.1`;
  const DNS_HOST = `127.${o.net}.${sub}.53`;
  const PR_HOST = o.host;
  const PD = o.domain;
  const ca = new TestCa();
  const [sbS2s, sbHttp, prC2s, prS2s] = (await freePorts(4)) as [number, number, number, number];
  const dns = await TestDns.start(DNS_HOST);
  started.push(() => dns.stop());
  dns
    .addSrv("_xmpp-server._tcp.sb.test", { priority: 0, weight: 5, port: sbS2s, target: "sb.test" })
    .addA("sb.test", SB_HOST);
  dns
    .addSrv(`_xmpp-server._tcp.${PD}`, { priority: 0, weight: 5, port: prS2s, target: PD })
    .addA(PD, PR_HOST);
  const pr = ca.issue(PD);
  const peer = await o.start({
    name: `${name}-${o.peerName}`,
    domain: PD,
    host: PR_HOST,
    c2sPort: prC2s,
    s2sPort: prS2s,
    certFile: pr.certFile,
    keyFile: pr.keyFile,
    caFile: ca.caFile,
    resolvConf: dns.resolvConf(ca.dir),
    secureAuth: mode === "certificates",
  });
  started.push(() => peer.stop());
  peer.register("bob", PW.bob);
  const sbCert = mode === "certificates" ? ca.issue("sb.test") : undefined;
  const sb = await startServer({
    name: `${name}-switchboard`,
    domain: "sb.test",
    host: SB_HOST,
    users: { alice: PW.alice, dave: PW.dave },
    config: {
      http: { tls: "off" },
      ...(sbCert ? { tls: { certFile: sbCert.certFile, keyFile: sbCert.keyFile } } : {}),
      // The dialback run resolves the peer's domain through DNS SRV like any domain.
      ...(mode === "dialback" ? { modules: { s2s: { dnsServers: [DNS_HOST] } } } : {}),
    },
    extraArgs: [
      "--s2s-port",
      String(sbS2s),
      "--http-port",
      String(sbHttp),
      "--log-level",
      "info",
      "--federation",
      "licensed",
      ...(mode === "certificates" ? ["--s2s-ca", ca.caFile, "--s2s-route", `${PD}=${PR_HOST}:${prS2s}`] : []),
    ],
  });
  started.push(() => sb.stop());
  // The API token for the peering scenarios, made while the clients log in.
  const created = cli(sb, ["token", "create", "--name", "federation-test"]);
  created.catch(() => undefined); // awaited below; a failed login first must not leave it unhandled
  const alice = await connectJs(sb, { user: "alice", password: PW.alice, resource: "desk" });
  started.push(() => alice.close());
  const bob = await connectJs(peer.endpoint as unknown as TestServer, {
    user: "bob",
    password: PW.bob,
    resource: "laptop",
  });
  await alice.send(xml("presence"));
  await bob.send(xml("presence"));
  const base = `http://${SB_HOST}:${sbHttp}`;
  const { token } = (await created) as { token: string };
  const peering = { sb, base, token, domain: PD, alice, bob, peerLog: () => peer.logTail() };
  return { sb, peer, dns, metrics: `${base}/metrics`, alice, bob, peering };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (!s) return;
  await s.alice.close();
  await s.bob.close();
  await s.sb.stop();
  await s.peer.stop();
  await s.dns.stop();
}

/** The scenarios, once over dialback and once over certificates. */
export function federationSuite(o: SuiteOptions): void {
  for (const mode of ["dialback", "certificates"] as const) {
    const method = mode === "dialback" ? "dialback" : "sasl-external";
    describe(`federation with ${o.peerName} (${mode})`, { skip: o.skip }, () => {
      let s: Setup;
      before(async () => {
        s = await setUp(o, `federation-${o.peerName}-${mode}`, mode);
      });
      after(async () => {
        await tearDown(s);
      });

      test("subscriptions and chat both ways", async () => {
        try {
          await subscribe(s.alice, s.bob);
          await subscribe(s.bob, s.alice);
          await chatBothWays(s.alice, s.bob, mode);
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${o.peerName} log:\n${s.peer.logTail()}`);
        }
      });

      test(`both links authenticated with ${method}`, async () => {
        const auth = await metricValues(s.metrics, "switchboard_s2s_authenticated_total");
        assert.ok(sumWhere(auth, { method: method, direction: "out" }) >= 1, `out: ${[...auth]}`);
        assert.ok(sumWhere(auth, { method: method, direction: "in" }) >= 1, `in: ${[...auth]}`);
        const other = method === "dialback" ? "sasl-external" : "dialback";
        assert.equal(sumWhere(auth, { method: other, direction: "in" }), 0);
        assert.equal(sumWhere(auth, { method: other, direction: "out" }), 0);
        if (mode === "dialback")
          assert.ok(
            s.dns.asked.includes(`_xmpp-server._tcp.${o.domain} 33`),
            `${o.domain} found through SRV`,
          );
      });

      test("offline delivery for a federated sender", async () => {
        const body = `for dave while he is away (${mode})`;
        await s.bob.send(xml("message", { to: "dave@sb.test", type: "chat" }, xml("body", {}, body)));
        await new Promise((r) => setTimeout(r, 1500));
        const dave = await connectJs(s.sb, { user: "dave", password: PW.dave, resource: "home" });
        try {
          await dave.send(xml("presence"));
          const got = await dave.next(
            is.message({ body }),
            "the peer's user's message, stored offline",
            LINK_WAIT_MS,
          );
          assert.equal(got.attrs.from, s.bob.jid);
          assert.ok(got.getChild("delay", "urn:xmpp:delay"));
        } finally {
          await dave.close();
        }
      });

      // These change the licensing policy: they run last, on the same servers.
      test("under warn, the peer's user gets one headline naming the cutoff", async () => {
        await warnHeadline(s.peering, `${o.peerName}, ${mode}`);
      });

      test("with a peering licence chat works; revoking it closes the links within a second and the peer's next attempt is refused", async () => {
        await licenceRevoked(s.peering, `${o.peerName}, ${mode}`);
      });
    });
  }
}
