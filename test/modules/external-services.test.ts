/**
 * External service discovery (XEP-0215): the configured STUN/TURN services listed to the
 * server's accounts, filtered by type, credentials on request, TURN REST API credentials
 * (checked against values computed apart, with Python's hmac and openssl), refusal of
 * anyone who is not an account of the server, and no feature without services.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { ConfigError } from "../../src/core/config.js";
import { parseJid } from "../../src/core/jid.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { type XmlElement, x } from "../../src/core/xml/element.js";
import disco, { NS_DISCO_INFO } from "../../src/modules/disco/index.js";
import externalServices, {
  NS_EXTDISCO,
  turnRestCredentials,
} from "../../src/modules/external-services/index.js";
import { loadServerConfig } from "../../src/server/config.js";
import { errorCondition, type Harness, startHarness } from "../kit/harness.js";

const T0 = Date.UTC(2026, 0, 1); // 1767225600 in Unix seconds
const CORP = "corp.test";

const SERVICES = [
  { type: "stun", host: "stun.example.test" },
  { type: "turn", host: "turn.example.test", port: 3478, transport: "udp", secret: "north-wind" },
  { type: "turns", host: "turn.example.test", secret: true, restricted: true },
  {
    type: "turn",
    host: "192.0.2.1",
    transport: "tcp",
    name: "Fallback relay",
    username: "static-user",
    password: "static-pass",
  },
];

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(externalServicesConfig?: Record<string, unknown>): Promise<Harness> {
  const h = await startHarness({
    modules: [disco, externalServices] as ModuleDefinition<unknown>[],
    config: {
      hosts: [CORP],
      ...(externalServicesConfig ? { externalServices: externalServicesConfig } : {}),
    },
  });
  harnesses.push(h);
  h.clock.t = T0;
  await h.createUser("alice");
  await h.createUser(`bob@${CORP}`);
  return h;
}

const configured = () => start({ services: SERVICES, secret: "shared-by-all", ttlSeconds: 3600 });

const services = (type?: string) =>
  x("iq", { type: "get", to: "example.test" }, x("services", { xmlns: NS_EXTDISCO, type }));
const credentials = (...wanted: Record<string, string | undefined>[]) =>
  x(
    "iq",
    { type: "get", to: "example.test" },
    x("credentials", { xmlns: NS_EXTDISCO }, ...wanted.map((w) => x("service", w))),
  );
/** The attributes of each <service/> as they are written (absent ones left out). */
const listed = (reply: XmlElement, name = "services") => {
  assert.equal(reply.attrs.type, "result", reply.toString());
  return reply
    .getChild(name, NS_EXTDISCO)!
    .getChildren("service")
    .map((s) => Object.fromEntries(Object.entries(s.attrs).filter(([, v]) => v !== undefined)));
};

test("TURN REST API credentials: <expiry>:<user>, base64 HMAC-SHA1 of it with the shared secret", () => {
  // Expected values computed apart: printf '%s' USER | openssl dgst -sha1 -hmac SECRET -binary | base64
  assert.deepEqual(turnRestCredentials("north-wind", "alice@example.test", T0, 3600), {
    username: "1767229200:alice@example.test",
    password: "NMtHoesIwmGkbAzO5/m06vVD9tI=",
    expires: 1767229200,
  });
  assert.deepEqual(turnRestCredentials("shared-by-all", "bob@corp.test", T0 + 999, 3600), {
    username: "1767229200:bob@corp.test",
    password: "1MBFs3+H79Rj2AII3mF7eCfCBZQ=",
    expires: 1767229200,
  });
});

