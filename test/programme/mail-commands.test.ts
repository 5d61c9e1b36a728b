/**
 * Mail out of the box, without an SMTP relay: the confirmation link of a sign-up is logged
 * once at info level, `mail list` and `portal-user list --unconfirmed` show it, `mail show`
 * prints the mail, and `mail resend` sends a waiting mail now, a sent one as a copy, and a
 * confirmation whose link no longer works with a new link — each resend in the audit log.
 */
import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import type { AuditRecord } from "../../src/licensing/index.js";
import type { PendingConfirmation } from "../../src/programme/commands.js";
import type { ListedMail, RelayState } from "../../src/programme/mail-commands.js";
import type { ProgrammeLog } from "../../src/programme/mail-worker.js";
import type { PortalAccountView } from "../../src/programme/model.js";
import { ADMIN, eventually, type Kit, PUBLIC_URL, removeTempDirs, startKit } from "./kit.js";

after(removeTempDirs);

class RecordingLog implements ProgrammeLog {
  readonly lines: { level: string; obj: object; msg: string }[] = [];
  info(obj: object, msg: string) {
    this.lines.push({ level: "info", obj, msg });
  }
  warn(obj: object, msg: string) {
    this.lines.push({ level: "warn", obj, msg });
  }
  error(obj: object, msg: string) {
    this.lines.push({ level: "error", obj, msg });
  }
}

const EMAIL = "dev@example.com";
const PASSWORD = "a long password";

describe("mail without an SMTP relay", () => {
  let kit: Kit | undefined;
  afterEach(async () => {
    await kit?.close();
    kit = undefined;
  });

  it("logs the confirmation link once at info level; the link confirms the address", async () => {
    const log = new RecordingLog();
    kit = await startKit({ mail: { smtp: {} }, programme: { log } });
    await kit.programme.accounts.signUp({ email: EMAIL, password: PASSWORD });
    await kit.programme.worker.runOnce();
    await kit.programme.worker.runOnce();
    const logged = log.lines.filter((l) => l.level === "info" && /confirmation link/.test(l.msg));
    assert.equal(logged.length, 1, JSON.stringify(log.lines));
    const m = new RegExp(
      `the confirmation link for ${EMAIL} is (${PUBLIC_URL}/portal/verify\\?token=\\S+)$`,
    ).exec(logged[0]!.msg);
    assert.ok(m, logged[0]!.msg);
    assert.ok(log.lines.some((l) => l.level === "warn" && /no SMTP relay configured/.test(l.msg)));
    const token = new URL(m[1]!).searchParams.get("token")!;
    const account = await kit.programme.accounts.verifyEmail(token);
    assert.equal(account.emailVerified, true);
  });

  it("mail list and portal-user list show the link; mail resend gives a new one once it no longer works", async () => {
    kit = await startKit({ mail: { smtp: {} } });
    await kit.programme.accounts.signUp({ email: EMAIL, password: PASSWORD });
    const list = await kit.run("mail list");
    const data = list.data as { relay: RelayState; mails: ListedMail[] };
    assert.deepEqual(data.relay, { configured: false });
    assert.match(list.message, /^no SMTP relay configured/);
    assert.equal(data.mails.length, 1);
    const first = data.mails[0]!;
    assert.equal(first.status, "queued");
    assert.equal(first.link?.purpose, "verify");
    assert.equal(first.link?.valid, true);
    assert.ok(list.message.includes(first.link!.url), list.message);
    assert.equal("text" in first, false, "the list leaves the texts out");

    const users = await kit.run("portal-user list", { unconfirmed: true });
    const [pending] = (
      users.data as { accounts: (PortalAccountView & { confirmation?: PendingConfirmation })[] }
    ).accounts;
    assert.equal(pending?.email, EMAIL);
    assert.equal(pending?.confirmation?.link?.url, first.link!.url);
    assert.match(users.message, /confirmation link: https:\/\/portal\.example\.net\/portal\/verify\?token=/);

    const shown = await kit.run("mail show", { id: first.id });
    assert.ok(shown.message.includes(first.link!.url));
    assert.match(shown.message, /Confirm your email address|confirm/i);

    // Two days later the link has expired: resending gives a new link.
    kit.clock.advance(49 * 3_600_000);
    const expired = (await kit.run("mail list")).data as { mails: ListedMail[] };
    assert.equal(expired.mails[0]!.link?.valid, false);
    const resent = await kit.run("mail resend", { id: first.id });
    const fresh = (resent.data as { mail: ListedMail }).mail;
    assert.notEqual(fresh.id, first.id);
    assert.equal(fresh.link?.valid, true);
    assert.notEqual(fresh.link?.url, first.link!.url);
    assert.ok(resent.message.includes(fresh.link!.url), resent.message);
    const audit = await kit.storage.archive<AuditRecord>("audit").query({ kind: "mail.resend" });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.data.actor, ADMIN);
    assert.equal(audit[0]!.data.subject, `mail:${first.id}`);
    const token = new URL(fresh.link!.url).searchParams.get("token")!;
    assert.equal((await kit.programme.accounts.verifyEmail(token)).emailVerified, true);
    // Used: the link is no longer valid, and a confirmed account gets no new one.
    const used = (await kit.run("mail list")).data as { mails: ListedMail[] };
    assert.equal(used.mails.find((m) => m.id === fresh.id)?.link?.valid, false);
    await assert.rejects(kit.run("mail resend", { id: fresh.id }), /already confirmed/);
    await assert.rejects(kit.run("mail resend", { id: "mail_nothing" }), /no mail/);
  });
});

describe("mail resend with a relay", () => {
  let kit: Kit | undefined;
  afterEach(async () => {
    await kit?.close();
    kit = undefined;
  });

  it("sends a waiting mail now, forgetting its backoff", async () => {
    kit = await startKit({
      smtpUp: false,
      mail: { retry: { initialDelaySeconds: 600, maxDelaySeconds: 3600 } },
    });
    await kit.programme.accounts.signUp({ email: EMAIL, password: PASSWORD });
    await kit.programme.worker.runOnce();
    const [waiting] = await kit.programme.outbox.pending();
    assert.ok(waiting && waiting.nextAttemptAt > kit.clock.now(), "backing off after the failed attempt");
    const now = await kit.run("mail resend", { id: waiting.id });
    assert.match(now.message, /queued now/);
    const [due] = await kit.programme.outbox.pending();
    assert.equal(due!.nextAttemptAt, kit.clock.now());
    assert.equal(due!.id, waiting.id, "the same mail, not a copy");
  });

  it("sends a mail already sent again, as a copy", async () => {
    kit = await startKit();
    await kit.programme.accounts.signUp({ email: EMAIL, password: PASSWORD });
    await eventually(async () => ((await kit!.programme.outbox.counts()).sent === 1 ? true : undefined));
    const [done] = await kit.programme.outbox.done();
    const copy = await kit.run("mail resend", { id: done!.id });
    assert.match(copy.message, /as a copy/);
    await eventually(() => (kit!.smtp.to(EMAIL).length === 2 ? true : undefined));
    assert.equal(kit.smtp.to(EMAIL)[1]!.text, kit.smtp.to(EMAIL)[0]!.text);
  });
});
