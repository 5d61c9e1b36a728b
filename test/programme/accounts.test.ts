/** Portal accounts against a real local SMTP server: sign-up and verification, login, password reset, limits. */
import assert from "node:assert/strict";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { ProgrammeError } from "../../src/programme/errors.js";
import { ACCOUNTS_STORE, TOKENS_STORE } from "../../src/programme/portal-accounts.js";
import { RateLimited } from "../../src/programme/rate-limits.js";
import { hashPassword, verifyPassword } from "../../src/programme/secrets.js";
import { ValidationError } from "../../src/programme/validation.js";
import { ADMIN, type Kit, PUBLIC_URL, removeTempDirs, startKit } from "./kit.js";
import { linkIn } from "./smtp-sink.js";

after(removeTempDirs);

const EMAIL = "Dev@Example.com";
const PASSWORD = "correct horse battery";

describe("portal accounts", () => {
  let kit: Kit;
  beforeEach(async () => {
    kit = await startKit();
  });
  afterEach(async () => {
    await kit.close();
  });

  async function signUpAndVerify(email = EMAIL, password = PASSWORD) {
    const before = kit.smtp.mails.length;
    await kit.programme.accounts.signUp({ email, password }, { address: "192.0.2.1" });
    await kit.smtp.waitFor(before + 1);
    const mail = kit.smtp.mails.at(-1)!;
    const token = linkIn(mail, "/portal/verify").searchParams.get("token")!;
    return kit.programme.accounts.verifyEmail(token);
  }

  it("signs up, mails a verification link whose token confirms the address, then logs in", async () => {
    const { accounts } = kit.programme;
    const { account } = await accounts.signUp({ email: EMAIL, password: PASSWORD }, { address: "192.0.2.1" });
    assert.ok(account);
    assert.equal(account.email, "dev@example.com");
    assert.equal(account.emailVerified, false);
    assert.equal((account as Record<string, unknown>).passwordHash, undefined, "views carry no hash");

    // Not yet confirmed: the right password is told apart from a wrong one only now.
    assert.deepEqual(await accounts.login(EMAIL, PASSWORD), { ok: false, reason: "unverified" });
    assert.deepEqual(await accounts.login(EMAIL, "wrong password!"), { ok: false, reason: "invalid" });

    await kit.smtp.waitFor(1);
    const mail = kit.smtp.mails[0]!;
    assert.deepEqual(mail.to, ["dev@example.com"]);
    assert.equal(mail.from, "licensing@chat.example.net");
    assert.match(mail.subject, /Confirm your email address/);
    assert.equal(mail.headers.get("auto-submitted"), "auto-generated");
    const link = linkIn(mail, "/portal/verify");
    assert.equal(link.origin, PUBLIC_URL);
    const token = link.searchParams.get("token")!;
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);

    // Only the hash of the token is stored.
    const stored = JSON.stringify(await kit.storage.documents(TOKENS_STORE).list());
    assert.ok(!stored.includes(token));

    const verified = await accounts.verifyEmail(token);
    assert.equal(verified.emailVerified, true);
    assert.equal(verified.verifiedAt, kit.clock.now());
    await assert.rejects(accounts.verifyEmail(token), /invalid or has expired/, "single use");

    const login = await accounts.login("DEV@example.COM", PASSWORD);
    assert.equal(login.ok, true);
    assert.equal(login.ok && login.account.id, account.id);
    assert.deepEqual(await accounts.login(EMAIL, "not the password"), { ok: false, reason: "invalid" });
    assert.deepEqual(await accounts.login("nobody@example.com", PASSWORD), { ok: false, reason: "invalid" });
  });

  it("a verification link expires after 48 hours, and a newer link replaces an older one", async () => {
    const { accounts } = kit.programme;
    await accounts.signUp({ email: EMAIL, password: PASSWORD });
    await accounts.resendVerification(EMAIL);
    await kit.smtp.waitFor(2);
    const [first, second] = kit.smtp.mails.map((m) => linkIn(m, "/portal/verify").searchParams.get("token")!);
    await assert.rejects(accounts.verifyEmail(first!), ProgrammeError);
    kit.clock.advance(48 * 3_600_000);
    await assert.rejects(accounts.verifyEmail(second!), /expired/);
    assert.equal(await kit.programme.housekeeping().then((r) => r.tokens), 1, "the expired token is pruned");
    await assert.rejects(accounts.verifyEmail("not-a-token"), ProgrammeError);
  });

  it("stores scrypt hashes with a salt per user and checks them", async () => {
    const a = await hashPassword(PASSWORD);
    const b = await hashPassword(PASSWORD);
    assert.match(a, /^scrypt\$15\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.notEqual(a, b, "different salts");
    assert.equal(await verifyPassword(PASSWORD, a), true);
    assert.equal(await verifyPassword(`${PASSWORD}!`, a), false);
    assert.equal(await verifyPassword(PASSWORD, "scrypt$15$8$1$AAAA$AAAA"), false, "malformed hash");
    assert.equal(await verifyPassword(PASSWORD, a.replace("scrypt", "bcrypt")), false);

    await kit.programme.accounts.signUp({ email: "one@example.com", password: PASSWORD });
    await kit.programme.accounts.signUp({ email: "two@example.com", password: PASSWORD });
    const hashes = (
      await kit.storage.documents<{ passwordHash?: string }>(ACCOUNTS_STORE).list({ prefix: "account:" })
    ).map((e) => e.value.passwordHash);
    assert.equal(hashes.length, 2);
    assert.notEqual(hashes[0], hashes[1]);
    assert.ok(!JSON.stringify(hashes).includes(PASSWORD));
  });

  it("rejects bad addresses and short passwords with field errors", async () => {
    const { accounts } = kit.programme;
    await assert.rejects(accounts.signUp({ email: "not an address", password: PASSWORD }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.deepEqual(Object.keys(err.fields), ["email"]);
      return true;
    });
    await assert.rejects(accounts.signUp({ email: EMAIL, password: "short" }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.match(err.fields.password!, /at least 10/);
      return true;
    });
  });

  it("a second sign-up with a confirmed address creates nothing and tells the owner by mail", async () => {
    await signUpAndVerify();
    const again = await kit.programme.accounts.signUp({ email: EMAIL, password: "another password 123" });
    assert.equal(again.account, undefined);
    await kit.smtp.waitFor(2);
    const mail = kit.smtp.mails[1]!;
    assert.match(mail.subject, /licensing portal account/);
    assert.match(mail.text, /already has an account/);
    assert.ok(linkIn(mail, "/portal/login"));
    assert.equal((await kit.programme.accounts.list()).length, 1);
    // The first password still works; the second sign-up changed nothing.
    assert.equal((await kit.programme.accounts.login(EMAIL, PASSWORD)).ok, true);
  });

  it("resets a forgotten password with a mailed single-use link", async () => {
    const { accounts } = kit.programme;
    const account = await signUpAndVerify();
    await accounts.requestPasswordReset("dev@EXAMPLE.com", { address: "192.0.2.7" });
    // No account, no mail, same answer.
    await accounts.requestPasswordReset("stranger@example.com");
    await kit.smtp.waitFor(2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(kit.smtp.mails.length, 2);
    const mail = kit.smtp.mails[1]!;
    assert.match(mail.subject, /Reset your/);
    const token = linkIn(mail, "/portal/reset").searchParams.get("token")!;

    assert.equal((await accounts.checkResetToken(token))?.id, account.id, "the form may be shown");
    await assert.rejects(accounts.resetPassword(token, "short"), ValidationError);
    kit.clock.advance(60_000);
    const updated = await accounts.resetPassword(token, "a brand new password");
    assert.equal(updated.passwordChangedAt, kit.clock.now());
    await assert.rejects(accounts.resetPassword(token, "yet another password"), /invalid or has expired/);
    assert.equal(await accounts.checkResetToken(token), undefined);

    assert.deepEqual(await accounts.login(EMAIL, PASSWORD), { ok: false, reason: "invalid" });
    assert.equal((await accounts.login(EMAIL, "a brand new password")).ok, true);
  });

  it("a reset link expires after an hour and confirms an unconfirmed address when used in time", async () => {
    const { accounts } = kit.programme;
    await accounts.signUp({ email: EMAIL, password: PASSWORD });
    await accounts.requestPasswordReset(EMAIL);
    await kit.smtp.waitFor(2);
    const token = linkIn(kit.smtp.mails[1]!, "/portal/reset").searchParams.get("token")!;
    kit.clock.advance(61 * 60_000);
    await assert.rejects(accounts.resetPassword(token, "a brand new password"), /expired/);

    await accounts.requestPasswordReset(EMAIL);
    await kit.smtp.waitFor(3);
    const fresh = linkIn(kit.smtp.mails[2]!, "/portal/reset").searchParams.get("token")!;
    const account = await accounts.resetPassword(fresh, "a brand new password");
    assert.equal(account.emailVerified, true, "the link proved the mailbox");
    assert.equal((await accounts.login(EMAIL, "a brand new password")).ok, true);
  });

  it("limits failed logins per address and per client address, and reset requests per address", async () => {
    const { accounts } = kit.programme;
    await signUpAndVerify();
    for (let i = 0; i < 10; i++) {
      assert.equal(
        (await accounts.login(EMAIL, `wrong ${i} password`, { address: "198.51.100.9" })).ok,
        false,
      );
    }
    await assert.rejects(accounts.login(EMAIL, PASSWORD, { address: "203.0.113.5" }), (err: unknown) => {
      assert.ok(err instanceof RateLimited);
      assert.ok(err.retryAfterMs > 0 && err.retryAfterMs <= 15 * 60_000);
      return true;
    });
    kit.clock.advance(15 * 60_000);
    assert.equal((await accounts.login(EMAIL, PASSWORD)).ok, true, "the window passed");

    for (let i = 0; i < 3; i++) await accounts.requestPasswordReset(EMAIL);
    await assert.rejects(accounts.requestPasswordReset(EMAIL), RateLimited);
  });
  it("portal-user link lets a confirmed account act for a publisher added without one, audited; the address alone never links", async () => {
    const publisher = await kit.programme.registry.addPublisher(ADMIN, {
      organisation: "Example Apps",
      contactEmail: EMAIL,
    });
    const account = await signUpAndVerify();
    assert.equal(account.publisherId, undefined, "a confirmed matching address links nothing by itself");
    const unconfirmed = "later@example.com";
    await kit.programme.accounts.signUp({ email: unconfirmed, password: PASSWORD });
    await assert.rejects(
      kit.run("portal-user link", { account: unconfirmed, publisher: publisher.id }),
      /has not confirmed its address/,
    );
    await assert.rejects(
      kit.run("portal-user link", { account: EMAIL, publisher: "pub_missing" }),
      /no publisher pub_missing/,
    );
    await assert.rejects(
      kit.run("portal-user link", { account: "nobody@example.com", publisher: publisher.id }),
      /no portal account/,
    );
    const linked = await kit.run("portal-user link", { account: EMAIL, publisher: publisher.id });
    assert.match(linked.message, /acts for Example Apps/);
    assert.equal((await kit.programme.accounts.get(account.id))?.publisherId, publisher.id);
    // By id too; linking again to the same publisher changes nothing.
    await kit.run("portal-user link", { account: account.id, publisher: publisher.id });
    const other = await kit.programme.registry.addPublisher(ADMIN, {
      organisation: "Other Apps",
      contactEmail: "other@example.com",
    });
    await assert.rejects(
      kit.run("portal-user link", { account: EMAIL, publisher: other.id }),
      /already acts for publisher/,
    );
    const links = await kit.storage
      .archive<{ subject: string; after?: { publisherId?: string } }>("audit")
      .query({ kind: "portal-user.link" });
    assert.equal(links.length, 1);
    assert.equal(links[0]!.data.after?.publisherId, publisher.id);
  });
});