test("an account gets every service, with credentials unless the service is restricted", async () => {
  const h = await configured();
  assert.ok(h.server.services.disco.getFeatures("host").includes(NS_EXTDISCO));
  const a = await h.connect("alice");
  const info = await a.iq(x("iq", { type: "get", to: "example.test" }, x("query", { xmlns: NS_DISCO_INFO })));
  const vars = info
    .getChild("query", NS_DISCO_INFO)!
    .getChildren("feature")
    .map((f) => f.attrs.var);
  assert.ok(vars.includes(NS_EXTDISCO), "advertised in the server's disco#info");

  assert.deepEqual(listed(await a.iq(services())), [
    { type: "stun", host: "stun.example.test", port: "3478", transport: "udp" },
    {
      type: "turn",
      host: "turn.example.test",
      port: "3478",
      transport: "udp",
      username: "1767229200:alice@example.test",
      password: "NMtHoesIwmGkbAzO5/m06vVD9tI=",
      expires: "2026-01-01T01:00:00Z",
    },
    { type: "turns", host: "turn.example.test", port: "5349", transport: "tcp", restricted: "true" },
    {
      type: "turn",
      host: "192.0.2.1",
      port: "3478",
      transport: "tcp",
      name: "Fallback relay",
      username: "static-user",
      password: "static-pass",
    },
  ]);

  // Credentials are made at each request, valid ttlSeconds from then.
  h.clock.advance(600_000);
  const later = listed(await a.iq(services("turn")))[0]!;
  assert.equal(later.username, "1767229800:alice@example.test");
  assert.equal(later.password, "MB9fJsu+kH1eCdCjki1YShdfEdU=");
  assert.equal(later.expires, "2026-01-01T01:10:00Z");
  await a.disconnect();
});

test("a type selects the services of that type", async () => {
  const h = await configured();
  const a = await h.connect("alice");
  const turn = await a.iq(services("turn"));
  assert.equal(turn.getChild("services", NS_EXTDISCO)!.attrs.type, "turn");
  assert.deepEqual(
    listed(turn).map((s) => `${s.type} ${s.host}`),
    ["turn turn.example.test", "turn 192.0.2.1"],
  );
  assert.deepEqual(
    listed(await a.iq(services("stun"))).map((s) => s.host),
    ["stun.example.test"],
  );
  assert.deepEqual(listed(await a.iq(services("turns"))).length, 1);
  assert.deepEqual(listed(await a.iq(services("ftp"))), []);
  await a.disconnect();
});

test("credentials for a named service, restricted ones included", async () => {
  const h = await configured();
  const a = await h.connect("alice");
  assert.deepEqual(
    listed(await a.iq(credentials({ type: "turns", host: "turn.example.test" })), "credentials"),
    [
      {
        type: "turns",
        host: "turn.example.test",
        port: "5349",
        transport: "tcp",
        restricted: "true",
        username: "1767229200:alice@example.test",
        password: "cDxFE1vwxTEnaexG5pPr6czaLaU=",
        expires: "2026-01-01T01:00:00Z",
      },
    ],
  );
  // The port picks one of the services of a host; host names compare without case.
  const udp = listed(
    await a.iq(credentials({ type: "turn", host: "TURN.example.test", port: "3478" })),
    "credentials",
  );
  assert.deepEqual(
    udp.map((s) => [s.type, s.port, s.username]),
    [["turn", "3478", "1767229200:alice@example.test"]],
  );
  const both = listed(
    await a.iq(
      credentials({ type: "turn", host: "192.0.2.1" }, { type: "turns", host: "turn.example.test" }),
    ),
    "credentials",
  );
  assert.deepEqual(
    both.map((s) => s.username),
    ["1767229200:alice@example.test", "static-user"],
  );

  // Nothing to give: a wrong port, an unknown host, a service without credentials.
  for (const wanted of [
    { type: "turn", host: "turn.example.test", port: "9999" },
    { type: "turn", host: "elsewhere.example" },
    { type: "stun", host: "stun.example.test" },
  ])
    assert.equal(errorCondition(await a.iq(credentials(wanted))), "item-not-found", JSON.stringify(wanted));
  // Malformed requests.
  assert.equal(errorCondition(await a.iq(credentials())), "bad-request");
  assert.equal(errorCondition(await a.iq(credentials({ host: "turn.example.test" }))), "bad-request");
  assert.equal(
    errorCondition(await a.iq(credentials({ type: "turn", host: "turn.example.test", port: "x" }))),
    "bad-request",
  );
  const other = x("iq", { type: "get", to: "example.test" }, x("service", { xmlns: NS_EXTDISCO }));
  assert.equal(errorCondition(await a.iq(other)), "bad-request");
  const set = x("iq", { type: "set", to: "example.test" }, x("services", { xmlns: NS_EXTDISCO }));
  assert.equal(errorCondition(await a.iq(set)), "service-unavailable");
  await a.disconnect();
});

