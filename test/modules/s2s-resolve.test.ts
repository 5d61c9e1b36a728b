/**
 * Where a remote domain is reached (RFC 6120 §3.2, XEP-0368), against a DNS server the test
 * runs: the static host map first, SRV records merged by priority with direct TLS first at
 * equal priority, each target's addresses from the same DNS server, "." as no service, and
 * the domain's own address on port 5269 without SRV records.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TargetResolver } from "../../src/modules/s2s/resolve.js";
import { TestDns } from "../helpers/test-dns.js";

let dns: TestDns;
let resolver: TargetResolver;

before(async () => {
  dns = await TestDns.start("127.0.0.1", 0);
  dns
    .addSrv("_xmpp-server._tcp.both.test", { priority: 10, weight: 5, port: 5269, target: "plain.both.test" })
    .addSrv("_xmpp-server._tcp.both.test", { priority: 5, weight: 5, port: 5280, target: "first.both.test" })
    .addSrv("_xmpps-server._tcp.both.test", { priority: 10, weight: 5, port: 5270, target: "tls.both.test" })
    .addA("plain.both.test", "127.0.1.1")
    .addA("first.both.test", "127.0.1.2")
    .addA("tls.both.test", "127.0.1.3")
    .addSrv("_xmpp-server._tcp.none.test", { priority: 0, weight: 0, port: 0, target: "." })
    .addA("bare.test", "127.0.1.4");
  resolver = new TargetResolver(
    { "mapped.test": "127.0.2.1:5999", "v6.test": "[::1]:5269" },
    [`127.0.0.1:${dns.port}`],
    2000,
  );
});
after(() => dns.stop());

test("the static host map comes before DNS", async () => {
  assert.deepEqual(await resolver.resolve("mapped.test"), [
    { host: "127.0.2.1", port: 5999, directTls: false },
  ]);
  assert.deepEqual(await resolver.resolve("v6.test"), [{ host: "::1", port: 5269, directTls: false }]);
  assert.ok(!dns.asked.some((q) => q.includes("mapped.test")), "no DNS question for a mapped domain");
});

test("SRV targets by priority, direct TLS first at equal priority, each resolved to its address", async () => {
  assert.deepEqual(await resolver.resolve("both.test"), [
    { host: "127.0.1.2", port: 5280, directTls: false },
    { host: "127.0.1.3", port: 5270, directTls: true },
    { host: "127.0.1.1", port: 5269, directTls: false },
  ]);
});

test('a "." target: the domain offers no server-to-server service', async () => {
  assert.deepEqual(await resolver.resolve("none.test"), []);
});

test("without SRV records: the domain's own address on 5269", async () => {
  assert.deepEqual(await resolver.resolve("bare.test"), [
    { host: "127.0.1.4", port: 5269, directTls: false },
  ]);
  // A name nobody knows is left to the system's resolver at connection time.
  assert.deepEqual(await resolver.resolve("unknown.test"), [
    { host: "unknown.test", port: 5269, directTls: false },
  ]);
});
