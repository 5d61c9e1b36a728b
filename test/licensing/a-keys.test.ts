/** Ed25519 helpers and `keygen`: what a publisher writes, the server verifies. */
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type CommandContext, CommandError } from "../../src/core/commands.js";
import type { Storage } from "../../src/core/storage/types.js";
import { generateKeyPair, KeyError, publicKeyFromInput, toKeyObject } from "../../src/licensing/index.js";
import { keygen } from "../../src/modules/licensing/commands.js";
import { loadServerConfig } from "../../src/server/config.js";
import { ManualClock } from "../kit/harness.js";

const dir = mkdtempSync(join(tmpdir(), "switchboard-keys-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// keygen is a local command: any use of storage fails the test.
const noStorage = new Proxy({} as Storage, {
  get(_target, prop) {
    throw new Error(`keygen used storage.${String(prop)}`);
  },
});
const ctx: CommandContext = {
  config: loadServerConfig({ overrides: { dataDir: dir } }),
  storage: noStorage,
  clock: new ManualClock(),
  actor: "test",
};

async function runKeygen(raw: Record<string, unknown>) {
  const input = keygen.input.parse(raw);
  return keygen.run(ctx, input);
}

describe("keygen", () => {
  it("writes a private key only its owner can read and a public key that verifies its signatures", async () => {
    const out = join(dir, "app.key");
    const result = await runKeygen({ out });
    assert.equal(keygen.local, true);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const privatePem = readFileSync(out, "utf8");
    const publicText = readFileSync(`${out}.pub`, "utf8");
    assert.match(privatePem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(publicText.trim(), (result.data as { publicKey: string }).publicKey);

    const message = Buffer.from("switchboard-client-licence:0\nexample.com\nstream-1");
    const signature = sign(null, message, createPrivateKey(privatePem));
    const publicKey = publicKeyFromInput(publicText);
    assert.equal(verify(null, message, toKeyObject(publicKey), signature), true);
    assert.equal(verify(null, Buffer.from("another message"), toKeyObject(publicKey), signature), false);
    const other = generateKeyPair();
    assert.equal(verify(null, message, toKeyObject(other.publicKey), signature), false);
  });

  it("refuses to overwrite a key unless forced (409)", async () => {
    const out = join(dir, "twice.key");
    await runKeygen({ out });
    const first = readFileSync(out, "utf8");
    await assert.rejects(runKeygen({ out }), (err) => err instanceof CommandError && err.status === 409);
    assert.equal(readFileSync(out, "utf8"), first);
    writeFileSync(out, "x", { mode: 0o644 });
    await runKeygen({ out, force: true });
    assert.notEqual(readFileSync(out, "utf8"), first);
    assert.equal(statSync(out).mode & 0o777, 0o600);
  });

  it("reports an unwritable place as bad input (400)", async () => {
    await assert.rejects(
      runKeygen({ out: join(dir, "no-such-dir", "k") }),
      (err) => err instanceof CommandError && err.status === 400,
    );
  });
});

describe("public key input", () => {
  it("accepts raw base64 with or without padding, and PEM SPKI, as the same canonical key", () => {
    const { publicKey } = generateKeyPairSync("ed25519");
    const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url").toString("base64");
    assert.equal(publicKeyFromInput(raw), raw);
    assert.equal(publicKeyFromInput(` ${raw.replace(/=$/, "")}\n`), raw);
    assert.equal(publicKeyFromInput(publicKey.export({ format: "pem", type: "spki" }).toString()), raw);
    assert.ok(toKeyObject(raw).equals(createPublicKey(publicKey.export({ format: "pem", type: "spki" }))));
  });

  const refused: [string, string][] = [
    ["empty", ""],
    ["text", "hello"],
    ["31 bytes", Buffer.alloc(31, 9).toString("base64")],
    ["33 bytes", Buffer.alloc(33, 9).toString("base64")],
    ["base64url alphabet", "-".repeat(43)],
    ["the neutral point", Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString("base64")],
    ["a point of order 4", Buffer.alloc(32).toString("base64")],
    ["a point of order 2", "7P///////////////////////////////////////38="],
    [
      "a point of order 8",
      Buffer.from("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "hex").toString(
        "base64",
      ),
    ],
    ["y ≥ p (non-canonical)", Buffer.alloc(32, 0xff).toString("base64")],
    ["a private key", generateKeyPair().privateKeyPem],
    [
      "an X25519 key",
      generateKeyPairSync("x25519").publicKey.export({ format: "pem", type: "spki" }).toString(),
    ],
    ["broken PEM", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"],
  ];
  for (const [what, input] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(() => publicKeyFromInput(input), KeyError);
    });
  }

  it("accepts every freshly generated key (the point check has no false refusals)", () => {
    for (let i = 0; i < 50; i++) {
      const k = generateKeyPair();
      assert.equal(publicKeyFromInput(k.publicKey), k.publicKey);
    }
  });

  it("finds a y coordinate off the curve", () => {
    // About half of all y values have no x on the curve; y = 2 is one of them.
    const y2 = Buffer.alloc(32);
    y2[0] = 2;
    assert.throws(() => publicKeyFromInput(y2.toString("base64")), /not a point/);
  });
});
