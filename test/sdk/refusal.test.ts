/**
 * Reading refusals (sdk/refusal.ts): the stream error of section 3 and the SASL2 failure a
 * client without a proof gets first (docs/licensing-protocol.md §3.1), as @xmpp/client
 * hands them over (a StreamError or SASLError keeping the element).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "@xmpp/client";
import { LicenceRefusedError, licenceRefusal, refusalFromSaslFailure } from "../../sdk/refusal.js";

const LICENCE_NS = "urn:switchboard:client-licence:0";
const TEXT =
  "This network admits licensed client software only. Licensed clients: https://example.net/clients";

test("a SASL2 failure with the licence condition is a refusal, with its text and details", () => {
  const failure = xml(
    "failure",
    { xmlns: "urn:xmpp:sasl:2" },
    xml("account-disabled", { xmlns: "urn:ietf:params:xml:ns:xmpp-sasl" }),
    xml("unlicensed-client", { xmlns: LICENCE_NS, "info-url": "https://example.net/clients" }),
    xml("text", {}, TEXT),
  );
  const r = refusalFromSaslFailure(failure);
  assert.ok(r instanceof LicenceRefusedError);
  assert.equal(r.condition, "unlicensed-client");
  assert.equal(r.text, TEXT);
  assert.deepEqual(r.details, { "info-url": "https://example.net/clients" });
  // As @xmpp/client's start() rejects: an error keeping the element.
  const err = Object.assign(new Error("account-disabled"), { element: failure });
  assert.equal(licenceRefusal(err)?.condition, "unlicensed-client");
});

test("a refused ticket, or a failure without a licence condition, is not a refusal", () => {
  const ticket = xml(
    "failure",
    { xmlns: "urn:xmpp:sasl:2" },
    xml("not-authorized", { xmlns: "urn:ietf:params:xml:ns:xmpp-sasl" }),
    xml("ticket-refused", { xmlns: LICENCE_NS }, xml("text", {}, "the ticket has expired")),
  );
  assert.equal(refusalFromSaslFailure(ticket), undefined);
  const password = xml(
    "failure",
    { xmlns: "urn:xmpp:sasl:2" },
    xml("not-authorized", { xmlns: "urn:ietf:params:xml:ns:xmpp-sasl" }),
  );
  assert.equal(licenceRefusal(Object.assign(new Error("not-authorized"), { element: password })), undefined);
  // RFC 6120's <failure/> has no room for the condition: the stream error that follows carries it.
  const rfc6120 = xml(
    "failure",
    { xmlns: "urn:ietf:params:xml:ns:xmpp-sasl" },
    xml("account-disabled"),
    xml("text", {}, TEXT),
  );
  assert.equal(licenceRefusal(Object.assign(new Error("account-disabled"), { element: rfc6120 })), undefined);
});
