/**
 * Federation scenarios shared by the server-to-server tests, for any two logged-in peers on
 * different servers: mutual subscription (RFC 6121 §3), chat both ways, and the metrics that
 * tell how a link authenticated.
 */
import assert from "node:assert/strict";
import { WAIT_MS } from "./inbox.js";
import type { Peer } from "./peer.js";
import { rosterGet, rosterSet } from "./roster.js";
import { is, itemState, rosterItem, xml } from "./stanza.js";

/** Links take a dialback round trip (a connection back) before the first stanza goes. */
export const LINK_WAIT_MS = Math.max(WAIT_MS, 20_000);

/** `a` subscribes to `b`'s presence and `b` approves; then `b` sees `a` available too. */
export async function subscribe(a: Peer, b: Peer): Promise<void> {
  // Roster pushes go to the resources that asked for the roster (RFC 6121 §2.1.6).
  await rosterGet(a);
  await rosterGet(b);
  await rosterSet(a, b.bareJid);
  await a.send(xml("presence", { to: b.bareJid, type: "subscribe" }));
  const request = await b.next(
    is.presence({ fromBare: a.bareJid, type: "subscribe" }),
    `${a.bareJid}'s subscription request`,
    LINK_WAIT_MS,
  );
  assert.equal(request.attrs.from, a.bareJid);
  await b.send(xml("presence", { to: a.bareJid, type: "subscribed" }));
  const push = await a.next(
    (el) =>
      is.rosterPush(b.bareJid)(el) &&
      /^(to|both)$/.test(itemState(rosterItem(el, b.bareJid))?.subscription ?? ""),
    `the roster push for ${b.bareJid} once approved`,
    LINK_WAIT_MS,
  );
  assert.equal(itemState(rosterItem(push, b.bareJid))?.ask, undefined, "no request pending once approved");
  await a.next(is.presence({ fromBare: b.bareJid }), `${b.bareJid}'s presence after approval`, LINK_WAIT_MS);
}

/** A chat message each way, checked for sender and body. */
export async function chatBothWays(a: Peer, b: Peer, tag: string): Promise<void> {
  const ab = `hello ${b.bareJid}, from ${a.bareJid} (${tag})`;
  await a.send(xml("message", { to: b.bareJid, type: "chat" }, xml("body", {}, ab)));
  const got = await b.next(is.message({ body: ab }), `the message from ${a.bareJid}`, LINK_WAIT_MS);
  assert.equal(got.attrs.from, a.jid);
  const ba = `hello back ${a.bareJid} (${tag})`;
  await b.send(xml("message", { to: a.jid, type: "chat" }, xml("body", {}, ba)));
  const back = await a.next(is.message({ body: ba }), `the reply from ${b.bareJid}`, LINK_WAIT_MS);
  assert.equal(back.attrs.from, b.jid);
}

/** Values of one metric from a /metrics text, by their labels as written ('method="dialback",direction="out"'). */
/** The sum of the series whose labels include all of `labels` (from metricValues). */
export function sumWhere(values: Map<string, number>, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const [key, n] of values) {
    const have = new Set(key.split(","));
    if (wanted.every((w) => have.has(w))) sum += n;
  }
  return sum;
}

export async function metricValues(url: string, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z0-9_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? "", Number(m[3]));
  }
  return out;
}
