/**
 * The bench's WebSocket transport and its stream management comparison: the load generator's
 * RFC 7395 framing held to the server's own (what Switchboard writes, the generator reads; what
 * the generator writes is what the server would have declared), the clients each phase asks
 * for, Prosody's configuration for WebSocket, and the report's figures for the comparison.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { prosodyConfig } from "../../bench/lib/prosody.js";
import { figures } from "../../bench/lib/report.js";
import { clientTarget, type MemoryPoint, type ServerResults } from "../../bench/lib/scenario.js";
import type { ServerSetup } from "../../bench/lib/server.js";
import { QUICK, WEBSOCKET_PATH } from "../../bench/lib/settings.js";
import { withContentNamespace } from "../../bench/loadgen/connection.js";
import { attr, type ScannerSink, scanFrame } from "../../bench/loadgen/scanner.js";
import { CLOSE_ELEMENT, declareNamespaces, openElement } from "../../src/transports/websocket/framing.js";

interface Seen {
  opens: string[];
  stanzas: { name: string; openTag: string; text: string }[];
  closes: number;
}

function recorder(): { sink: ScannerSink; seen: Seen } {
  const seen: Seen = { opens: [], stanzas: [], closes: 0 };
  return {
    seen,
    sink: {
      streamOpen: (openTag) => seen.opens.push(openTag),
      stanza: (name, openTag, text) => seen.stanzas.push({ name, openTag, text }),
      streamClose: () => seen.closes++,
    },
  };
}

test("scanFrame reads Switchboard's <open/>, elements and <close/> as a stream's parts", () => {
  const { sink, seen } = recorder();
  scanFrame(openElement({ id: "s-1", from: "bench.local" }), sink);
  const features = declareNamespaces(
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
  );
  scanFrame(features, sink);
  scanFrame(declareNamespaces("<message from='u2@bench.local/r' id='t1.0'><body>hi</body></message>"), sink);
  scanFrame("  \n", sink); // whitespace alone is not an element
  scanFrame(CLOSE_ELEMENT, sink);
  assert.equal(seen.opens.length, 1);
  assert.equal(attr(seen.opens[0]!, "id"), "s-1");
  assert.deepEqual(
    seen.stanzas.map((s) => s.name),
    ["stream:features", "message"],
  );
  assert.equal(seen.stanzas[0]!.text, features);
  assert.equal(attr(seen.stanzas[1]!.openTag, "id"), "t1.0");
  assert.equal(seen.closes, 1);
});

test("scanFrame takes <open/> and <close/> outside the framing namespace for elements", () => {
  const { sink, seen } = recorder();
  scanFrame("<open xmlns='urn:example'/>", sink);
  assert.equal(seen.opens.length, 0);
  assert.deepEqual(
    seen.stanzas.map((s) => s.name),
    ["open"],
  );
});

test("scanFrame refuses text that is not one whole element", () => {
  const { sink } = recorder();
  assert.throws(() => scanFrame("hello", sink), /not an element/);
  assert.throws(() => scanFrame("<message id='x", sink), /incomplete element/);
});

test("a stanza the generator sends over WebSocket declares jabber:client, as the server declares its own", () => {
  for (const stanza of [
    "<presence/>",
    "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    "<message to='u2@bench.local' id='t1.0' type='chat'><body>x</body></message>",
  ]) {
    assert.equal(withContentNamespace(stanza), declareNamespaces(stanza), stanza);
  }
  for (const namespaced of [
    "<enable xmlns='urn:xmpp:sm:3'/>",
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biws</auth>",
    "<a xmlns='urn:xmpp:sm:3' h='3'/>",
  ]) {
    assert.equal(withContentNamespace(namespaced), namespaced);
  }
});

test("each phase's clients: WebSocket path, stream management off only in memory-no-sm", () => {
  const mobile = { ...QUICK, features: "mobile" as const };
  const ws = clientTarget(mobile, 5280, "websocket", "memory");
  assert.equal(ws.websocketPath, WEBSOCKET_PATH);
  assert.equal(ws.tls, false);
  assert.equal(ws.streamManagement, true);
  assert.equal(ws.carbons, true);
  const noSm = clientTarget(mobile, 5222, "starttls", "memory-no-sm");
  assert.equal(noSm.websocketPath, undefined);
  assert.equal(noSm.tls, true);
  assert.equal(noSm.streamManagement, false);
  assert.equal(noSm.carbons, true, "only stream management differs between the two memory phases");
  const im = clientTarget({ ...QUICK, features: "im" }, 5222, "plaintext", "memory");
  assert.equal(im.streamManagement, false);
  assert.equal(im.carbons, false);
});

test("Prosody's configuration for WebSocket: mod_websocket on the HTTP port, no client port", () => {
  const setup: ServerSetup = {
    dir: "/tmp/bench",
    domain: "bench.local",
    host: "127.0.0.1",
    accounts: { prefix: "u", passwordPrefix: "p", count: 1 },
    certFile: "/tmp/bench/c.pem",
    keyFile: "/tmp/bench/k.pem",
    features: "mobile",
  };
  const ws = prosodyConfig(setup, 40123, "websocket");
  assert.match(ws, /"websocket";/);
  assert.match(ws, /^http_ports = \{ 40123 \}$/m);
  assert.match(ws, /^c2s_ports = \{ {2}\}$/m);
  assert.match(ws, /^consider_websocket_secure = true$/m);
  assert.match(ws, /"smacks";/);
  const plain = prosodyConfig(setup, 40123, "plaintext");
  assert.doesNotMatch(plain, /"websocket";/);
  assert.match(plain, /^http_ports = \{ {2}\}$/m);
  assert.match(plain, /^c2s_ports = \{ 40123 \}$/m);
});

function point(sessions: number, kib: number): MemoryPoint {
  return { sessions, rssBytes: 0, bytesPerSession: kib * 1024, loginSeconds: 1 };
}

test("the report gives stream management's part per session and checks it against 2 KiB", () => {
  const s = { ...QUICK, transports: ["websocket" as const], memorySessions: [500, 1_000] };
  const server = (name: string, on: [number, number], off: [number, number]): ServerResults => ({
    server: name,
    version: "test",
    passwordStorage: "test",
    transports: {
      websocket: {
        memory: [point(500, on[0]), point(1_000, on[1])],
        memoryNoSm: [point(500, off[0]), point(1_000, off[1])],
      },
    },
    errors: [],
  });
  const rows = figures(s, [
    server("switchboard", [12, 11], [10.5, 8]),
    server("prosody", [48, 48], [38, 37]),
  ]);
  const row = (label: string) => {
    const r = rows.find((f) => f.label === `WebSocket: ${label}`);
    assert.ok(r, `no row ${label} in ${rows.map((f) => f.label).join(" | ")}`);
    return r;
  };
  const at500 = row("  … stream management's part @ 500");
  assert.equal(at500.switchboard, 1.5);
  assert.equal(at500.prosody, 10);
  assert.equal(at500.ratio, null);
  assert.equal(at500.target, "≤ 2 KiB");
  assert.equal(at500.met, true);
  assert.equal(row("  … stream management's part @ 1,000").met, false);
  // ws:// carries no TLS: the plaintext target, not the TLS one.
  assert.equal(row("memory per idle session @ 1,000").target, "≤ Prosody");
  assert.equal(row("  … without stream management @ 500").ratio, 10.5 / 38);
});

test("without the comparison measured the report has no stream management rows", () => {
  const s = { ...QUICK, transports: ["plaintext" as const], memorySessions: [500] };
  const rows = figures(s, [
    {
      server: "switchboard",
      version: "t",
      passwordStorage: "t",
      transports: { plaintext: { memory: [point(500, 9)] } },
      errors: [],
    },
  ]);
  assert.equal(rows.filter((f) => f.label.includes("stream management")).length, 0);
});

test("a run of some phases reports the figures of those phases only", () => {
  const s = {
    ...QUICK,
    transports: ["websocket" as const],
    phases: ["memory" as const, "memory-no-sm" as const],
  };
  const rows = figures(s, []);
  assert.ok(rows.length > 0);
  assert.ok(
    rows.every((f) => f.label.includes("memory") || f.label.includes("stream management")),
    rows.map((f) => f.label).join(" | "),
  );
  const logins = figures({ ...s, phases: ["logins"] }, []);
  assert.deepEqual(
    logins.map((f) => f.label),
    ["WebSocket: logins per second (50 in flight)", "WebSocket:   … per second of server CPU"],
  );
});
