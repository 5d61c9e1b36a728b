/**
 * Peering licences between two Switchboard servers on loopback: b.test federates under
 * `--federation licensed`, a.test under `open`. Under `enforce` a.test is refused both ways
 * until b.test grants it a peering licence; under `warn` the link works and a.test's users get
 * a headline once a day saying when it stops; revoking the licence with the CLI closes the
 * links within a second, and the next attempt is refused with policy-violation and the
 * licensing condition. The Links API and /metrics show the links and their licence state.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chatBothWays, LINK_WAIT_MS, metricValues } from "../helpers/federation.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { cli, LICENCE_NS, policySet } from "../helpers/licensed-setup.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";
import { is, stanzaError, xml } from "../helpers/stanza.js";

const NET = 100 + Math.floor(Math.random() * 150);
const HOST_A = `127.78.${NET}.1`;
const HOST_B = `127.78.${NET}.2`;
const PW = { alice: "alice-peering-pw", bob: "bob-peering-pw" };
/** Links must go within a second of the command returning; the margin is for a busy machine. */
const CLOSE_MS = 1500;

interface LinkView {
  kind: string;
  domain: string;
  direction: string;
  method: string;
  licence: { applies: boolean; status: string; licenceId?: string; mode: string };
}

describe("peering licences between two Switchboard servers", () => {
  let a: TestServer;
  let b: TestServer;
  let baseB: string;
  let token: string;
  let alice: JsPeer;
  let bob: JsPeer;
  let seq = 0;

  async function linksOfB(): Promise<LinkView[]> {
    const res = await fetch(`${baseB}/api/v1/link/list?kind=s2s`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { data: { links: LinkView[] } }).data.links;
  }

  /** alice → bob; resolves with what alice got back when the message bounced, else undefined once bob has it. */
  async function aliceToBob(body: string): Promise<ReturnType<typeof stanzaError>> {
    const id = `m-${++seq}`;
    await alice.send(xml("message", { to: "bob@b.test", type: "chat", id }, xml("body", {}, body)));
    const outcome = await Promise.race([
      bob.next(is.message({ body }), `alice's message "${body}"`, LINK_WAIT_MS).then(() => undefined),
      alice
        .next(
          (el) => el.attrs.id === id && el.attrs.type === "error",
          `the bounce of "${body}"`,
          LINK_WAIT_MS,
        )
        .then((el) => stanzaError(el)),
    ]);
    return outcome;
  }

  before(async () => {
    const [s2sA, s2sB, httpB] = (await freePorts(3)) as [number, number, number];
    const common = (s2s: number, peer: string, peerHost: string, peerPort: number) => [
      "--s2s-port",
      String(s2s),
      "--s2s-route",
      `${peer}=${peerHost}:${peerPort}`,
      "--log-level",
      "info",
    ];
    a = await startServer({
      name: "peering-a",
      domain: "a.test",
      host: HOST_A,
      users: { alice: PW.alice },
      extraArgs: common(s2sA, "b.test", HOST_B, s2sB),
    });
    b = await startServer({
      name: "peering-b",
      domain: "b.test",
      host: HOST_B,
      users: { bob: PW.bob },
      config: { http: { tls: "off" } },
      extraArgs: [
        ...common(s2sB, "a.test", HOST_A, s2sA),
        "--federation",
        "licensed",
        "--http-port",
        String(httpB),
      ],
    });
    baseB = `http://${HOST_B}:${httpB}`;
    token = ((await cli(b, ["token", "create", "--name", "peering-test"])) as { token: string }).token;
    // bob's own client is not licensed: exempt him, so that only federation is under the policy.
    await policySet(b, "--mode", "enforce", "--exempt", "bob");
    alice = await connectJs(a, { user: "alice", password: PW.alice, resource: "desk" });
    bob = await connectJs(b, { user: "bob", password: PW.bob, resource: "phone" });
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await a?.stop();
    await b?.stop();
  });

  test("under enforce, a domain without a peering licence is refused both ways", async () => {
    const refused = await aliceToBob("before any licence");
    assert.equal(refused?.condition, "policy-violation", JSON.stringify(refused));
    assert.match(refused?.text ?? "", /a\.test holds no peering licence/);
    await bob.send(xml("message", { to: "alice@a.test", type: "chat", id: "b-1" }, xml("body", {}, "out")));
    const back = await bob.next((el) => el.attrs.id === "b-1", "the bounce of bob's message", LINK_WAIT_MS);
    assert.equal(stanzaError(back)?.condition, "policy-violation");
    await alice.none(is.message({ body: "out" }), "a message over a refused link");
    const metrics = await metricValues(`${baseB}/metrics`, "switchboard_interconnect_refused_total");
    assert.ok((metrics.get('scope="peering",reason="unlicensed-peer"') ?? 0) >= 2, `${[...metrics]}`);
  });

  test("under warn the link works and a.test's user gets one headline naming the cutoff", async () => {
    const cutoff = "2099-01-01T00:00:00Z";
    await policySet(b, "--mode", "warn", "--stage", `${cutoff}=enforce`);
    assert.equal(await aliceToBob("under warn"), undefined);
    const headline = await alice.next(
      (el) => el.name === "message" && el.attrs.type === "headline" && el.attrs.from === "b.test",
      "the warning headline from b.test",
      LINK_WAIT_MS,
    );
    assert.match(headline.getChildText("body") ?? "", new RegExp(`This link stops on ${cutoff}`));
    const condition = headline.getChild("unlicensed-peer", LICENCE_NS);
    assert.ok(condition, headline.toString());
    assert.equal(condition.attrs.domain, "a.test");
    assert.equal(condition.attrs.cutoff, cutoff);
    assert.equal(await aliceToBob("under warn again"), undefined);
    await alice.none(
      (el) => el.name === "message" && el.attrs.type === "headline",
      "a second headline the same day",
    );
    const links = await linksOfB();
    assert.ok(
      links.some(
        (l) =>
          l.domain === "a.test" &&
          l.licence.applies &&
          l.licence.status === "none" &&
          l.licence.mode === "warn",
      ),
      JSON.stringify(links),
    );
  });

  test("with a peering licence chat works both ways; revoking it closes the links within a second and refuses the next attempt", async () => {
    await policySet(b, "--mode", "enforce", "--clear-stages");
    const granted = (await cli(b, ["licence", "grant", "a.test", "--scope", "peering"])) as {
      licence: { id: string };
    };
    const id = granted.licence.id;
    await chatBothWays(alice, bob, "peering licence");
    const links = await linksOfB();
    assert.ok(links.length >= 1, JSON.stringify(links));
    for (const l of links) {
      assert.equal(l.domain, "a.test");
      assert.equal(l.licence.status, "active");
      assert.equal(l.licence.licenceId, id);
    }
    assert.ok(new Set(links.map((l) => l.direction)).size >= 1);

    await cli(b, ["licence", "revoke", id]);
    const returned = Date.now();
    let left = links.length;
    while (left > 0 && Date.now() - returned < 5000) {
      await new Promise((r) => setTimeout(r, 50));
      left = (await linksOfB()).length;
    }
    const took = Date.now() - returned;
    assert.equal(left, 0, "every link with a.test is closed");
    assert.ok(took < CLOSE_MS, `links closed ${took} ms after the command returned`);
    const detached = await metricValues(`${baseB}/metrics`, "switchboard_interconnect_detached_total");
    assert.ok((detached.get('scope="peering",reason="licence-revoked"') ?? 0) >= 1, `${[...detached]}`);

    const next = await aliceToBob("after the revocation");
    assert.equal(next?.condition, "policy-violation", JSON.stringify(next));
    assert.match(next?.text ?? "", /peering licence of a\.test has been revoked/);
    const refused = await metricValues(`${baseB}/metrics`, "switchboard_interconnect_refused_total");
    assert.ok((refused.get('scope="peering",reason="licence-revoked"') ?? 0) >= 1, `${[...refused]}`);
  });
});
