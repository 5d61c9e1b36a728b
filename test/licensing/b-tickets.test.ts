/**
 * Licence tickets: a signed proof over TLS earns a ticket; a later stream proves with an
 * HMAC under the ticket's secret, bound to that stream like a signature; expired or foreign
 * tickets are refused without closing the stream (a signed proof may follow once); a revoked
 * key refuses its tickets at once; the ticket key lives in storage (restarts keep tickets).
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, describe, it } from "node:test";
import type { XmlElement } from "../../src/core/xml/element.js";
import { x } from "../../src/core/xml/element.js";
import {
  loadTicketKey,
  NS_LICENCE,
  proofSignedBytes,
  rotateTicketKey,
  TicketBook,
} from "../../src/licensing/index.js";
import { clientInfoOf } from "../../src/modules/licensing/session-info.js";
import { openStorage } from "../../src/storage/index.js";
import {
  ACTOR,
  authenticate,
  type FakeSession,
  type FeatureOffer,
  HOUR,
  type LicensingHarness,
  licenceSuccess,
  newSession,
  offer,
  proofFor,
  refusalOf,
  registerApp,
  startLicensing,
  type TestApp,
  tempDir,
} from "./b-kit.js";

const harnesses: LicensingHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function start(options: Record<string, unknown> = {}) {
  const h = await startLicensing(options);
  harnesses.push(h);
  const t = await registerApp(h.registry);
  await h.api.recheck();
  return { h, t };
}

interface HeldTicket {
  ticket: string;
  secret: Buffer;
  expires: string;
}

/** The last element the session received, which must be the licence <success/>. */
function successOf(s: FakeSession): XmlElement {
  const el = licenceSuccess(s);
  assert.ok(el && el === s.received.at(-1), `expected <success/>, got ${s.received.at(-1)}`);
  return el;
}

function ticketOf(success: XmlElement): HeldTicket | undefined {
  const el = success.getChild("ticket");
  if (!el) return undefined;
  return {
    ticket: el.text(),
    secret: Buffer.from(el.attrs.secret ?? "", "base64"),
    expires: el.attrs.expires ?? "",
  };
}

/** A full signed proof on a new session; returns the session and the ticket it earned. */
async function signedLogin(h: LicensingHarness, t: TestApp, secure = true) {
  const s = newSession(h);
  if (!secure) Object.defineProperty(s, "secure", { value: false });
  const o = await offer(h, s);
  await h.feature.handle!(s, proofFor(h, s, t, o));
  assert.equal(s.closed, false, s.closeError?.text);
  return { s, ticket: ticketOf(successOf(s)) };
}

/** A <proof/> made with a ticket: HMAC-SHA256 under its secret over the canonical bytes. */
function ticketProof(
  h: LicensingHarness,
  s: FakeSession,
  t: TestApp,
  o: FeatureOffer,
  held: HeldTicket,
  change: { clientId?: string; nonce?: string; secret?: Buffer; ticket?: string } = {},
): XmlElement {
  const claim = {
    clientId: change.clientId ?? t.app.clientId,
    version: "5.0.1",
    platform: "linux",
    keyId: t.keyId,
  };
  const ctx = {
    domain: h.domain,
    streamId: s.streamId,
    nonce: change.nonce ?? o.nonce,
    bindingType: o.bindingType,
    bindingData: o.bindingType === undefined ? undefined : s.channelBinding(o.bindingType),
  };
  const mac = createHmac("sha256", change.secret ?? held.secret)
    .update(proofSignedBytes(ctx, claim))
    .digest("base64");
  return x(
    "proof",
    {
      xmlns: NS_LICENCE,
      "client-id": claim.clientId,
      version: claim.version,
      platform: claim.platform,
      "key-id": claim.keyId,
      ticket: change.ticket ?? held.ticket,
    },
    mac,
  );
}

