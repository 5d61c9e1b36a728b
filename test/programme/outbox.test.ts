/**
 * The outbox keeps every mail while the SMTP relay is down and delivers it once the relay is
 * back and the backoff (on the manual clock) has passed; transient refusals are retried,
 * permanent ones are bounces; mails survive a restart.
 */
import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import { LicensingRegistry } from "../../src/licensing/index.js";
import { classifySmtpError, describeSmtpError } from "../../src/programme/mail-transport.js";
import { backoffMs } from "../../src/programme/mail-worker.js";
import { eventually, type Kit, removeTempDirs, startKit } from "./kit.js";

after(removeTempDirs);

const SECOND = 1000;

describe("SMTP failure classification", () => {
  it("tells bounces from transient refusals and relay failures", () => {
    assert.equal(
      classifySmtpError({ code: "EENVELOPE", responseCode: 550, permanent: true, command: "RCPT TO" }),
      "bounce",
    );
    assert.equal(classifySmtpError({ code: "EMESSAGE", responseCode: 554, command: "DATA" }), "bounce");
    assert.equal(
      classifySmtpError({ code: "EENVELOPE", responseCode: 451, permanent: false, command: "RCPT TO" }),
      "retry-mail",
    );
    assert.equal(
      classifySmtpError({ code: "EENVELOPE", responseCode: 503, command: "RCPT TO" }),
      "retry-mail",
    );
    assert.equal(classifySmtpError({ code: "ESOCKET", command: "CONN" }), "retry-server");
    assert.equal(
      classifySmtpError({ code: "EAUTH", responseCode: 535, command: "AUTH PLAIN" }),
      "retry-server",
    );
    assert.equal(
      classifySmtpError({ code: "EENVELOPE", responseCode: 550, command: "MAIL FROM" }),
      "retry-server",
    );
    assert.equal(
      classifySmtpError({ code: "ECONNECTION", responseCode: 421, command: "RCPT TO" }),
      "retry-server",
    );
    assert.equal(
      describeSmtpError({ code: "ESOCKET", message: "connect ECONNREFUSED 127.0.0.1:1" }),
      "ESOCKET: connect ECONNREFUSED 127.0.0.1:1",
    );
    assert.equal(
      describeSmtpError({ code: "EENVELOPE", response: "550 No  such\r\n user" }),
      "550 No such user",
    );
  });

  it("backs off exponentially up to the maximum", () => {
    const retry = { initialDelayMs: 30 * SECOND, maxDelayMs: 3600 * SECOND };
    assert.deepEqual(
      [1, 2, 3, 4, 8, 100].map((n) => backoffMs(n, retry) / SECOND),
      [30, 60, 120, 240, 3600, 3600],
    );
  });
});

