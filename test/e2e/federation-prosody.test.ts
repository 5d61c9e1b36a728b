/**
 * Federation with Prosody (Debian's prosody), started by the test on 127.0.0.2 from a
 * temporary configuration, with a certificate from a CA the test makes. Prosody finds
 * Switchboard through the test's DNS server (SRV and A records); Switchboard finds Prosody
 * through the same DNS server in the dialback run and through `--s2s-route` in the
 * certificate run. Subscription and chat both ways and offline delivery for a federated
 * sender, once over Server Dialback (Switchboard's self-signed certificate, trusted by
 * nobody) and once over SASL EXTERNAL (both certificates from the test CA, Prosody with
 * s2s_secure_auth).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chatBothWays, LINK_WAIT_MS, metricValues, subscribe } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { ProsodyServer, prosodySkip } from "../helpers/prosody.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { is, xml } from "../helpers/stanza.js";
import { TestCa } from "../helpers/test-ca.js";
import { TestDns } from "../helpers/test-dns.js";

const NET = 100 + Math.floor(Math.random() * 150);
const SB_HOST = `127.78.${NET}.1`;
const DNS_HOST = `127.78.${NET}.53`;
const PR_HOST = "127.0.0.2";
const PW = { alice: "alice-prosody-pw", dave: "dave-prosody-pw", bob: "bob-on-prosody-pw" };

interface Setup {
  sb: TestServer;
  prosody: ProsodyServer;
  dns: TestDns;
  metrics: string;
  alice: JsPeer;
  bob: JsPeer;
}

async function setUp(name: string, mode: "dialback" | "certificates"): Promise<Setup> {
  const ca = new TestCa();
  const [sbS2s, sbHttp, prC2s, prS2s] = (await freePorts(4)) as [number, number, number, number];
  const dns = await TestDns.start(DNS_HOST);
  dns
    .addSrv("_xmpp-server._tcp.sb.test", { priority: 0, weight: 5, port: sbS2s, target: "sb.test" })
    .addA("sb.test", SB_HOST);
  dns
    .addSrv("_xmpp-server._tcp.pr.test", { priority: 0, weight: 5, port: prS2s, target: "pr.test" })
    .addA("pr.test", PR_HOST);
  const pr = ca.issue("pr.test");
  const prosody = await ProsodyServer.start({
    name: `${name}-prosody`,
    domain: "pr.test",
    host: PR_HOST,
    c2sPort: prC2s,
    s2sPort: prS2s,
    certFile: pr.certFile,
    keyFile: pr.keyFile,
    caFile: ca.caFile,
    resolvConf: dns.resolvConf(ca.dir),
    secureAuth: mode === "certificates",
  });
  prosody.register("bob", PW.bob);
  const sbCert = mode === "certificates" ? ca.issue("sb.test") : undefined;
  const sb = await startServer({
    name: `${name}-switchboard`,
    domain: "sb.test",
    host: SB_HOST,
    users: { alice: PW.alice, dave: PW.dave },
    config: {
      http: { tls: "off" },
      ...(sbCert ? { tls: { certFile: sbCert.certFile, keyFile: sbCert.keyFile } } : {}),
      // The dialback run resolves pr.test through DNS SRV like any domain.
      ...(mode === "dialback" ? { modules: { s2s: { dnsServers: [DNS_HOST] } } } : {}),
    },
    extraArgs: [
      "--s2s-port",
      String(sbS2s),
      "--http-port",
      String(sbHttp),
      "--log-level",
      "info",
      ...(mode === "certificates"
        ? ["--s2s-ca", ca.caFile, "--s2s-route", `pr.test=${PR_HOST}:${prS2s}`]
        : []),
    ],
  });
  const alice = await connectJs(sb, { user: "alice", password: PW.alice, resource: "desk" });
  const bob = await connectJs(prosody.endpoint as unknown as TestServer, {
    user: "bob",
    password: PW.bob,
    resource: "laptop",
  });
  await alice.send(xml("presence"));
  await bob.send(xml("presence"));
  return { sb, prosody, dns, metrics: `http://${SB_HOST}:${sbHttp}/metrics`, alice, bob };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (!s) return;
  await s.alice.close();
  await s.bob.close();
  await s.sb.stop();
  await s.prosody.stop();
  await s.dns.stop();
}

for (const mode of ["dialback", "certificates"] as const) {
  const method = mode === "dialback" ? "dialback" : "sasl-external";
  describe(`federation with Prosody (${mode})`, { skip: prosodySkip }, () => {
    let s: Setup;
    before(async () => {
      s = await setUp(`federation-prosody-${mode}`, mode);
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
        throw new Error(`${(err as Error).message}\nprosody log:\n${s.prosody.logTail()}`);
      }
    });

    test(`both links authenticated with ${method}`, async () => {
      const auth = await metricValues(s.metrics, "switchboard_s2s_authenticated_total");
      assert.ok((auth.get(`method="${method}",direction="out"`) ?? 0) >= 1, `out: ${[...auth]}`);
      assert.ok((auth.get(`method="${method}",direction="in"`) ?? 0) >= 1, `in: ${[...auth]}`);
      const other = method === "dialback" ? "sasl-external" : "dialback";
      assert.equal(auth.get(`method="${other}",direction="in"`) ?? 0, 0);
      assert.equal(auth.get(`method="${other}",direction="out"`) ?? 0, 0);
      if (mode === "dialback")
        assert.ok(s.dns.asked.includes("_xmpp-server._tcp.pr.test 33"), "pr.test found through SRV");
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
          "bob@pr.test's message, stored offline",
          LINK_WAIT_MS,
        );
        assert.equal(got.attrs.from, s.bob.jid);
        assert.ok(got.getChild("delay", "urn:xmpp:delay"));
      } finally {
        await dave.close();
      }
    });
  });
}
