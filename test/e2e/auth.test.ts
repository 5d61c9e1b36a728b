/**
 * Logging in with real clients: TLS (STARTTLS and XEP-0368 direct TLS) then
 * SCRAM, and the SASL failures for a wrong password or an unknown account
 * (RFC 6120 §6.5.10: not-authorized in both cases, so accounts cannot be probed).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectJs, jsLoginFailure } from "../helpers/js-client.js";
import { RawConnection } from "../helpers/raw-client.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSlix, slixLoginFailure, slixSkip } from "../helpers/slix-client.js";

const ALICE = { user: "alice", password: "alice-secret-pw" };
const BOB = { user: "bob", password: "bob-secret-pw" };

describe("login: TLS + SCRAM", () => {
  let server: TestServer;

  before(async () => {
    server = await startServer({ name: "auth", users: { alice: ALICE.password, bob: BOB.password } });
  });
  after(async () => {
    await server.stop();
  });

  test("before TLS, the plaintext port requires STARTTLS and offers no PLAIN", async () => {
    const raw = await RawConnection.open(server);
    try {
      const features = await raw.openStream(server.domain);
      assert.match(
        features,
        /<starttls[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"][^>]*>\s*<required\s*\/>/,
        features,
      );
      assert.doesNotMatch(features, /<mechanism>PLAIN<\/mechanism>/, "PLAIN must not be offered without TLS");
    } finally {
      raw.destroy();
    }
  });

  test("after STARTTLS, SASL2 is offered with the same mechanisms and the licence proof inline", async () => {
    const raw = await RawConnection.open(server);
    try {
      await raw.openStream(server.domain);
      const features = await raw.startTls(server.domain);
      const sasl2 = /<authentication xmlns=['"]urn:xmpp:sasl:2['"]>([\s\S]*?)<\/authentication>/.exec(
        features,
      );
      assert.ok(sasl2, features);
      assert.match(sasl2[1]!, /<mechanism>SCRAM-SHA-256<\/mechanism>/);
      assert.match(sasl2[1]!, /<mechanism>PLAIN<\/mechanism>/, "PLAIN once the stream is encrypted");
      // Among the inline features (stream management's resumption rides there too).
      assert.match(
        sasl2[1]!,
        /<inline>(?:(?!<\/inline>)[\s\S])*<licence xmlns=['"]urn:switchboard:client-licence:0['"]\/>/,
      );
    } finally {
      raw.destroy();
    }
  });

  test("an empty, missing or unknown mechanism is invalid-mechanism, with a text that says which (SASL and SASL2)", async () => {
    // A tab, a C1 control and a right-to-left override, then a name far longer than any mechanism's.
    const LONG_NAME = `X-&#x9;\u0085\u202E${"A".repeat(5000)}`;
    const attempts = [
      {
        auth: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism=''>=</auth>",
        text: "no mechanism named",
      },
      { auth: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</auth>", text: "no mechanism named" },
      {
        auth: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-NONE'>=</auth>",
        text: "mechanism X-NONE is not offered",
      },
      {
        auth: "<authenticate xmlns='urn:xmpp:sasl:2' mechanism=''><initial-response>=</initial-response></authenticate>",
        text: "no mechanism named",
      },
      {
        auth: "<authenticate xmlns='urn:xmpp:sasl:2'><initial-response>=</initial-response></authenticate>",
        text: "no mechanism named",
      },
      // A long name with characters that do not print: a short printable prefix is quoted.
      {
        auth: `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${LONG_NAME}'>=</auth>`,
        text: `mechanism X-${"A".repeat(30)}… is not offered`,
      },
      {
        auth: `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='${LONG_NAME}'><initial-response>=</initial-response></authenticate>`,
        text: `mechanism X-${"A".repeat(30)}… is not offered`,
      },
      {
        auth: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='&#x9;\u0085\u202E'>=</auth>",
        text: "the mechanism named is not offered",
      },
    ];
    for (const { auth, text } of attempts) {
      const raw = await RawConnection.open(server);
      try {
        await raw.openStream(server.domain);
        await raw.startTls(server.domain);
        raw.write(auth);
        const m = await raw.waitFor(/<failure[^>]*>([\s\S]*?)<\/failure>/, `the failure for ${auth}`);
        assert.match(m[1]!, /<invalid-mechanism[\s/]/, m[0]);
        assert.equal(/<text[^>]*>([^<]*)<\/text>/.exec(m[1]!)?.[1], text, m[0]);
      } finally {
        raw.destroy();
      }
    }
  });

  test("@xmpp/client: STARTTLS on the c2s port, SCRAM-SHA-1, resource bound", async () => {
    const alice = await connectJs(server, { ...ALICE, resource: "laptop", mechanism: "SCRAM-SHA-1" });
    try {
      assert.equal(alice.secure, true, "the stream must be encrypted");
      assert.equal(alice.mechanism, "SCRAM-SHA-1");
      assert.ok(alice.offeredMechanisms.includes("SCRAM-SHA-1"), `offered: ${alice.offeredMechanisms}`);
      assert.equal(alice.saslProfile, "sasl2", "@xmpp/client prefers XEP-0388 SASL2 when it is offered");
      assert.equal(alice.jid, "alice@localhost/laptop");
    } finally {
      await alice.close();
    }
  });

  test("@xmpp/client: direct TLS (XEP-0368) on the c2s-tls port", async () => {
    const alice = await connectJs(server, { ...ALICE, resource: "direct", directTls: true });
    try {
      assert.equal(alice.secure, true);
      assert.equal(alice.jid, "alice@localhost/direct");
    } finally {
      await alice.close();
    }
  });

  test("@xmpp/client: SASL PLAIN, offered once the stream is encrypted", async () => {
    const alice = await connectJs(server, { ...ALICE, resource: "plain", mechanism: "PLAIN" });
    try {
      assert.ok(alice.offeredMechanisms.includes("PLAIN"), `offered: ${alice.offeredMechanisms}`);
      assert.equal(alice.jid, "alice@localhost/plain");
    } finally {
      await alice.close();
    }
  });

  test("@xmpp/client: a server-assigned resource when the client asks for none", async () => {
    const alice = await connectJs(server, { ...ALICE });
    try {
      assert.match(alice.jid, /^alice@localhost\/.+$/);
    } finally {
      await alice.close();
    }
  });

  test("slixmpp: STARTTLS, SCRAM-SHA-256 (a client without channel binding)", {
    skip: slixSkip,
  }, async () => {
    const bob = await connectSlix(server, { ...BOB, resource: "phone", mechanism: "SCRAM-SHA-256" });
    try {
      assert.equal(bob.mechanism, "SCRAM-SHA-256");
      assert.match(bob.tls ?? "(none)", /^TLSv1\.[23]$/);
      assert.equal(bob.jid, "bob@localhost/phone");
    } finally {
      await bob.close();
    }
  });

  test("slixmpp: STARTTLS, SCRAM-SHA-1", { skip: slixSkip }, async () => {
    const bob = await connectSlix(server, { ...BOB, resource: "sha1", mechanism: "SCRAM-SHA-1" });
    try {
      assert.equal(bob.mechanism, "SCRAM-SHA-1");
      assert.match(bob.tls ?? "(none)", /^TLSv1\.[23]$/);
    } finally {
      await bob.close();
    }
  });

  test("slixmpp at its defaults: three logins in a row from one address, each on the first try", {
    skip: slixSkip,
  }, async () => {
    // Debian's slixmpp picks SCRAM-SHA-256-PLUS and binds with tls-unique, also over TLS 1.3
    // (it does not read XEP-0440's list). Each login must succeed without a refusal first.
    for (const resource of ["first", "second", "third"]) {
      const bob = await connectSlix(server, { ...BOB, resource, mechanism: "auto" });
      try {
        assert.equal(bob.mechanism, "SCRAM-SHA-256-PLUS");
        assert.equal(bob.tls, "TLSv1.3");
      } finally {
        await bob.close();
      }
    }
  });

  test("slixmpp at its defaults over direct TLS (XEP-0368): SCRAM-SHA-256-PLUS on the first try", {
    skip: slixSkip,
  }, async () => {
    const bob = await connectSlix(server, { ...BOB, resource: "direct", directTls: true, mechanism: "auto" });
    try {
      assert.equal(bob.mechanism, "SCRAM-SHA-256-PLUS");
      assert.equal(bob.tls, "TLSv1.3");
    } finally {
      await bob.close();
    }
  });

  test("slixmpp: direct TLS (XEP-0368), SCRAM-SHA-256", { skip: slixSkip }, async () => {
    const bob = await connectSlix(server, {
      ...BOB,
      resource: "tls",
      directTls: true,
      mechanism: "SCRAM-SHA-256",
    });
    try {
      assert.equal(bob.mechanism, "SCRAM-SHA-256");
      assert.match(bob.tls ?? "(none)", /^TLSv1\.[23]$/);
      assert.equal(bob.jid, "bob@localhost/tls");
    } finally {
      await bob.close();
    }
  });

  test("wrong password → SASL <not-authorized/> (@xmpp/client)", async () => {
    const condition = await jsLoginFailure(server, { user: "alice", password: "not-the-password" });
    assert.equal(condition, "not-authorized");
  });

  test("unknown account → SASL <not-authorized/> (@xmpp/client)", async () => {
    const condition = await jsLoginFailure(server, { user: "nobody", password: "whatever-pw" });
    assert.equal(condition, "not-authorized");
  });

  test("wrong password → SASL <not-authorized/> (slixmpp, SCRAM-SHA-256)", { skip: slixSkip }, async () => {
    const condition = await slixLoginFailure(server, { user: "bob", password: "wrong-pw", resource: "x" });
    assert.equal(condition, "not-authorized");
  });

  test("unknown account → SASL <not-authorized/> (slixmpp, SCRAM-SHA-256)", { skip: slixSkip }, async () => {
    const condition = await slixLoginFailure(server, {
      user: "mallory",
      password: "whatever-pw",
      resource: "x",
    });
    assert.equal(condition, "not-authorized");
  });

  test("after failed attempts, the right password still works", async () => {
    const alice = await connectJs(server, { ...ALICE, resource: "again" });
    await alice.close();
  });
});

describe("login: RFC 6120 SASL when SASL2 is turned off", () => {
  let server: TestServer;

  before(async () => {
    server = await startServer({
      name: "auth-no-sasl2",
      users: { alice: ALICE.password },
      config: { sasl2: false },
    });
  });
  after(async () => {
    await server.stop();
  });

  test("@xmpp/client: no SASL2 offered, SCRAM-SHA-1 over <auth/> and a stream restart", async () => {
    const alice = await connectJs(server, { ...ALICE, resource: "legacy", mechanism: "SCRAM-SHA-1" });
    try {
      const preAuth = alice.features.find((f) =>
        f.getChild("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"),
      );
      assert.ok(preAuth, "SASL mechanisms offered");
      assert.equal(preAuth.getChild("authentication", "urn:xmpp:sasl:2"), undefined, "SASL2 not offered");
      assert.equal(alice.saslProfile, "rfc6120");
      assert.equal(alice.jid, "alice@localhost/legacy");
    } finally {
      await alice.close();
    }
  });
});
