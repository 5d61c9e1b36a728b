/**
 * Gateway licences against the real server: under `enforce` a component that proves its
 * secret but holds no gateway licence is refused at the handshake (policy-violation with the
 * licensing condition and a text); with a licence it attaches; revoking or suspending the
 * licence with the CLI (another process) detaches it within a second, and its next attempt is
 * refused; under `warn` an unlicensed component attaches and gets one headline a day naming
 * its cutoff, and is detached when the cutoff comes. The Links API and /metrics show the link.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { cli, instantIn, LICENCE_NS, policySet } from "../helpers/licensed-setup.js";
import { RawConnection } from "../helpers/raw-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";

const GATEWAY = "irc.gw.localhost";
/** A gateway that never had a licence (an expired or revoked one refuses in every mode). */
const NEW_GATEWAY = "new.gw.localhost";
const SECRET = "a-shared-secret-for-the-irc-gateway";
/** Detaching must happen within a second of the command returning; the margin is for a busy machine. */
const DETACH_MS = 1500;

function componentHeader(domain: string): string {
  return (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' " +
    `xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`
  );
}

/** The whole <stream:error/> element of a connection, with its condition, text and application condition. */
async function streamErrorOf(c: RawConnection, what: string, timeoutMs?: number) {
  const m = await c.waitFor(/<stream:error[\s>][\s\S]*?<\/stream:error>/, what, timeoutMs);
  const xml = m[0];
  const condition = /<([a-z-]+)\s[^>]*xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/.exec(
    xml.replace(/<text\s[^>]*>[\s\S]*?<\/text>/, ""),
  )?.[1];
  const text = /<text[^>]*>([\s\S]*?)<\/text>/.exec(xml)?.[1];
  const app = new RegExp(`<([a-z-]+)\\s[^>]*xmlns=["']${LICENCE_NS}["']`).exec(xml)?.[1];
  return { xml, condition, text, app };
}

