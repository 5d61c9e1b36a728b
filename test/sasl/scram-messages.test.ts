import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  escapeSaslName,
  parseClientFinal,
  parseClientFirst,
  ScramSyntaxError,
  unescapeSaslName,
} from "../../src/core/sasl/scram-messages.js";
import { scramSha256 } from "../../src/core/sasl/scram-sha-256.js";
import { fakeContext } from "./context.js";
import { credentialFor } from "./scram-client.js";

describe("client-first-message", () => {
  test("parses the GS2 header, authzid, username and nonce", () => {
    const m = parseClientFirst("p=tls-exporter,a=juliet@example.com,n=ju=2Cli=3Det,r=abc,x=ext");
    assert.deepEqual(m.flag, { kind: "p", type: "tls-exporter" });
    assert.equal(m.authzid, "juliet@example.com");
    assert.equal(m.username, "ju,li=et");
    assert.equal(m.nonce, "abc");
    assert.equal(m.gs2Header, "p=tls-exporter,a=juliet@example.com,");
    assert.equal(m.bare, "n=ju=2Cli=3Det,r=abc,x=ext");
    assert.deepEqual(parseClientFirst("y,,n=u,r=x").flag, { kind: "y" });
  });

  const bad: [string, string][] = [
    ["", "empty"],
    ["n=user,r=abc", "no GS2 header"],
    ["x,,n=user,r=abc", "unknown flag"],
    ["p,,n=user,r=abc", "p without a name"],
    ["p=tls_unique,,n=user,r=abc", "bad cb-name character"],
    ["n,n=user,r=abc", "GS2 header missing its second comma"],
    ["n,b=other,n=user,r=abc", "authzid without a="],
    ["n,a=,n=user,r=abc", "empty authzid"],
    ["n,,m=ext,n=user,r=abc", "reserved m extension"],
    ["n,,r=abc,n=user", "attributes out of order"],
    ["n,,n=,r=abc", "empty username"],
    ["n,,n=us=er,r=abc", "bad escape"],
    ["n,,n=us=2cer,r=abc", "lower-case escape"],
    ["n,,n=user", "no nonce"],
    ["n,,n=user,r=", "empty nonce"],
    ["n,,n=user,r=a b", "nonce not printable"],
    ["n,,n=user,r=abc,", "trailing comma"],
    ["n,,n=user,r=abc,m=x", "m extension later"],
    ["n,,n=user,r=abc,r=def", "repeated attribute"],
    ["n,,n=user,r=abc,1=x", "extension name not a letter"],
    ["n,,n=user,r=abc,xy=1", "extension name too long"],
    ["n,,n=us\0er,r=abc", "NUL in name"],
  ];
  for (const [msg, why] of bad) {
    test(`rejects: ${why}`, () => assert.throws(() => parseClientFirst(msg), ScramSyntaxError));
  }
});

describe("client-final-message", () => {
  test("parses binding, nonce and proof; keeps the part without proof", () => {
    const m = parseClientFinal("c=biws,r=abcdef,x=ext,p=AAECAw==");
    assert.equal(m.channelBinding.toString(), "n,,");
    assert.equal(m.nonce, "abcdef");
    assert.deepEqual([...m.proof], [0, 1, 2, 3]);
    assert.equal(m.withoutProof, "c=biws,r=abcdef,x=ext");
  });

  const bad: [string, string][] = [
    ["c=biws,r=abc", "no proof"],
    ["r=abc,c=biws,p=AAAA", "attributes out of order"],
    ["c=biws,p=AAAA,r=abc", "proof not last"],
    ["c=bi ws,r=abc,p=AAAA", "binding not base64"],
    ["c=biws,r=abc,p=AAA", "proof not padded base64"],
    ["c=biws,r=abc,p=AA=A", "padding inside"],
    ["c=biws,r=abc,m=x,p=AAAA", "m extension"],
    ["c=biws,r=abc,c=biws,p=AAAA", "repeated attribute"],
    ["c=biws,r=abc,p=AAAA,", "trailing comma"],
  ];
  for (const [msg, why] of bad) {
    test(`rejects: ${why}`, () => assert.throws(() => parseClientFinal(msg), ScramSyntaxError));
  }
});

test("saslname escaping round-trips and decodes in one pass", () => {
  for (const s of ["plain", "a,b", "a=b", "=2C", ",=,="])
    assert.equal(unescapeSaslName(escapeSaslName(s)), s);
  assert.equal(escapeSaslName("a=,"), "a=3D=2C");
  assert.equal(unescapeSaslName("=3D2C"), "=2C");
});

describe("malformed input in an exchange", () => {
  const ctx = () => fakeContext({ user: [credentialFor("SHA-256", "pencil", Buffer.alloc(16, 1), 4096)] });

  async function afterFirst(final: string | Buffer) {
    const ex = scramSha256.start(ctx());
    const first = await ex.step(Buffer.from("n,,n=user,r=clientnonce"));
    assert.equal(first.kind, "challenge");
    const nonce = first.kind === "challenge" ? /^r=([^,]+)/.exec(first.data.toString())![1]! : "";
    return ex.step(typeof final === "string" ? Buffer.from(final.replace("NONCE", nonce)) : final);
  }

  test("invalid UTF-8, a BOM, and oversized messages are malformed-request", async () => {
    for (const bytes of [
      Buffer.from([0x6e, 0x2c, 0x2c, 0xff]),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("n,,n=user,r=abc")]),
      Buffer.from("n,,n=user,r=" + "a".repeat(20000)),
    ]) {
      const r = await scramSha256.start(ctx()).step(bytes);
      assert.equal(r.kind === "failure" && r.condition, "malformed-request");
    }
  });

  test("a grammar error names the problem", async () => {
    const r = await scramSha256.start(ctx()).step(Buffer.from("n,,m=x,n=user,r=abc"));
    assert.deepEqual(r, {
      kind: "failure",
      condition: "malformed-request",
      text: "mandatory extension not supported",
    });
  });

  test("final message: wrong nonce, short proof, bad syntax, replayed header", async () => {
    const proof = Buffer.alloc(32).toString("base64");
    const cases: [string | Buffer, string][] = [
      [`c=biws,r=clientnonce,p=${proof}`, "not-authorized"], // only the client's half of the nonce
      [`c=biws,r=NONCEx,p=${proof}`, "not-authorized"],
      ["c=biws,r=NONCE,p=AAAA", "malformed-request"],
      [`c=biws,r=NONCE`, "malformed-request"],
      [`c=${Buffer.from("y,,").toString("base64")},r=NONCE,p=${proof}`, "not-authorized"],
      [Buffer.from([0xc3, 0x28]), "malformed-request"],
    ];
    for (const [msg, condition] of cases) {
      const r = await afterFirst(msg);
      assert.equal(r.kind === "failure" && r.condition, condition, String(msg));
    }
  });
});
