import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mechanismsFor, type SaslMechanism, type SaslResult } from "../../src/core/sasl/mechanism.js";
import { ScramMechanism } from "../../src/core/sasl/scram.js";
import { scramSha1 } from "../../src/core/sasl/scram-sha-1.js";
import { scramSha1Plus } from "../../src/core/sasl/scram-sha-1-plus.js";
import { scramSha256 } from "../../src/core/sasl/scram-sha-256.js";
import { scramSha256Plus } from "../../src/core/sasl/scram-sha-256-plus.js";
import type { ScramCredential } from "../../src/core/storage/types.js";
import { type FakeContext, fakeContext } from "./context.js";
import { credentialFor, type Hash, ScramClient, type ScramClientOptions } from "./scram-client.js";

const ITER = 4096;
const SALT = Buffer.from("0123456789abcdef");

function account(password: string, iterations = ITER): ScramCredential[] {
  return [
    credentialFor("SHA-1", password, SALT, iterations),
    credentialFor("SHA-256", password, SALT, iterations),
  ];
}

const accounts = { user: account("pencil"), "a,b=c": account("secret") };

function client(hash: Hash, opts: Partial<ScramClientOptions> = {}): ScramClient {
  return new ScramClient({ hash, username: "user", password: "pencil", ...opts });
}

async function exchange(
  mech: SaslMechanism,
  ctx: FakeContext,
  c: ScramClient,
): Promise<{ serverFirst?: string; result: SaslResult }> {
  const ex = mech.start(ctx);
  const first = await ex.step(Buffer.from(c.first()));
  if (first.kind !== "challenge") return { result: first };
  const serverFirst = first.data.toString();
  return { serverFirst, result: await ex.step(Buffer.from(c.final(serverFirst))) };
}

function assertFailure(result: SaslResult, condition: string, text?: string): void {
  assert.equal(result.kind, "failure", JSON.stringify(result));
  if (result.kind !== "failure") return;
  assert.equal(result.condition, condition);
  if (text !== undefined) assert.equal(result.text, text);
}

