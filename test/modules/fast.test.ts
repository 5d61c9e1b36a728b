/**
 * FAST (XEP-0484) on the real stream engine over a TLS socket, with a client written by
 * hand so every rule can be broken on purpose: a wrong token, a token of another client,
 * a replayed `count`, a token after a password change, an expired token, a token used with
 * another mechanism, a login without <fast/>; rotation (the old token valid until the new
 * one is used), invalidation, the channel-binding variants, the admin commands, and the
 * licence policy applying to a token login as to any other.
 */
import assert from "node:assert/strict";
import { createHash, createHmac, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { isBindingType } from "../../sdk/binding.js";
import type { CommandContext } from "../../src/core/commands.js";
import type { ModuleDefinition } from "../../src/core/module.js";
import { deriveCredentials } from "../../src/core/sasl/credentials.js";
import { fastList, fastRevoke } from "../../src/modules/fast/commands.js";
import fast from "../../src/modules/fast/index.js";
import licensing from "../../src/modules/licensing/index.js";
import { freePorts } from "../helpers/server.js";
import { type Element, parseXml } from "../helpers/stanza.js";
import { type Harness, startHarness } from "../kit/harness.js";
import { registerApp, setPolicy, withLicensing } from "../licensing/b-kit.js";
import { licenceOf, SocketClient } from "../licensing/b-socket.js";

const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_FAST = "urn:xmpp:fast:0";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const DAY = 86_400_000;

type Outcome = Element | "stream-error";

async function tlsClient(h: Harness, port: number): Promise<SocketClient> {
  const c = await SocketClient.connect(port);
  await c.open(h.domain);
  await c.startTls(h.domain);
  return c;
}

/** Sends one SASL2 <authenticate/> and reads its <success/> or <failure/>. */
async function authenticate(
  c: SocketClient,
  mechanism: string,
  initial: Buffer,
  inner: string,
): Promise<Outcome> {
  c.write(
    `<authenticate xmlns='${NS_SASL2}' mechanism='${mechanism}'><initial-response>${initial.toString("base64")}</initial-response>${inner}</authenticate>`,
  );
  const m = await c.waitFor(
    /<success xmlns="urn:xmpp:sasl:2"[\s\S]*?<\/success>(?=<stream:features)|<failure xmlns="urn:xmpp:sasl:2"[\s\S]*?<\/failure>|<stream:error>/,
    "the SASL2 outcome",
  );
  return m[0].startsWith("<stream:error") ? "stream-error" : parseXml(m[0]);
}

const agentXml = (id: string) =>
  `<user-agent id='${id}'><software>fast test</software><device>rig</device></user-agent>`;

/** A password login (PLAIN) asking for a token; the token. */
async function passwordLogin(
  h: Harness,
  port: number,
  user: string,
  password: string,
  agentId: string,
  mechanism = "HT-SHA-256-NONE",
): Promise<{ token: string; expiry: string; success: Element }> {
  const c = await tlsClient(h, port);
  try {
    const outcome = await authenticate(
      c,
      "PLAIN",
      Buffer.from(`\0${user}\0${password}`),
      `${agentXml(agentId)}<request-token xmlns='${NS_FAST}' mechanism='${mechanism}'/>`,
    );
    const success = named("success", outcome);
    const token = success.getChild("token", NS_FAST);
    assert.ok(token, `a token in <success/>: ${success}`);
    return { token: token.attrs.token!, expiry: token.attrs.expiry!, success };
  } finally {
    c.destroy();
  }
}

function named(name: "success" | "failure", outcome: Outcome): Element {
  assert.notEqual(outcome, "stream-error", "a SASL2 outcome, not a stream error");
  const el = outcome as Element;
  assert.equal(el.name, name, el.toString());
  return el;
}

/** The HT initiator message: authcid NUL HMAC(token, "Initiator" || cb-data). */
function htMessage(user: string, token: string, cbData: Buffer = Buffer.alloc(0)): Buffer {
  const mac = createHmac("sha256", Buffer.from(token, "utf8")).update("Initiator").update(cbData).digest();
  return Buffer.concat([Buffer.from(`${user}\0`), mac]);
}

interface FastLogin {
  user: string;
  token: string;
  agentId: string;
  mechanism?: string;
  fast?: string;
  requestToken?: string;
  cbType?: string;
}

/** A login with a token on a new connection; the outcome and the connection (left open). */
async function fastLogin(
  h: Harness,
  port: number,
  login: FastLogin,
): Promise<{ outcome: Outcome; c: SocketClient }> {
  const c = await tlsClient(h, port);
  const mechanism = login.mechanism ?? "HT-SHA-256-NONE";
  let cbData: Buffer = Buffer.alloc(0);
  if (login.cbType) {
    assert.ok(isBindingType(login.cbType));
    const data = c.bindingData(login.cbType);
    assert.ok(data, `${login.cbType} data on this connection`);
    cbData = data;
  }
  const fastEl = login.fast ?? `<fast xmlns='${NS_FAST}'/>`;
  const request = login.requestToken
    ? `<request-token xmlns='${NS_FAST}' mechanism='${login.requestToken}'/>`
    : "";
  const outcome = await authenticate(
    c,
    mechanism,
    htMessage(login.user, login.token, cbData),
    `${agentXml(login.agentId)}${fastEl}${request}`,
  );
  return { outcome, c };
}

async function fastOutcome(h: Harness, port: number, login: FastLogin): Promise<Outcome> {
  const { outcome, c } = await fastLogin(h, port, login);
  c.destroy();
  return outcome;
}

function assertRefused(outcome: Outcome, why: string): Element {
  const failure = named("failure", outcome);
  assert.ok(failure.getChild("not-authorized", NS_SASL), `${why}: ${failure}`);
  return failure;
}

describe("FAST (XEP-0484) on SASL2", () => {
  let h: Harness;
  let port: number;
  before(async () => {
    [port] = await freePorts(1);
    h = await startHarness({ modules: [fast] as ModuleDefinition<unknown>[], config: { c2sPort: port } });
    for (const user of ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"])
      await h.createUser(user, `${user}-pw`);
  });
  after(async () => {
    await h?.stop();
  });

  test("FAST is offered inside SASL2's <authentication/> with the HT mechanisms this TLS connection can bind to", async () => {
    const c = await tlsClient(h, port);
    const auth = c.features?.getChild("authentication", NS_SASL2);
    const offered = auth?.getChild("inline")?.getChild("fast", NS_FAST);
    assert.ok(offered, `FAST inline: ${auth}`);
    const names = offered.getChildren("mechanism").map((m) => m.text());
    assert.ok(names.includes("HT-SHA-256-NONE"), names.join(", "));
    assert.ok(names.includes("HT-SHA-256-ENDP"), names.join(", "));
    const mechanisms = auth!.getChildren("mechanism").map((m) => m.text());
    assert.ok(!mechanisms.some((m) => m.startsWith("HT-")), "not among the ordinary mechanisms");
    c.destroy();
  });

  test("a token logs in, with the server's proof in the additional data; a wrong token is not-authorized", async () => {
    const agentId = randomUUID();
    const { token, expiry } = await passwordLogin(h, port, "alice", "alice-pw", agentId);
    assert.equal(Date.parse(expiry), h.clock.now() + 21 * DAY - ((h.clock.now() + 21 * DAY) % 1000));
    const stored = await h.server.services.storage.keyValue("fast-tokens").keys("alice");
    assert.equal(stored.length, 1);
    const raw = await h.server.services.storage.keyValue("fast-tokens").get("alice", stored[0]!);
    assert.ok(raw && !raw.includes(token), "the token itself is not stored");

    const ok = named("success", await fastOutcome(h, port, { user: "alice", token, agentId }));
    assert.equal(ok.getChildText("authorization-identifier"), `alice@${h.domain}`);
    const expected = createHmac("sha256", Buffer.from(token)).update("Responder").digest("base64");
    assert.equal(ok.getChildText("additional-data"), expected, "HMAC(token, 'Responder')");

    const wrong = `${token.slice(0, -4)}AAAA`;
    assertRefused(await fastOutcome(h, port, { user: "alice", token: wrong, agentId }), "a wrong token");
    assertRefused(
      await fastOutcome(h, port, { user: "alice", token, agentId: randomUUID() }),
      "another client's id",
    );
    assertRefused(await fastOutcome(h, port, { user: "bob", token, agentId }), "another account");
    const noFast = assertRefused(
      await fastOutcome(h, port, { user: "alice", token, agentId, fast: "" }),
      "without <fast/>",
    );
    assert.match(noFast.getChildText("text") ?? "", /<fast/);
    assert.equal(
      h.server.services.loginGuard.failuresRemembered,
      0,
      "a refused token is not a guessed password",
    );
    // Still valid after the refusals.
    named("success", await fastOutcome(h, port, { user: "alice", token, agentId }));
  });

  test("count must grow: a replayed count is refused, a higher one accepted", async () => {
    const agentId = randomUUID();
    const { token } = await passwordLogin(h, port, "bob", "bob-pw", agentId);
    const withCount = (n: string) => `<fast xmlns='${NS_FAST}' count='${n}'/>`;
    named("success", await fastOutcome(h, port, { user: "bob", token, agentId, fast: withCount("5") }));
    const replay = assertRefused(
      await fastOutcome(h, port, { user: "bob", token, agentId, fast: withCount("5") }),
      "the same count again",
    );
    assert.match(replay.getChildText("text") ?? "", /count/);
    assertRefused(
      await fastOutcome(h, port, { user: "bob", token, agentId, fast: withCount("4") }),
      "a lower count",
    );
    named("success", await fastOutcome(h, port, { user: "bob", token, agentId, fast: withCount("6") }));
    const bad = named(
      "failure",
      await fastOutcome(h, port, { user: "bob", token, agentId, fast: withCount("x") }),
    );
    assert.ok(bad.getChild("malformed-request", NS_SASL), bad.toString());
  });

  test("a new password voids the tokens issued before it", async () => {
    const agentId = randomUUID();
    const { token } = await passwordLogin(h, port, "carol", "carol-pw", agentId);
    named("success", await fastOutcome(h, port, { user: "carol", token, agentId }));
    await h.server.services.storage.accounts.setCredentials(
      "carol",
      deriveCredentials("carol-new-pw", { iterations: 4096, hashes: ["SHA-1", "SHA-256"] }),
    );
    assertRefused(await fastOutcome(h, port, { user: "carol", token, agentId }), "a token from before");
    assert.deepEqual(await h.server.services.storage.keyValue("fast-tokens").keys("carol"), [], "removed");
    // The new password earns a new token.
    const fresh = await passwordLogin(h, port, "carol", "carol-new-pw", agentId);
    named("success", await fastOutcome(h, port, { user: "carol", token: fresh.token, agentId }));
  });

  test("a disabled account cannot log in with its token; a deleted one loses its tokens", async () => {
    const agentId = randomUUID();
    const { token } = await passwordLogin(h, port, "hank", "hank-pw", agentId);
    await h.server.services.storage.accounts.setDisabled("hank", true);
    assertRefused(await fastOutcome(h, port, { user: "hank", token, agentId }), "disabled");
    await h.server.services.storage.accounts.setDisabled("hank", false);
    assertRefused(await fastOutcome(h, port, { user: "hank", token, agentId }), "removed while disabled");
    // Deleted with the account: a new account of the same name gets none of them.
    const again = await passwordLogin(h, port, "hank", "hank-pw", agentId);
    await h.server.services.storage.accounts.delete("hank");
    await h.createUser("hank", "hank-pw");
    assert.deepEqual(await h.server.services.storage.keyValue("fast-tokens").keys("hank"), []);
    assertRefused(await fastOutcome(h, port, { user: "hank", token: again.token, agentId }), "deleted");
  });

  test("a token expires; one near its expiry is rotated, and the old one works until the new one is used", async () => {
    const agentId = randomUUID();
    const { token } = await passwordLogin(h, port, "dave", "dave-pw", agentId);
    // 10 days later: 11 days left, more than the 7 of rotateBeforeExpirySeconds: no new token.
    h.clock.advance(10 * DAY);
    const early = named("success", await fastOutcome(h, port, { user: "dave", token, agentId }));
    assert.equal(early.getChild("token", NS_FAST), undefined, "no rotation yet");
    // 6 days left: the server rotates.
    h.clock.advance(5 * DAY);
    const due = named("success", await fastOutcome(h, port, { user: "dave", token, agentId }));
    const rotated = due.getChild("token", NS_FAST)?.attrs.token;
    assert.ok(rotated && rotated !== token, `a new token in <success/>: ${due}`);
    // The client may have missed it: the old token still works (and gets yet another new one).
    const again = named("success", await fastOutcome(h, port, { user: "dave", token, agentId }));
    const newest = again.getChild("token", NS_FAST)?.attrs.token;
    assert.ok(newest && newest !== rotated);
    assertRefused(
      await fastOutcome(h, port, { user: "dave", token: rotated, agentId }),
      "a rotated token replaced by a newer one before it was used",
    );
    named("success", await fastOutcome(h, port, { user: "dave", token: newest, agentId }));
    assertRefused(
      await fastOutcome(h, port, { user: "dave", token, agentId }),
      "the old token once the new one was used",
    );
    // And the new one expires after its own lifetime.
    h.clock.advance(21 * DAY + 1000);
    assertRefused(await fastOutcome(h, port, { user: "dave", token: newest, agentId }), "expired");
  });

  test("<request-token/> during a token login rotates at once; <fast invalidate='true'/> logs the client out", async () => {
    const agentId = randomUUID();
    const { token } = await passwordLogin(h, port, "erin", "erin-pw", agentId);
    const rotated = named(
      "success",
      await fastOutcome(h, port, { user: "erin", token, agentId, requestToken: "HT-SHA-256-NONE" }),
    );
    const next = rotated.getChild("token", NS_FAST)?.attrs.token;
    assert.ok(next);
    const out = named(
      "success",
      await fastOutcome(h, port, {
        user: "erin",
        token: next,
        agentId,
        fast: `<fast xmlns='${NS_FAST}' invalidate='true'/>`,
      }),
    );
    assert.equal(out.getChild("token", NS_FAST), undefined, "no new token after invalidation");
    assertRefused(await fastOutcome(h, port, { user: "erin", token: next, agentId }), "invalidated");
    assertRefused(await fastOutcome(h, port, { user: "erin", token, agentId }), "the older one too");
  });

  test("a token works only with the mechanism it was issued for; -ENDP and -EXPR bind to the TLS channel", async () => {
    const agentId = randomUUID();
    const none = await passwordLogin(h, port, "frank", "frank-pw", agentId);
    assertRefused(
      await fastOutcome(h, port, {
        user: "frank",
        token: none.token,
        agentId,
        mechanism: "HT-SHA-256-ENDP",
        cbType: "tls-server-end-point",
      }),
      "a -NONE token with -ENDP",
    );
    const agent2 = randomUUID();
    const endp = await passwordLogin(h, port, "frank", "frank-pw", agent2, "HT-SHA-256-ENDP");
    const { outcome, c } = await fastLogin(h, port, {
      user: "frank",
      token: endp.token,
      agentId: agent2,
      mechanism: "HT-SHA-256-ENDP",
      cbType: "tls-server-end-point",
    });
    const ok = named("success", outcome);
    const cb = c.bindingData("tls-server-end-point")!;
    const expected = createHmac("sha256", Buffer.from(endp.token))
      .update("Responder")
      .update(cb)
      .digest("base64");
    assert.equal(ok.getChildText("additional-data"), expected, "HMAC(token, 'Responder' || cb-data)");
    c.destroy();
    // -EXPR: the TLS exporter of this very connection (TLS 1.3).
    const agent3 = randomUUID();
    const expr = await passwordLogin(h, port, "frank", "frank-pw", agent3, "HT-SHA-256-EXPR");
    named(
      "success",
      await fastOutcome(h, port, {
        user: "frank",
        token: expr.token,
        agentId: agent3,
        mechanism: "HT-SHA-256-EXPR",
        cbType: "tls-exporter",
      }),
    );
    // The proof of -NONE (no channel data) does not pass for -ENDP.
    assertRefused(
      await fastOutcome(h, port, {
        user: "frank",
        token: endp.token,
        agentId: agent2,
        mechanism: "HT-SHA-256-ENDP",
      }),
      "-ENDP without the channel's data",
    );
  });

  test("fast list shows an account's clients with usable tokens; fast revoke removes them", async () => {
    const agentId = randomUUID();
    const { token } = await passwordLogin(h, port, "gina", "gina-pw", agentId);
    const ctx: CommandContext = {
      config: h.server.services.config,
      storage: h.server.services.storage,
      clock: h.clock,
      actor: "test",
    };
    const listed = await fastList.run(ctx, { name: "gina" });
    assert.equal(listed.data?.clients.length, 1);
    assert.equal(listed.data?.clients[0]?.client, agentId);
    assert.equal(listed.data?.clients[0]?.software, "fast test");
    assert.equal(listed.data?.clients[0]?.mechanism, "HT-SHA-256-NONE");
    // A second client; then a new password: neither client's token is listed any more.
    await passwordLogin(h, port, "gina", "gina-pw", randomUUID());
    assert.equal((await fastList.run(ctx, { name: "gina" })).data?.clients.length, 2);
    const { credentials } = (await h.server.services.storage.accounts.get("gina"))!;
    await h.server.services.storage.accounts.setCredentials(
      "gina",
      deriveCredentials("gina-new-pw", { iterations: 4096, hashes: ["SHA-1"] }),
    );
    assert.equal((await fastList.run(ctx, { name: "gina" })).data?.clients.length, 0);
    await h.server.services.storage.accounts.setCredentials("gina", credentials);
    const revoked = await fastRevoke.run(ctx, { name: "gina", client: agentId });
    assert.equal(revoked.data?.revoked, 1);
    assertRefused(await fastOutcome(h, port, { user: "gina", token, agentId }), "revoked");
    assert.equal((await fastList.run(ctx, { name: "gina" })).data?.clients.length, 1, "the other client's");
    await assert.rejects(fastRevoke.run(ctx, { name: "gina", client: agentId }), /no FAST token/);
  });

  test("the stored value is the SHA-256 of the token, and HMAC keyed with it equals HMAC keyed with the token", () => {
    // Why tokens can be stored hashed (RFC 2104 §2: a key longer than the block is hashed first).
    const token = "x".repeat(96);
    const hashed = createHash("sha256").update(token).digest();
    assert.equal(
      createHmac("sha256", hashed).update("Initiator").digest("hex"),
      createHmac("sha256", Buffer.from(token)).update("Initiator").digest("hex"),
    );
  });
});

describe("FAST and the client licence policy", () => {
  test("enforce: a token login without a licence proof is refused like a password login; with a proof it succeeds", async () => {
    const [port] = await freePorts(1);
    const h = withLicensing(
      await startHarness({
        modules: [licensing, fast] as ModuleDefinition<unknown>[],
        config: { c2sPort: port },
      }),
    );
    try {
      await h.createUser("alice", "alice-pw");
      const t = await registerApp(h.registry);
      await h.api.recheck();
      const agentId = randomUUID();
      const { token } = await passwordLogin(h, port!, "alice", "alice-pw", agentId);
      await setPolicy(h.registry, { mode: "enforce" });
      await h.api.recheck();

      const refused = named("failure", await fastOutcome(h, port!, { user: "alice", token, agentId }));
      assert.ok(refused.getChild("account-disabled", NS_SASL), refused.toString());
      assert.match(refused.getChildText("text") ?? "", /licensed client software only/);

      const c = await tlsClient(h, port!);
      const proof = c.proofText(h.domain, licenceOf(t));
      const outcome = await authenticate(
        c,
        "HT-SHA-256-NONE",
        htMessage("alice", token),
        `${agentXml(agentId)}<fast xmlns='${NS_FAST}'/>${proof}`,
      );
      const ok = named("success", outcome);
      assert.ok(ok.getChild("success", "urn:switchboard:client-licence:0"), ok.toString());
      c.destroy();
    } finally {
      await h.stop();
    }
  });
});