describe("gateway licences for components", () => {
  let server: TestServer;
  let port: number;
  let base: string;
  let token: string;
  const opened: RawConnection[] = [];

  /** Opens a component stream and answers the handshake; resolves once the server answered it or refused. */
  async function attempt(domain = GATEWAY): Promise<RawConnection> {
    const c = await RawConnection.connect({ host: server.host, port, label: `component ${domain}` });
    opened.push(c);
    c.write(componentHeader(domain));
    const m = await c.waitFor(/<stream:stream[^>]*\bid=['"]([^'"]+)['"][^>]*>/, "the server's stream header");
    c.write(
      `<handshake>${createHash("sha1")
        .update(m[1]! + SECRET)
        .digest("hex")}</handshake>`,
    );
    return c;
  }

  async function attach(domain = GATEWAY): Promise<RawConnection> {
    const c = await attempt(domain);
    await c.waitFor(/<handshake\s*\/>|<handshake><\/handshake>/, "the handshake's answer");
    return c;
  }

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
    return ((await res.json()) as { data: T }).data;
  }

  async function grant(...extra: string[]): Promise<string> {
    const out = (await cli(server, ["licence", "grant", GATEWAY, "--scope", "gateway", ...extra])) as {
      licence: { id: string; scope: string; domain: string };
    };
    assert.equal(out.licence.scope, "gateway");
    assert.equal(out.licence.domain, GATEWAY);
    return out.licence.id;
  }

  before(async () => {
    const [componentPort, httpPort] = (await freePorts(2)) as [number, number];
    port = componentPort;
    server = await startServer({
      name: "gateway-licence",
      users: {},
      extraArgs: ["--component-port", String(port), "--http-port", String(httpPort), "--log-level", "info"],
    });
    base = `http://127.0.0.1:${httpPort}`;
    await cli(server, ["component", "add", GATEWAY, "--secret", SECRET]);
    await cli(server, ["component", "add", NEW_GATEWAY, "--secret", SECRET]);
    token = ((await cli(server, ["token", "create", "--name", "links-test"])) as { token: string }).token;
    await policySet(server, "--mode", "enforce");
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await server.stop();
  });

  test("under enforce, a component without a gateway licence cannot attach", async () => {
    const c = await attempt();
    const e = await streamErrorOf(c, "an unlicensed component");
    assert.equal(e.condition, "policy-violation", e.xml);
    assert.equal(e.app, "unlicensed-gateway", e.xml);
    assert.match(e.text ?? "", /no gateway licence/, e.xml);
    assert.doesNotMatch(c.received, /<handshake\s*\/>/, "no handshake answer before the refusal");
    // A wrong secret is still a plain not-authorized: the licence is only looked at after the secret.
    const wrong = await RawConnection.connect({ host: server.host, port, label: "wrong secret" });
    opened.push(wrong);
    wrong.write(componentHeader(GATEWAY));
    await wrong.waitFor(/<stream:stream[^>]*>/, "header");
    wrong.write("<handshake>0000000000000000000000000000000000000000</handshake>");
    assert.equal(await wrong.streamError("a wrong secret"), "not-authorized");
  });

  test("with a gateway licence it attaches; revoking it detaches the component within a second and refuses the next attempt", async () => {
    const id = await grant();
    const c = await attach();
    const { links } = await api<{
      links: {
        kind: string;
        domain: string;
        method: string;
        licence: { status: string; licenceId?: string };
      }[];
    }>("/api/v1/link/list");
    const link = links.find((l) => l.domain === GATEWAY);
    assert.ok(link, JSON.stringify(links));
    assert.equal(link.kind, "component");
    assert.equal(link.method, "secret");
    assert.equal(link.licence.status, "active");
    assert.equal(link.licence.licenceId, id);
    // From the CLI (another process), the links the server wrote a moment ago.
    let fromCli: { domain: string; licence: { status: string } }[] = [];
    for (let i = 0; i < 30 && !fromCli.some((l) => l.domain === GATEWAY); i++) {
      fromCli = ((await cli(server, ["link", "list"])) as { links: typeof fromCli }).links;
      if (!fromCli.some((l) => l.domain === GATEWAY)) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(
      fromCli.find((l) => l.domain === GATEWAY)?.licence.status,
      "active",
      JSON.stringify(fromCli),
    );
    // The console's Links page shows the same link with its licence.
    const page = await fetch(`${base}/console/links`, {
      headers: { authorization: `Bearer ${token}`, accept: "text/html" },
    });
    assert.equal(page.status, 200);
    const pageHtml = await page.text();
    assert.match(pageHtml, /data-testid="links-table"/);
    assert.match(
      pageHtml,
      new RegExp(`${GATEWAY.replace(/\./g, "\\.")}[\\s\\S]*?gateway active[\\s\\S]*?${id}`),
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(
        `switchboard_interconnect_links\\{kind="component",domain="${GATEWAY}",status="active"\\} 1`,
      ),
    );

    await cli(server, ["licence", "revoke", id]);
    const returned = Date.now();
    const e = await streamErrorOf(c, "after licence revoke", 5000);
    const took = Date.now() - returned;
    assert.equal(e.condition, "policy-violation", e.xml);
    assert.equal(e.app, "licence-revoked", e.xml);
    assert.ok(took < DETACH_MS, `detached ${took} ms after the command returned`);

    const next = await attempt();
    const refused = await streamErrorOf(next, "the next attempt");
    assert.equal(refused.app, "licence-revoked", refused.xml);
    const after = await (await fetch(`${base}/metrics`)).text();
    assert.match(
      after,
      /switchboard_interconnect_detached_total\{scope="gateway",reason="licence-revoked"\} 1/,
    );
    assert.match(
      after,
      /switchboard_interconnect_refused_total\{scope="gateway",reason="licence-revoked"\} 1/,
    );
  });

  test("suspending detaches it; reinstating lets it attach again", async () => {
    const id = await grant();
    const c = await attach();
    await cli(server, ["licence", "suspend", id]);
    const returned = Date.now();
    const e = await streamErrorOf(c, "after licence suspend", 5000);
    assert.equal(e.app, "licence-suspended", e.xml);
    assert.ok(Date.now() - returned < DETACH_MS);
    await cli(server, ["licence", "reinstate", id]);
    // The server picks up the reinstatement at its next registry poll.
    let back: RawConnection | undefined;
    for (let i = 0; i < 20 && !back; i++) {
      const c2 = await attempt();
      const answer = await c2.waitFor(/<handshake\s*\/>|<stream:error/, "the answer");
      if (answer[0].startsWith("<handshake")) back = c2;
      else await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(back, "the component attaches again after reinstatement");
    // An expiry works the same: the licence ends a moment from now and the component goes.
    await cli(server, ["licence", "extend", id, "--until", instantIn(1500).iso]);
    const gone = await streamErrorOf(back, "at the licence's end", 6000);
    assert.equal(gone.app, "licence-expired", gone.xml);
    c.destroy();
  });

  test("under warn an unlicensed component attaches, gets one headline naming the cutoff, and goes at the cutoff", async () => {
    // A wide lead: the policy command and two handshakes must fit before the cutoff on a busy machine.
    const cutoff = instantIn(15_000);
    await policySet(server, "--mode", "warn", "--clear-stages", "--stage", `${cutoff.iso}=enforce`);
    // The domain whose licence expired stays refused; one that never had a licence is warned.
    assert.equal(
      (await streamErrorOf(await attempt(), "an expired licence under warn")).app,
      "licence-expired",
    );
    const c = await attach(NEW_GATEWAY);
    const headline = await c.waitFor(
      /<message[^>]*type=['"]headline['"][^>]*>[\s\S]*?<\/message>/,
      "the warning headline",
    );
    assert.match(headline[0], new RegExp(`to=['"]${NEW_GATEWAY}['"]`));
    assert.match(headline[0], /this link stops on \d{4}-\d\d-\d\dT/i);
    assert.match(headline[0], new RegExp(`<unlicensed-gateway[^>]*xmlns=['"]${LICENCE_NS}['"]`));
    assert.match(headline[0], new RegExp(`cutoff=['"]${cutoff.iso}['"]`));
    const e = await streamErrorOf(c, "at the cutoff", 25_000);
    assert.equal(e.app, "unlicensed-gateway", e.xml);
    assert.ok(Date.now() - cutoff.at < DETACH_MS, `detached ${Date.now() - cutoff.at} ms after the cutoff`);
  });
});