describe("licence tickets", () => {
  it("a signed proof over TLS earns a ticket; the next stream proves with it", async () => {
    const { h, t } = await start();
    const { ticket } = await signedLogin(h, t);
    assert.ok(ticket, "a ticket comes with <success/>");
    assert.equal(ticket.secret.length, 32);
    assert.equal(Date.parse(ticket.expires), h.clock.now() + 24 * HOUR, "default lifetime 24 h");

    const s = newSession(h);
    const o = await offer(h, s);
    await h.feature.handle!(s, ticketProof(h, s, t, o, ticket));
    assert.equal(s.closed, false, s.closeError?.text);
    assert.equal(ticketOf(successOf(s)), undefined, "a ticket proof earns no new ticket");
    assert.equal(clientInfoOf(s)?.verified, true);
    assert.equal(clientInfoOf(s)?.licenceId, t.licence.id);
    assert.ok(await authenticate(h, s, "alice"), "admitted in enforce-free open mode");
    const c = h.api.counters();
    assert.equal(c.ticketsIssued, 1);
    assert.equal(c.ticketProofsAccepted, 1);
    assert.equal(c.proofsAccepted, 2);
  });

  it("a ticket proof is bound to its stream: another nonce or secret is a bad proof", async () => {
    const { h, t } = await start();
    const { ticket } = await signedLogin(h, t);
    assert.ok(ticket);
    for (const change of [{ nonce: "AAAA" }, { secret: Buffer.alloc(32, 1) }]) {
      const s = newSession(h);
      const o = await offer(h, s);
      await h.feature.handle!(s, ticketProof(h, s, t, o, ticket, change));
      assert.equal(s.closed, true, JSON.stringify(change));
      assert.equal(refusalOf(s).reason, "bad-proof");
    }
  });

  it("a ticket names its app: another client id is refused", async () => {
    const { h, t } = await start();
    const other = await registerApp(h.registry);
    await h.api.recheck();
    const { ticket } = await signedLogin(h, t);
    assert.ok(ticket);
    const s = newSession(h);
    const o = await offer(h, s);
    await h.feature.handle!(s, ticketProof(h, s, other, o, ticket, { clientId: other.app.clientId }));
    assert.equal(refusalOf(s).reason, "bad-proof");
    assert.match(refusalOf(s).text, /another app or key/);
  });

  it("an expired or foreign ticket is refused without closing the stream; one signed proof may follow", async () => {
    const { h, t } = await start({ ticketLifetimeHours: 2 });
    const { ticket } = await signedLogin(h, t);
    assert.ok(ticket);
    assert.equal(Date.parse(ticket.expires), h.clock.now() + 2 * HOUR);
    h.clock.advance(2 * HOUR);

    const s = newSession(h);
    const o = await offer(h, s);
    await h.feature.handle!(s, ticketProof(h, s, t, o, ticket));
    assert.equal(s.closed, false);
    const refused = s.received.at(-1);
    assert.equal(refused?.name, "ticket-refused");
    assert.match(refused?.getChildText("text") ?? "", /expired/);
    await h.feature.handle!(s, proofFor(h, s, t, o));
    assert.equal(s.closed, false, s.closeError?.text);
    assert.ok(ticketOf(successOf(s)), "the signed proof earns a fresh ticket");

    // A forged ticket (one byte changed) reads as not this network's: refused the same way.
    const forged = `${ticket.ticket.slice(0, 5)}${ticket.ticket[5] === "A" ? "B" : "A"}${ticket.ticket.slice(6)}`;
    const s2 = newSession(h);
    const o2 = await offer(h, s2);
    await h.feature.handle!(s2, ticketProof(h, s2, t, o2, ticket, { ticket: forged }));
    assert.equal(s2.received.at(-1)?.name, "ticket-refused");
    // Only one retry, and only with a signature: a second ticket closes the stream.
    await h.feature.handle!(s2, ticketProof(h, s2, t, o2, ticket, { ticket: forged }));
    assert.equal(refusalOf(s2).reason, "bad-proof");
    assert.equal(h.api.counters().ticketsRefused, 3);
  });

  it("revoking the key refuses its tickets at once", async () => {
    const { h, t } = await start();
    const { ticket } = await signedLogin(h, t);
    assert.ok(ticket);
    await h.registry.revokeKey(ACTOR, t.app.clientId, t.keyId);
    await h.api.recheck();
    const s = newSession(h);
    const o = await offer(h, s);
    await h.feature.handle!(s, ticketProof(h, s, t, o, ticket));
    assert.equal(refusalOf(s).reason, "key-revoked");
  });

  it("rotating the ticket key on a running server refuses earlier tickets (audited)", async () => {
    const { h, t } = await start();
    const { ticket } = await signedLogin(h, t);
    assert.ok(ticket);
    await h.registry.rotateTicketKey(ACTOR);
    await h.api.recheck();
    const s = newSession(h);
    const o = await offer(h, s);
    await h.feature.handle!(s, ticketProof(h, s, t, o, ticket));
    assert.equal(s.received.at(-1)?.name, "ticket-refused");
    const fresh = (await signedLogin(h, t)).ticket;
    assert.ok(fresh, "new tickets are issued under the new key");
    const s2 = newSession(h);
    const o2 = await offer(h, s2);
    await h.feature.handle!(s2, ticketProof(h, s2, t, o2, fresh));
    assert.equal(s2.closed, false, s2.closeError?.text);
    assert.equal(successOf(s2).name, "success");
    const [record] = await h.registry.audit({ kind: "tickets.rotate" });
    assert.equal(record?.data.actor, ACTOR);
    const key = await loadTicketKey(h.server.services.storage, h.clock.now());
    assert.ok(
      !JSON.stringify(record).includes(key.toString("base64")),
      "the key itself is not in the audit log",
    );
  });

  it("no ticket without TLS, and none when tickets are disabled (a ticket proof is then refused)", async () => {
    const { h, t } = await start();
    const plain = await signedLogin(h, t, false);
    assert.equal(plain.ticket, undefined, "the secret would travel in clear");

    const off = await start({ ticketLifetimeHours: 0 });
    assert.equal((await signedLogin(off.h, off.t)).ticket, undefined);
    const held = (await signedLogin(h, t)).ticket;
    assert.ok(held);
    const s = newSession(off.h);
    const o = await offer(off.h, s);
    await off.h.feature.handle!(s, ticketProof(off.h, s, off.t, o, held));
    assert.equal(s.received.at(-1)?.name, "ticket-refused");
  });
});