describe("outbox", () => {
  let kit: Kit;
  afterEach(async () => {
    await kit.close();
  });

  async function publishers(n: number) {
    const registry = new LicensingRegistry(kit.storage, kit.clock);
    for (let i = 1; i <= n; i++) {
      await registry.addPublisher("cli:ops", {
        organisation: `Publisher ${i}`,
        contactEmail: `p${i}@pub.example`,
      });
    }
  }

  it("keeps mails while the relay is down and delivers them when it is back and the backoff has passed", async () => {
    kit = await startKit({ smtpUp: false });
    await publishers(3);
    const { notice } = await kit.programme.notices.send("console:admin", {
      subject: "Cutoff scheduled",
      body: "Enforcement starts soon.",
      audience: "all",
    });
    const { outbox, worker } = kit.programme;

    // The worker tried (on its own timer), failed, and backs off 30 s on the manual clock.
    const first = await eventually(async () => {
      const pending = await outbox.pending();
      return pending.some((m) => m.attempts === 1 && m.status === "queued") ? pending : undefined;
    });
    assert.equal(first.length, 3, "every mail is still in the outbox");
    const tried = first.find((m) => m.attempts === 1)!;
    assert.match(tried.lastError!, /ECONNREFUSED/);
    assert.equal(tried.nextAttemptAt, kit.clock.now() + 30 * SECOND);
    assert.equal(worker.serverRetryAt, kit.clock.now() + 30 * SECOND);
    assert.ok(
      first.filter((m) => m !== tried).every((m) => m.attempts === 0),
      "the round stopped at the first failure",
    );
    assert.deepEqual((await kit.programme.notices.require(notice.id)).summary.pending, 3);

    // Still down after 30 s: the second failure doubles the wait.
    kit.clock.advance(30 * SECOND);
    const second = await worker.runOnce();
    assert.equal(second.serverRetryAt, kit.clock.now() + 60 * SECOND);

    // The relay comes back; nothing is sent before the backoff has passed on the clock.
    await kit.smtp.start();
    kit.clock.advance(59 * SECOND);
    assert.deepEqual(await worker.runOnce(), {
      sent: 0,
      bounced: 0,
      deferred: 0,
      serverRetryAt: kit.clock.now() + SECOND,
    });
    assert.equal(kit.smtp.mails.length, 0);

    kit.clock.advance(SECOND);
    await kit.smtp.waitFor(3);
    const d = await eventually(async () => {
      const x = await kit.programme.notices.require(notice.id);
      return x.summary.delivered === 3 ? x : undefined;
    });
    assert.ok(
      d.recipients.every((r) => r.emailedAt === kit.clock.now()),
      "emailed when the relay accepted it",
    );
    assert.deepEqual(kit.smtp.mails.map((m) => m.to[0]).sort(), [
      "p1@pub.example",
      "p2@pub.example",
      "p3@pub.example",
    ]);
    const counts = await outbox.counts();
    assert.deepEqual(counts, { queued: 0, sending: 0, sent: 3, bounced: 0 });
    const sent = await outbox.done();
    assert.equal(
      sent.reduce((n, m) => n + m.attempts, 0),
      5,
      "two failed attempts while the relay was down, then one per mail",
    );
  });

  it("mails queued while the relay is down survive a restart", async () => {
    kit = await startKit({ smtpUp: false });
    await publishers(2);
    // Queued by an admin command, as the CLI would (another process: only the outbox knows).
    const { data } = await kit.run("notice send", { subject: "Hello", body: "Text.", audience: "all" });
    const noticeId = (data as { notice: { id: string } }).notice.id;
    await eventually(async () =>
      (await kit.programme.outbox.pending()).some((m) => m.attempts > 0) ? true : undefined,
    );

    const programme = await kit.restart();
    await kit.smtp.start();
    kit.clock.advance(30 * SECOND);
    await programme.worker.runOnce();
    await kit.smtp.waitFor(2);
    const d = await eventually(async () => {
      const x = await programme.notices.require(noticeId);
      return x.summary.delivered === 2 ? x : undefined;
    });
    assert.equal(d.summary.pending, 0);
  });

  it("retries a mail the relay defers with 451, and delivers it later", async () => {
    kit = await startKit();
    await publishers(2);
    kit.smtp.defer.add("p2@pub.example");
    const { notice } = await kit.programme.notices.send("console:admin", {
      subject: "Hi",
      body: "Text.",
      audience: "all",
    });
    await kit.smtp.waitFor(1);
    const deferred = await eventually(async () =>
      (await kit.programme.outbox.pending()).find(
        (m) => m.to === "p2@pub.example" && m.attempts === 1 && m.status === "queued",
      ),
    );
    assert.match(deferred.lastError!, /451 4\.2\.1 Mailbox busy/);
    assert.equal(deferred.nextAttemptAt, kit.clock.now() + 30 * SECOND);
    assert.equal(kit.programme.worker.serverRetryAt, 0, "a deferral is about one mail, not the relay");

    kit.smtp.defer.clear();
    kit.clock.advance(30 * SECOND);
    await kit.programme.worker.runOnce();
    await kit.smtp.waitFor(2);
    const d = await eventually(async () => {
      const x = await kit.programme.notices.require(notice.id);
      return x.summary.delivered === 2 ? x : undefined;
    });
    const p2 = d.recipients.find((r) => r.email === "p2@pub.example")!;
    assert.equal(p2.emailedAt, kit.clock.now());
  });

  it("without a configured relay, mails wait in the outbox", async () => {
    kit = await startKit({ mail: { smtp: {} } });
    await kit.programme.accounts.signUp({ email: "dev@example.com", password: "a long password" });
    assert.deepEqual(await kit.programme.worker.runOnce(), { sent: 0, bounced: 0, deferred: 0 });
    const pending = await kit.programme.outbox.pending();
    assert.equal(pending.length, 1);
    assert.equal(pending[0]!.attempts, 0);
  });

  it("prunes sent mails after keepDays", async () => {
    kit = await startKit({ mail: { keepDays: 7 } });
    await kit.programme.accounts.signUp({ email: "dev@example.com", password: "a long password" });
    await eventually(async () => ((await kit.programme.outbox.counts()).sent === 1 ? true : undefined));
    kit.clock.advance(6 * 86_400_000);
    assert.equal((await kit.programme.housekeeping()).mails, 0);
    kit.clock.advance(2 * 86_400_000);
    assert.equal((await kit.programme.housekeeping()).mails, 1);
    assert.equal((await kit.programme.outbox.counts()).sent, 0);
  });
});