test("an account of another served domain gets credentials in its own name", async () => {
  const h = await configured();
  const b = await h.connect(`bob@${CORP}`);
  const reply = await b.iq(credentials({ type: "turns", host: "turn.example.test" }));
  assert.deepEqual(
    listed(reply, "credentials").map((s) => [s.username, s.password]),
    [["1767229200:bob@corp.test", "1MBFs3+H79Rj2AII3mF7eCfCBZQ="]],
  );
  await b.disconnect();
});

test("users of other servers, and other servers, are refused", async () => {
  const h = await configured();
  const router = h.server.services.router;
  const sent: XmlElement[] = [];
  router.addRemoteRoute({
    kind: "test",
    priority: 1,
    canRoute: (d) => d === "remote.test",
    send: (s) => sent.push(s),
  });
  const asks: [string, XmlElement][] = [
    ["mallory@remote.test/x", services()],
    ["mallory@remote.test/x", credentials({ type: "turns", host: "turn.example.test" })],
    ["remote.test", services()],
  ];
  for (const [from, iq] of asks) {
    iq.attrs.id = `r${sent.length}`;
    iq.attrs.from = from;
    await router.deliver(iq, parseJid(from), parseJid("example.test"));
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sent.length, asks.length);
  for (const reply of sent) {
    assert.equal(reply.attrs.type, "error", reply.toString());
    assert.equal(errorCondition(reply), "forbidden");
    assert.ok(!reply.toString().includes("password="), "no credentials leak into the error");
  }
});

test("without services the feature is neither advertised nor answered", async () => {
  const h = await start();
  assert.ok(!h.server.services.disco.getFeatures("host").includes(NS_EXTDISCO));
  const a = await h.connect("alice");
  const info = await a.iq(x("iq", { type: "get", to: "example.test" }, x("query", { xmlns: NS_DISCO_INFO })));
  const vars = info
    .getChild("query", NS_DISCO_INFO)!
    .getChildren("feature")
    .map((f) => f.attrs.var);
  assert.ok(vars.length > 0 && !vars.includes(NS_EXTDISCO));
  assert.equal(errorCondition(await a.iq(services())), "service-unavailable");
  assert.equal(
    errorCondition(await a.iq(credentials({ type: "turn", host: "turn.example.test" }))),
    "service-unavailable",
  );
  await a.disconnect();
});

test("the configuration is checked at start", () => {
  const load = (externalServices: unknown, env: NodeJS.ProcessEnv = {}) =>
    loadServerConfig({ overrides: { externalServices }, env }).externalServices;
  const refused = (value: unknown, path: RegExp) =>
    assert.throws(
      () => load(value),
      (err: unknown) => err instanceof ConfigError && path.test(err.message),
      JSON.stringify(value),
    );

  assert.deepEqual(load(undefined), { services: [], secret: "", ttlSeconds: 86400 });
  assert.deepEqual(load({ services: [{ type: "turns", host: "turn.example.org" }] }).services[0], {
    type: "turns",
    host: "turn.example.org",
    port: 5349,
    transport: "tcp",
    restricted: false,
  });
  // The shared secret can come from the environment.
  assert.equal(
    load(
      { services: [{ type: "turn", host: "t.example", secret: true }] },
      {
        SWITCHBOARD_EXTERNAL_SERVICES_SECRET: "from-env",
      },
    ).secret,
    "from-env",
  );

  refused(
    { services: [{ type: "turn", host: "t.example", secret: true }] },
    /externalServices\.services\.0\.secret/,
  );
  refused({ services: [{ type: "turn", host: "t.example", restricted: true }] }, /services\.0\.restricted/);
  refused({ services: [{ type: "turn", host: "t.example", username: "u" }] }, /services\.0\.password/);
  refused(
    { services: [{ type: "turn", host: "t.example", username: "u", password: "p", secret: "s" }] },
    /services\.0\.secret/,
  );
  refused({ services: [{ type: "turn", host: "turn:t.example" }] }, /services\.0\.host/);
  refused({ services: [{ type: "ftp", host: "t.example" }] }, /services\.0\.type/);
  refused({ services: [{ type: "turn", host: "t.example", transprt: "tcp" }] }, /services\.0/);
  refused({ services: [{ type: "turn", host: "t.example", port: 70000 }] }, /services\.0\.port/);
  refused({ ttlSeconds: 10 }, /externalServices\.ttlSeconds/);
  // An IPv6 address is a host.
  assert.equal(load({ services: [{ type: "stun", host: "2001:db8::1" }] }).services[0]!.host, "2001:db8::1");
});
