/**
 * Peering licences against another server implementation (helpers/federation-suite.ts runs
 * these after its federation scenarios, on the same servers): Switchboard federates under
 * `--federation licensed` and the peer knows nothing of licences. Under `warn` the peer's user
 * gets one headline naming the cutoff; with a peering licence chat works, and revoking it closes
 * every link with the peer's domain within a second, after which the peer's next attempt is
 * refused with policy-violation. The Links API, the console's Links page and /metrics show the
 * links, per domain, with their licence. The policy and licence changes go through the admin
 * API (the commands the CLI runs); e2e/peering-licence.test.ts makes them with the CLI, from
 * another process.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chatBothWays, LINK_WAIT_MS, metricValues } from "./federation.js";
import type { JsPeer } from "./js-client.js";
import { LICENCE_NS, settle } from "./licensed-setup.js";
import type { TestServer } from "./server.js";
import { is, stanzaError, xml } from "./stanza.js";

/** Links must go within a second of the command returning; the margin is for a busy machine. */
const CLOSE_MS = 1500;

export interface PeeringSetup {
  sb: TestServer;
  /** Switchboard's HTTP base (API, console, /metrics), TLS off. */
  base: string;
  /** An API token (`switchboard token create`). */
  token: string;
  /** The peer's domain. */
  domain: string;
  /** alice on Switchboard, bob on the peer, both available. */
  alice: JsPeer;
  bob: JsPeer;
  peerLog(): string;
}

interface LinkView {
  kind: string;
  domain: string;
  direction: string;
  method: string;
  stanzasIn: number;
  stanzasOut: number;
  licence: { applies: boolean; status: string; licenceId?: string; mode: string; cutoff?: number };
}

/** The live server-to-server links of Switchboard with `domain` (`GET /api/v1/link/list`). */
async function linksWith(s: PeeringSetup): Promise<LinkView[]> {
  const res = await fetch(`${s.base}/api/v1/link/list?kind=s2s`, {
    headers: { authorization: `Bearer ${s.token}` },
  });
  assert.equal(res.status, 200, await res.clone().text());
  const { links } = ((await res.json()) as { data: { links: LinkView[] } }).data;
  return links.filter((l) => l.domain === s.domain);
}

/**
 * Runs a command through Switchboard's admin API (`POST /api/v1/<words>`, what the CLI's
 * `switchboard <words>` runs), sparing a CLI process per call; returns its data.
 */