describe("RFC test vectors", () => {
  test("RFC 5802 §5 SCRAM-SHA-1 example (user/pencil)", async () => {
    const cred = credentialFor("SHA-1", "pencil", Buffer.from("QSXCR+Q6sek8bf92", "base64"), 4096);
    const ctx = fakeContext({ user: [cred] });
    const mech = new ScramMechanism("SHA-1", false, { serverNonce: () => "3rfcNHYJY1ZVvWVs7j" });
    const c = client("SHA-1", { nonce: "fyko+d2lbbFgONRv9qkxdawL" });
    assert.equal(c.first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    const ex = mech.start(ctx);
    const first = await ex.step(Buffer.from(c.first()));
    assert.equal(first.kind, "challenge");
    const serverFirst = first.kind === "challenge" ? first.data.toString() : "";
    assert.equal(serverFirst, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
    const final = c.final(serverFirst);
    assert.equal(final, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    const result = await ex.step(Buffer.from(final));
    assert.equal(result.kind, "success");
    if (result.kind !== "success") return;
    assert.equal(result.username, "user");
    assert.equal(result.data?.toString(), "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
  });

  test("RFC 7677 §3 SCRAM-SHA-256 example (user/pencil)", async () => {
    const cred = credentialFor("SHA-256", "pencil", Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"), 4096);
    const ctx = fakeContext({ user: [cred] });
    const mech = new ScramMechanism("SHA-256", false, {
      serverNonce: () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    });
    const ex = mech.start(ctx);
    const first = await ex.step(Buffer.from("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    assert.equal(first.kind, "challenge");
    assert.equal(
      first.kind === "challenge" && first.data.toString(),
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    );
    const result = await ex.step(
      Buffer.from(
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      ),
    );
    assert.equal(result.kind, "success");
    assert.equal(
      result.kind === "success" && result.data?.toString(),
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    );
  });
});

describe("full exchanges", () => {
  for (const [mech, hash] of [
    [scramSha1, "SHA-1"],
    [scramSha256, "SHA-256"],
  ] as const) {
    test(`${mech.name}: right password succeeds and the server proves itself`, async () => {
      const c = client(hash);
      const { serverFirst, result } = await exchange(mech, fakeContext(accounts), c);
      assert.match(
        serverFirst ?? "",
        new RegExp(`^r=${c.nonce.replace(/[+/]/g, "\\$&")}[^,]+,s=[^,]+,i=${ITER}$`),
      );
      assert.equal(result.kind, "success");
      if (result.kind !== "success") return;
      assert.equal(result.username, "user");
      assert.ok(c.verifyServer(result.data!.toString()));
    });

    test(`${mech.name}: wrong password fails at the proof`, async () => {
      const { serverFirst, result } = await exchange(
        mech,
        fakeContext(accounts),
        client(hash, { password: "pen" }),
      );
      assert.ok(serverFirst);
      assertFailure(result, "not-authorized");
      assert.equal(result.kind === "failure" && result.username, "user");
    });
  }

  test("two exchanges get different server nonces", async () => {
    const ctx = fakeContext(accounts);
    const a = await exchange(scramSha256, ctx, client("SHA-256", { nonce: "same" }));
    const b = await exchange(scramSha256, ctx, client("SHA-256", { nonce: "same" }));
    assert.notEqual(a.serverFirst, b.serverFirst);
  });

  test("username is SASLprep'd and case-folded; escaped ',' and '=' round-trip", async () => {
    const upper = await exchange(scramSha256, fakeContext(accounts), client("SHA-256", { username: "USER" }));
    assert.equal(upper.result.kind === "success" && upper.result.username, "user");
    const escaped = await exchange(
      scramSha256,
      fakeContext(accounts),
      client("SHA-256", { username: "a,b=c", password: "secret" }),
    );
    assert.equal(escaped.result.kind === "success" && escaped.result.username, "a,b=c");
  });

  test("no initial response: an empty challenge first, then the exchange", async () => {
    const ex = scramSha1.start(fakeContext(accounts));
    const empty = await ex.step(Buffer.alloc(0));
    assert.deepEqual(empty, { kind: "challenge", data: Buffer.alloc(0) });
    const c = client("SHA-1");
    const first = await ex.step(Buffer.from(c.first()));
    assert.equal(first.kind, "challenge");
    const result = await ex.step(
      Buffer.from(c.final(first.kind === "challenge" ? first.data.toString() : "")),
    );
    assert.equal(result.kind, "success");
  });

  test("authzid: own bare JID accepted (any case), anything else is invalid-authzid", async () => {
    for (const authzid of ["user@example.com", "USER@Example.COM"]) {
      const { result } = await exchange(scramSha256, fakeContext(accounts), client("SHA-256", { authzid }));
      assert.equal(result.kind, "success", authzid);
    }
    for (const authzid of [
      "other@example.com",
      "user@example.org",
      "user@example.com/res",
      "example.com",
      "x@",
    ]) {
      const { result } = await exchange(scramSha256, fakeContext(accounts), client("SHA-256", { authzid }));
      assertFailure(result, "invalid-authzid");
    }
  });

  test("an invalid localpart as username is not-authorized without a lookup", async () => {
    const ctx = fakeContext(accounts);
    const { result } = await exchange(scramSha256, ctx, client("SHA-256", { username: "us@er" }));
    assertFailure(result, "not-authorized");
    assert.deepEqual(ctx.lookups, []);
  });

  test("a storage error is temporary-auth-failure", async () => {
    const ctx = fakeContext(accounts);
    ctx.getCredential = async () => {
      throw new Error("database is locked");
    };
    const { result } = await exchange(scramSha1, ctx, client("SHA-1"));
    assertFailure(result, "temporary-auth-failure");
  });

  test("a step after the end fails", async () => {
    const ctx = fakeContext(accounts);
    const ex = scramSha1.start(ctx);
    const c = client("SHA-1");
    const first = await ex.step(Buffer.from(c.first()));
    await ex.step(Buffer.from(c.final(first.kind === "challenge" ? first.data.toString() : "")));
    assertFailure(await ex.step(Buffer.from("c=biws")), "malformed-request");
  });
});

describe("unknown accounts", () => {
  test("look like real ones until the proof fails", async () => {
    const secret = Buffer.from("server secret");
    const ctx = fakeContext(accounts, { decoySecret: secret, iterations: ITER });
    const real = await exchange(scramSha256, ctx, client("SHA-256", { password: "wrong" }));
    const ghost = await exchange(
      scramSha256,
      ctx,
      client("SHA-256", { username: "ghost", password: "wrong" }),
    );
    const fields = (s: string | undefined) =>
      Object.fromEntries((s ?? "").split(",").map((a) => [a[0], a.slice(2)]));
    const r = fields(real.serverFirst);
    const g = fields(ghost.serverFirst);
    assert.equal(g.i, r.i);
    assert.equal(Buffer.from(g.s!, "base64").length, Buffer.from(r.s!, "base64").length);
    assert.equal(g.r!.length, r.r!.length);
    assert.deepEqual({ ...ghost.result, username: undefined }, { ...real.result, username: undefined });
    assertFailure(ghost.result, "not-authorized");
  });

  test("the right password for a missing account still fails", async () => {
    // A fake credential must never accept anything, even a proof computed against it.
    const ctx = fakeContext({}, { iterations: ITER });
    const { serverFirst, result } = await exchange(scramSha1, ctx, client("SHA-1"));
    assert.ok(serverFirst);
    assertFailure(result, "not-authorized");
  });

  test("fake salts are stable per username and secret, and differ between them", async () => {
    const salt = async (username: string, secret: string, mech = scramSha256) => {
      const ctx = fakeContext({}, { decoySecret: Buffer.from(secret) });
      const { serverFirst } = await exchange(mech, ctx, client("SHA-256", { username }));
      return /,s=([^,]+),/.exec(serverFirst ?? "")?.[1];
    };
    assert.equal(await salt("ghost", "k1"), await salt("ghost", "k1"));
    assert.notEqual(await salt("ghost", "k1"), await salt("ghost", "k2"));
    assert.notEqual(await salt("ghost", "k1"), await salt("phantom", "k1"));
    assert.notEqual(await salt("ghost", "k1"), await salt("ghost", "k1", scramSha1));
    // Without a configured secret, a per-process one still keeps answers stable.
    assert.equal(await salt("ghost", ""), await salt("ghost", ""));
  });

  test("fake credentials use the configured iteration count", async () => {
    const ctx = fakeContext({}, { iterations: 12345 });
    const { serverFirst } = await exchange(scramSha256, ctx, client("SHA-256", { username: "ghost" }));
    assert.match(serverFirst ?? "", /,i=12345$/);
  });
});

describe("channel binding", () => {
  const bindings = {
    "tls-exporter": Buffer.from("exporter-bytes"),
    "tls-server-end-point": Buffer.from("cert-hash"),
  };

  for (const [mech, hash] of [
    [scramSha1Plus, "SHA-1"],
    [scramSha256Plus, "SHA-256"],
  ] as const) {
    test(`${mech.name} succeeds with matching binding data`, async () => {
      for (const type of Object.keys(bindings) as (keyof typeof bindings)[]) {
        const ctx = fakeContext(accounts, { bindings });
        const c = client(hash, { binding: { type, data: bindings[type] } });
        const { result } = await exchange(mech, ctx, c);
        assert.equal(result.kind, "success", type);
        assert.ok(result.kind === "success" && c.verifyServer(result.data!.toString()));
      }
    });

    test(`${mech.name} fails when the client sees other binding data`, async () => {
      const ctx = fakeContext(accounts, { bindings });
      const c = client(hash, { binding: { type: "tls-exporter", data: Buffer.from("mitm-exporter") } });
      const { result } = await exchange(mech, ctx, c);
      assertFailure(result, "not-authorized", "channel binding mismatch");
    });
  }

  test("an unsupported channel-binding type fails at once", async () => {
    const ctx = fakeContext(accounts, { bindings });
    const c = client("SHA-256", { binding: { type: "tls-unique", data: Buffer.from("x") } });
    const { serverFirst, result } = await exchange(scramSha256Plus, ctx, c);
    assert.equal(serverFirst, undefined);
    assertFailure(result, "not-authorized", "unsupported channel-binding type");
  });

  test("a type the connection computes but does not advertise is accepted (tls-unique on TLS 1.3)", async () => {
    const ctx = fakeContext(accounts, { bindings });
    const unique = Buffer.from("client-finished");
    ctx.channelBinding = (type) => (type === "tls-unique" ? unique : bindings[type as keyof typeof bindings]);
    assert.deepEqual(ctx.channelBindingTypes(), ["tls-exporter", "tls-server-end-point"]);
    const c = client("SHA-256", { binding: { type: "tls-unique", data: unique } });
    assert.equal((await exchange(scramSha256Plus, ctx, c)).result.kind, "success");
    const mitm = client("SHA-256", { binding: { type: "tls-unique", data: Buffer.from("other-finished") } });
    assertFailure(
      (await exchange(scramSha256Plus, ctx, mitm)).result,
      "not-authorized",
      "channel binding mismatch",
    );
  });

  test("only a checked proof that is wrong counts as a password guess", async () => {
    const ctx = fakeContext(accounts, { bindings });
    const refusals = [
      (
        await exchange(
          scramSha256Plus,
          ctx,
          client("SHA-256", { binding: { type: "tls-unique", data: Buffer.from("x") } }),
        )
      ).result,
      (
        await exchange(
          scramSha256Plus,
          ctx,
          client("SHA-256", { binding: { type: "tls-exporter", data: Buffer.from("mitm") } }),
        )
      ).result,
      (
        await exchange(
          mechanismsFor(ctx).find((m) => m.name === "SCRAM-SHA-256")!,
          ctx,
          client("SHA-256", { binding: "y" }),
        )
      ).result,
    ];
    for (const r of refusals) {
      assert.equal(r.kind, "failure");
      assert.equal(r.kind === "failure" && r.passwordChecked, undefined, JSON.stringify(r));
    }
    const wrong = (
      await exchange(scramSha256, fakeContext(accounts), client("SHA-256", { password: "wrong" }))
    ).result;
    assert.equal(wrong.kind === "failure" && wrong.passwordChecked, true);
  });

  test("a listed type whose data is unavailable fails", async () => {
    const ctx = fakeContext(accounts, { bindings });
    ctx.channelBinding = () => undefined;
    const c = client("SHA-256", { binding: { type: "tls-exporter", data: Buffer.from("x") } });
    assertFailure((await exchange(scramSha256Plus, ctx, c)).result, "not-authorized");
  });

  test("-PLUS without a channel-binding flag, or plain SCRAM with one, is malformed", async () => {
    const ctx = fakeContext(accounts, { bindings });
    for (const binding of ["n", "y"] as const) {
      assertFailure(
        (await exchange(scramSha256Plus, ctx, client("SHA-256", { binding }))).result,
        "malformed-request",
      );
    }
    const c = client("SHA-256", { binding: { type: "tls-exporter", data: bindings["tls-exporter"] } });
    assertFailure((await exchange(scramSha256, ctx, c)).result, "malformed-request");
  });

  test("-PLUS is available only with channel-binding types", () => {
    assert.equal(scramSha256Plus.available(fakeContext(accounts)), false);
    assert.equal(scramSha256Plus.available(fakeContext(accounts, { bindings })), true);
  });

  test("downgrade: flag 'y' fails while -PLUS is offered", async () => {
    const ctx = fakeContext(accounts, { bindings });
    const offered = mechanismsFor(ctx);
    const mech = offered.find((m) => m.name === "SCRAM-SHA-256")!;
    const { result } = await exchange(mech, ctx, client("SHA-256", { binding: "y" }));
    assertFailure(result, "not-authorized", "channel-binding downgrade detected");
    // A client without channel-binding support ("n") is fine on the same connection.
    assert.equal((await exchange(mech, ctx, client("SHA-256"))).result.kind, "success");
  });

  test("flag 'y' is accepted when no -PLUS is offered (no TLS, or disabled by configuration)", async () => {
    const noTls = fakeContext(accounts);
    assert.equal(
      (await exchange(scramSha1, noTls, client("SHA-1", { binding: "y" }))).result.kind,
      "success",
    );
    const ctx = fakeContext(accounts, { bindings });
    const mech = mechanismsFor(ctx, ["SCRAM-SHA-1", "PLAIN"]).find((m) => m.name === "SCRAM-SHA-1")!;
    assert.equal((await exchange(mech, ctx, client("SHA-1", { binding: "y" }))).result.kind, "success");
  });
});