describe("the ticket key", () => {
  it("is created once and kept in storage; rotating it refuses every earlier ticket", async () => {
    const dir = tempDir();
    after(() => dir.remove());
    const path = `${dir.dir}/tickets.sqlite`;
    const first = await openStorage({ backend: "sqlite", path });
    const key = await loadTicketKey(first, 1);
    const issued = new TicketBook(key, HOUR).issue("com.example.chat", "k1", 1_000);
    await first.close();

    const again = await openStorage({ backend: "sqlite", path });
    const book = new TicketBook(await loadTicketKey(again, 2), HOUR);
    assert.deepEqual(book.open(issued.ticket), {
      clientId: "com.example.chat",
      keyId: "k1",
      issuedAt: 1_000,
      expiresAt: 1_000 + HOUR,
    });
    assert.deepEqual(book.secretOf(issued.ticket), issued.secret);
    await rotateTicketKey(again, 3);
    const rotated = new TicketBook(await loadTicketKey(again, 4), HOUR);
    assert.equal(rotated.open(issued.ticket), undefined);
    await again.close();
  });

  it("refuses malformed tickets without throwing", () => {
    const book = new TicketBook(Buffer.alloc(32, 7), HOUR);
    const { ticket } = book.issue("com.example.chat", "k1", 0);
    for (const bad of ["", "!!!!", "A".repeat(600), ticket.slice(0, 10), `${ticket}AA`]) {
      assert.equal(book.open(bad), undefined, bad.slice(0, 20));
    }
    assert.equal(book.checkProof(ticket, Buffer.from("x"), Buffer.alloc(31)), false);
  });
});