async function command(s: PeeringSetup, words: string, body: Record<string, unknown>): Promise<unknown> {
  const res = await fetch(`${s.base}/api/v1/${words}`, {
    method: "POST",
    headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${words}: ${text}`);
  return (JSON.parse(text) as { data: unknown }).data;
}

/** Runs `check`, adding the peer's log to its failure. */
export async function withPeerLog(s: PeeringSetup, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    const e = err as Error;
    e.message = `${e.message}\npeer log:\n${s.peerLog()}`;
    throw e;
  }
}

/**
 * Under warn with a scheduled cutoff and no licence, the link works and the peer's user gets
 * one headline from Switchboard's domain naming the cutoff — once, not on every message.
 */
export async function warnHeadline(s: PeeringSetup, tag: string): Promise<void> {
  const cutoff = "2099-01-01T00:00:00Z";
  // alice's and dave's own clients are not licensed: only federation is under the policy.
  await command(s, "policy/set", { mode: "warn", stage: `${cutoff}=enforce`, exempt: "alice,dave" });
  await settle();
  const first = `under warn (${tag})`;
  await s.bob.send(xml("message", { to: s.alice.bareJid, type: "chat" }, xml("body", {}, first)));
  await s.alice.next(is.message({ body: first }), "bob's message under warn", LINK_WAIT_MS);
  const headline = await s.bob.next(
    (el) => el.name === "message" && el.attrs.type === "headline" && el.attrs.from === s.sb.domain,
    `the warning headline from ${s.sb.domain}`,
    LINK_WAIT_MS,
  );
  assert.match(headline.getChildText("body") ?? "", new RegExp(`This link stops on ${cutoff}`));
  const condition = headline.getChild("unlicensed-peer", LICENCE_NS);
  assert.ok(condition, `the licence condition came through the peer: ${headline.toString()}`);
  assert.equal(condition.attrs.domain, s.domain);
  assert.equal(condition.attrs.cutoff, cutoff);

  const second = `under warn again (${tag})`;
  await s.bob.send(xml("message", { to: s.alice.bareJid, type: "chat" }, xml("body", {}, second)));
  await s.alice.next(is.message({ body: second }), "bob's second message under warn", LINK_WAIT_MS);
  await s.bob.none(
    (el) => el.name === "message" && el.attrs.type === "headline",
    "a second headline the same day",
  );
  const links = await linksWith(s);
  assert.ok(links.length >= 1, "a link with the peer under warn");
  for (const l of links) {
    assert.equal(l.licence.applies, true);
    assert.equal(l.licence.status, "none");
    assert.equal(l.licence.mode, "warn");
    assert.equal(l.licence.cutoff, Date.parse(cutoff));
  }
  const warnings = await metricValues(`${s.base}/metrics`, "switchboard_interconnect_warnings_total");
  assert.equal(warnings.get('scope="peering"'), 1);
}

/**
 * With a peering licence for the peer's domain, chat works both ways over links
 * listed with that licence (API, console, per-domain metrics); revoking the licence closes them
 * within a second, our next stanza for the peer is bounced here, and the peer's next attempt to
 * link is refused with policy-violation (its user's message is not delivered).
 */
export async function licenceRevoked(s: PeeringSetup, tag: string): Promise<void> {
  const granted = (await command(s, "licence/grant", { subject: s.domain, scope: "peering" })) as {
    licence: { id: string };
  };
  const id = granted.licence.id;
  await settle();
  // The policy stays as the warn scenario left it: a revoked licence closes the links in every mode.
  await chatBothWays(s.alice, s.bob, `peering licence, ${tag}`);

  const links = await linksWith(s);
  // Prosody and ejabberd do not reuse our stream for their stanzas (no XEP-0288): one link each way.
  assert.deepEqual([...new Set(links.map((l) => l.direction))].sort(), ["in", "out"], JSON.stringify(links));
  for (const l of links) {
    assert.equal(l.kind, "s2s");
    assert.equal(l.licence.status, "active");
    assert.equal(l.licence.licenceId, id);
  }
  const page = await fetch(`${s.base}/console/links`, {
    headers: { authorization: `Bearer ${s.token}`, accept: "text/html" },
  });
  assert.equal(page.status, 200);
  const rows = (await page.text()).split("<tr").filter((r) => r.includes(`>${s.domain}<`));
  assert.equal(rows.length, links.length, "one row per link on the console's Links page");
  for (const row of rows) {
    assert.match(row, /server-to-server/);
    assert.match(row, new RegExp(`>(${[...new Set(links.map((l) => l.method))].join("|")})<`));
    assert.match(row, /peering active/);
    assert.ok(row.includes(id), row);
  }
  const stanzas = await metricValues(`${s.base}/metrics`, "switchboard_s2s_stanzas_total");
  for (const direction of ["in", "out"])
    assert.ok(
      (stanzas.get(`domain="${s.domain}",direction="${direction}"`) ?? 0) >= 1,
      `stanzas ${direction} counted for ${s.domain}: ${[...stanzas]}`,
    );

  await command(s, "licence/revoke", { licenceId: id });
  const returned = Date.now();
  let left = links.length;
  while (left > 0 && Date.now() - returned < 5000) {
    await new Promise((r) => setTimeout(r, 50));
    left = (await linksWith(s)).length;
  }
  const took = Date.now() - returned;
  await withPeerLog(s, async () => {
    assert.equal(left, 0, `every link with ${s.domain} is closed`);
    assert.ok(took < CLOSE_MS, `links closed ${took} ms after the command returned`);
  });
  const detached = await metricValues(`${s.base}/metrics`, "switchboard_interconnect_detached_total");
  assert.ok((detached.get('scope="peering",reason="licence-revoked"') ?? 0) >= 1, `${[...detached]}`);

  // Ours: refused before any connection is made.
  await s.alice.send(
    xml("message", { to: s.bob.bareJid, type: "chat", id: "after-revoke-out" }, xml("body", {}, "out")),
  );
  const bounced = await s.alice.next(
    (el) => el.attrs.id === "after-revoke-out" && el.attrs.type === "error",
    "the bounce of alice's message after the revocation",
    LINK_WAIT_MS,
  );
  const err = stanzaError(bounced);
  assert.equal(err?.condition, "policy-violation", bounced.toString());
  assert.match(
    err?.text ?? "",
    new RegExp(`peering licence of ${s.domain.replace(/\./g, "\\.")} has been revoked`),
  );

  // The peer's: it connects again, and is refused when it asks to authenticate.
  const body = `after the revocation (${tag})`;
  await s.bob.send(
    xml("message", { to: s.alice.bareJid, type: "chat", id: "after-revoke-in" }, xml("body", {}, body)),
  );
  await withPeerLog(s, async () => {
    const back = await s.bob.next(
      (el) => el.attrs.id === "after-revoke-in" && el.attrs.type === "error",
      "the peer's bounce of bob's message",
      LINK_WAIT_MS,
    );
    assert.ok(stanzaError(back), back.toString());
    const refused = await metricValues(`${s.base}/metrics`, "switchboard_interconnect_refused_total");
    assert.ok((refused.get('scope="peering",reason="licence-revoked"') ?? 0) >= 1, `${[...refused]}`);
    const perDomain = await metricValues(`${s.base}/metrics`, "switchboard_s2s_refused_total");
    assert.ok((perDomain.get(`domain="${s.domain}",direction="in"`) ?? 0) >= 1, `${[...perDomain]}`);
    const logged = readFileSync(s.sb.logFile, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("{") && line.includes('"server-to-server link refused"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(
      logged.some(
        (r) =>
          r.remote === s.domain &&
          r.direction === "in" &&
          r.condition === "policy-violation" &&
          /has been revoked/.test(String(r.reason)),
      ),
      `the refusal of the peer's attempt in Switchboard's log: ${JSON.stringify(logged)}`,
    );
  });
  await s.alice.none(is.message({ body }), "bob's message over a refused link");
}
