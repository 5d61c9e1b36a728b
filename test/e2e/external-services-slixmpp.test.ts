/**
 * External service discovery (XEP-0215) on the real server, configured from a file, asked by
 * slixmpp over a real login. Debian's slixmpp has no xep_0215 plugin, so the requests are
 * raw IQs; the TURN credentials that come back are checked with openssl against the secret
 * in the configuration, as coturn (`use-auth-secret`) would check them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { startServer, type TestServer } from "../helpers/server.js";
import { commandSucceeds, requirePeer } from "../helpers/services.js";
import { connectSlix, type SlixPeer, slixSkip } from "../helpers/slix-client.js";
import { type Element, NS, stanzaError, xml } from "../helpers/stanza.js";

const NS_EXTDISCO = "urn:xmpp:extdisco:2";
const SECRET = "e2e-coturn-secret";
const TTL = 600;

const skip =
  slixSkip ||
  (await requirePeer("openssl", () =>
    commandSucceeds("openssl", ["version"]) === true ? true : "install the Debian package openssl",
  ));

/** base64(HMAC-SHA1(secret, username)), as openssl computes it. */
function opensslHmac(secret: string, username: string): string {
  const r = spawnSync("openssl", ["dgst", "-sha1", "-hmac", secret, "-binary"], { input: username });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout.toString("base64");
}

describe("external service discovery with slixmpp", { skip }, () => {
  let server: TestServer;
  let alice: SlixPeer;

  before(async () => {
    server = await startServer({
      name: "external-services-slixmpp",
      users: { alice: "alice-calls-pw" },
      config: {
        externalServices: {
          secret: SECRET,
          ttlSeconds: TTL,
          services: [
            { type: "stun", host: "turn.example.org" },
            { type: "turn", host: "turn.example.org", transport: "udp", secret: true },
            { type: "turns", host: "turn.example.org", secret: true, restricted: true },
          ],
        },
      },
      removeDataOnStop: true,
    });
    alice = await connectSlix(server, { user: "alice", password: "alice-calls-pw", resource: "phone" });
  });
  after(async () => {
    await alice?.close();
    await server?.stop();
  });

  const services = (type?: string) =>
    xml(
      "iq",
      { type: "get", to: "localhost", id: `s-${type ?? "all"}` },
      xml("services", { xmlns: NS_EXTDISCO, type }),
    );
  const entries = (reply: Element, name: string) => {
    assert.equal(reply.attrs.type, "result", reply.toString());
    return reply.getChild(name, NS_EXTDISCO)!.getChildren("service");
  };
  /** Checks TURN REST API credentials as the TURN server would, and returns their expiry. */
  const checkCredentials = (service: Element): number => {
    const { username, password, expires } = service.attrs as Record<string, string>;
    const m = /^(\d+):alice@localhost$/.exec(username ?? "");
    assert.ok(m, `username ${username}`);
    const expiry = Number(m[1]);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(expiry - (now + TTL)) <= 10, `expiry ${expiry}, now ${now}`);
    assert.equal(expires, new Date(expiry * 1000).toISOString().replace(".000Z", "Z"));
    assert.equal(password, opensslHmac(SECRET, username!));
    return expiry;
  };

  test("the server advertises the feature", async () => {
    const reply = await alice.iq(
      xml("iq", { type: "get", to: "localhost", id: "info" }, xml("query", { xmlns: NS.discoInfo })),
    );
    const vars = reply
      .getChild("query", NS.discoInfo)!
      .getChildren("feature")
      .map((f) => f.attrs.var);
    assert.ok(vars.includes(NS_EXTDISCO), vars.join(" "));
  });

  test("the services come with credentials a TURN server with the same secret accepts", async () => {
    const all = entries(await alice.iq(services()), "services");
    assert.deepEqual(
      all.map((s) => [s.attrs.type, s.attrs.port, s.attrs.transport, s.attrs.restricted]),
      [
        ["stun", "3478", "udp", undefined],
        ["turn", "3478", "udp", undefined],
        ["turns", "5349", "tcp", "true"],
      ],
    );
    assert.equal(all[0]!.attrs.username, undefined);
    checkCredentials(all[1]!);
    assert.equal(all[2]!.attrs.password, undefined, "a restricted service's credentials come on request");

    const turns = entries(
      await alice.iq(
        xml(
          "iq",
          { type: "get", to: "localhost", id: "creds" },
          xml(
            "credentials",
            { xmlns: NS_EXTDISCO },
            xml("service", { type: "turns", host: "turn.example.org" }),
          ),
        ),
      ),
      "credentials",
    );
    assert.equal(turns.length, 1);
    assert.equal(turns[0]!.attrs.type, "turns");
    checkCredentials(turns[0]!);
  });

  test("a type filters, and an unknown service has no credentials", async () => {
    assert.deepEqual(
      entries(await alice.iq(services("stun")), "services").map((s) => s.attrs.type),
      ["stun"],
    );
    const reply = await alice.iq(
      xml(
        "iq",
        { type: "get", to: "localhost", id: "creds-none" },
        xml(
          "credentials",
          { xmlns: NS_EXTDISCO },
          xml("service", { type: "turn", host: "other.example.org" }),
        ),
      ),
    );
    assert.equal(stanzaError(reply)?.condition, "item-not-found");
  });
});
