/**
 * Notices to all / one / affected publishers with per-recipient delivery, reading and
 * acknowledgement, reminders, and bounces, against a real local SMTP server.
 */
import assert from "node:assert/strict";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import type { LiveRow, Publisher } from "../../src/licensing/index.js";
import { LicensingRegistry, writeLiveSnapshot } from "../../src/licensing/index.js";
import { ProgrammeError } from "../../src/programme/errors.js";
import type { NoticeRecipient } from "../../src/programme/model.js";
import type { NoticeDetail } from "../../src/programme/notices.js";
import { ADMIN, eventually, type Kit, PUBLIC_URL, removeTempDirs, startKit } from "./kit.js";
import { linkIn } from "./smtp-sink.js";

after(removeTempDirs);

const DAY = 86_400_000;

describe("notices", () => {
  let kit: Kit;
  let registry: LicensingRegistry;
  let pubs: Publisher[];

  beforeEach(async () => {
    kit = await startKit();
    registry = new LicensingRegistry(kit.storage, kit.clock);
    pubs = [];
    for (const [n, org] of ["Alpha Apps", "Beta Soft", "Gamma Labs"].entries()) {
      const p = await registry.addPublisher("cli:ops", {
        organisation: org,
        contactEmail: `team${n + 1}@pub.example`,
      });
      pubs.push(p);
      const clientId = `com.${org.split(" ")[0]!.toLowerCase()}.chat`;
      await registry.registerApp("cli:ops", {
        clientId,
        name: `${org.split(" ")[0]} Chat`,
        publisherId: p.id,
        platforms: ["linux"],
      });
      await registry.grantLicence("cli:ops", { clientId, scope: "client" });
    }
  });
  afterEach(async () => {
    await kit.close();
  });

  const detail = (id: string) => kit.programme.notices.require(id);
  const byOrg = (d: NoticeDetail, org: string) => d.recipients.find((r) => r.organisation === org)!;

  async function delivered(id: string, count: number): Promise<NoticeDetail> {
    return eventually(async () => {
      const d = await detail(id);
      return d.summary.delivered + d.summary.bounced >= count ? d : undefined;
    });
  }

  it("goes to all publishers, each tracked: emailed, delivered, read, acknowledged", async () => {
    const { notice, recipients } = await kit.programme.notices.send(ADMIN, {
      subject: "Enforcement starts on 15 February",
      body: "From 15 February 2027, clients without a licence proof are refused.\nPlease ship an update.",
      audience: "all",
    });
    assert.equal(recipients.length, 3);
    assert.ok(recipients.every((r) => r.delivery === "pending" && r.emailedAt === undefined));
    const d = await delivered(notice.id, 3);
    assert.deepEqual(d.summary, {
      recipients: 3,
      delivered: 3,
      bounced: 0,
      pending: 0,
      read: 0,
      acknowledged: 0,
    });
    assert.ok(d.recipients.every((r) => r.emailedAt === kit.clock.now()));

    await kit.smtp.waitFor(3);
    assert.deepEqual(kit.smtp.mails.map((m) => m.to[0]).sort(), [
      "team1@pub.example",
      "team2@pub.example",
      "team3@pub.example",
    ]);
    const mail = kit.smtp.to("team2@pub.example")[0]!;
    assert.equal(mail.subject, "[chat.example.net] Enforcement starts on 15 February");
    assert.match(mail.text, /clients without a licence proof are refused\.\nPlease ship an update\./);
    assert.equal(linkIn(mail, `/portal/notices/${notice.id}`).origin, PUBLIC_URL);
    assert.match(mail.headers.get("message-id") ?? "", /^<mail_[0-9a-z]+@chat\.example\.net>$/);

    kit.clock.advance(3_600_000);
    const read = await kit.programme.notices.markRead(notice.id, pubs[0]!.id);
    assert.equal(read.readAt, kit.clock.now());
    kit.clock.advance(60_000);
    const ack = await kit.programme.notices.acknowledge(notice.id, pubs[0]!.id, "portal:pu_x");
    assert.deepEqual(
      [ack.readAt, ack.acknowledgedAt, ack.acknowledgedBy],
      [read.readAt, kit.clock.now(), "portal:pu_x"],
    );
    // Acknowledging twice keeps the first instant.
    kit.clock.advance(60_000);
    assert.equal(
      (await kit.programme.notices.acknowledge(notice.id, pubs[0]!.id, "portal:pu_y")).acknowledgedAt,
      ack.acknowledgedAt,
    );

    const inbox = await kit.programme.notices.forPublisher(pubs[0]!.id);
    assert.deepEqual(
      inbox.map((e) => [e.notice.id, e.recipient.acknowledgedAt]),
      [[notice.id, ack.acknowledgedAt]],
    );
    await assert.rejects(
      kit.programme.notices.acknowledge(notice.id, "pub_unknown", "x"),
      (e: unknown) => e instanceof ProgrammeError && e.refusal === "not-found",
    );

    const shown = await kit.run("notice show", { id: notice.id });
    assert.match(shown.message, /3 recipients: 3 delivered, 0 bounced, 0 pending; 1 read, 1 acknowledged/);
    assert.match(
      shown.message,
      /Alpha Apps \(pub_[0-9a-f]+\) <team1@pub\.example>\n {2}emailed 2027-01-04T09:00:00\.000Z {2}delivered/,
    );
    const listed = await kit.run("notice list");
    assert.match(listed.message, /Enforcement starts on 15 February\n {2}3 recipients/);
  });

  it("goes to one publisher", async () => {
    const sent = await kit.run("notice send", {
      subject: "Your key k1 is about to be revoked",
      body: "Rotate to a new key before Friday.",
      audience: `publisher:${pubs[1]!.id}`,
    });
    const d = sent.data as NoticeDetail;
    assert.deepEqual(
      d.recipients.map((r) => r.email),
      ["team2@pub.example"],
    );
    await delivered(d.notice.id, 1);
    await kit.smtp.waitFor(1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      kit.smtp.mails.map((m) => m.to),
      [["team2@pub.example"]],
    );
    await assert.rejects(
      kit.run("notice send", { subject: "s", body: "b", audience: "publisher:pub_00000000" }),
      (e: unknown) => e instanceof ProgrammeError && e.refusal === "not-found",
    );
    await assert.rejects(
      kit.run("notice send", { subject: "s", body: "b", audience: "everyone" }),
      /audience/,
    );
  });

  it("goes to the publishers a policy change affects, saying why", async () => {
    const [alpha, beta, gamma] = pubs;
    // A fourth publisher whose app has no licence.
    const delta = await registry.addPublisher("cli:ops", {
      organisation: "Delta Co",
      contactEmail: "ops@delta.example",
    });
    await registry.registerApp("cli:ops", {
      clientId: "com.delta.chat",
      name: "Delta Chat",
      publisherId: delta.id,
      platforms: ["ios"],
    });
    // Beta's licence ends before the cutoff that change 2 schedules.
    const betaLicence = (await registry.snapshot()).licences.get("com.beta.chat")![0]!;
    await registry.extendLicence("cli:ops", betaLicence.id, kit.clock.now() + 10 * DAY);

    // Live sessions of the servers: Alpha 1.5 (verified), Gamma's app without proofs (XEP-0092 name).
    const rows: LiveRow[] = [
      {
        clientId: "com.alpha.chat",
        version: "1.5",
        platform: "linux",
        status: "verified",
        sessions: 3,
        accounts: 3,
      },
      {
        clientId: "com.alpha.chat",
        version: "2.1",
        platform: "linux",
        status: "verified",
        sessions: 5,
        accounts: 5,
      },
      {
        clientId: "Gamma Chat",
        version: "0.9",
        platform: null,
        status: "unverified",
        sessions: 4,
        accounts: 2,
      },
    ];
    await writeLiveSnapshot(kit.storage, {
      nodeId: "node-1",
      at: kit.clock.now(),
      revision: 1,
      sessions: 12,
      accounts: 10,
      rows,
      supported: { accounts: 10, supportedAccounts: 8, share: 0.8 },
      cutoff: {
        at: kit.clock.now(),
        sessions: 0,
        accounts: 0,
        rows: [],
        spared: { exempt: { sessions: 0, accounts: 0 }, rollout: { sessions: 0, accounts: 0 } },
      },
    });

    // Change 1: Alpha's minimum version rises to 2.0, Beta's 1.0–1.5 become blocked.
    await registry.setPolicy("cli:ops", (p) => ({
      ...p,
      apps: {
        "com.alpha.chat": { minVersion: "2.0" },
        "com.beta.chat": { blocked: [{ from: "1.0", to: "1.5" }] },
      },
    }));
    const change1 = (await registry.audit({ kind: "policy.set" })).at(-1)!.id;
    // Change 2: enforcement for everyone in 30 days.
    await registry.setPolicy("cli:ops", (p) => ({
      ...p,
      stages: [{ at: kit.clock.now() + 30 * DAY, mode: "enforce" }],
    }));

    const audience1 = await kit.run("notice audience", {
      audience: "affected",
      policyChange: String(change1),
    });
    const a1 = audience1.data as { addressees: { publisher: Publisher; reasons: string[] }[] };
    assert.deepEqual(
      a1.addressees.map((a) => [a.publisher.id, a.reasons]),
      [
        [
          alpha!.id,
          [
            "Alpha Chat (com.alpha.chat): minimum version set to 2.0; 3 live session(s) run versions the new policy refuses",
          ],
        ],
        [beta!.id, ["Beta Chat (com.beta.chat): versions 1.0 to 1.5 blocked"]],
      ],
    );

    // Without an id: the latest change (the enforcement stage).
    const sent = await kit.run("notice send", {
      subject: "Licences are required from next month",
      body: "Enforcement starts in 30 days.",
      audience: "affected",
    });
    const d = sent.data as NoticeDetail;
    assert.deepEqual(d.notice.policyChange?.auditId, change1 + 1);
    assert.deepEqual(
      d.recipients.map((r) => [r.organisation, r.reasons]),
      [
        [
          "Beta Soft",
          ["Beta Chat (com.beta.chat): the licence expires before enforcement starts 2027-02-03 09:00 UTC"],
        ],
        [
          "Delta Co",
          ["Delta Chat (com.delta.chat): no client licence, and enforcement starts 2027-02-03 09:00 UTC"],
        ],
        [
          "Gamma Labs",
          ["Gamma Chat (com.gamma.chat): 4 live session(s) run the app without a licence proof"],
        ],
      ],
    );
    const done = await delivered(d.notice.id, 3);
    assert.equal(done.summary.delivered, 3);
    await kit.smtp.waitFor(3);
    const mail = kit.smtp.to("ops@delta.example")[0]!;
    assert.match(
      mail.text,
      /Why you receive this notice:\n {2}- Delta Chat \(com\.delta\.chat\): no client licence/,
    );
    assert.equal(
      kit.smtp.to("team1@pub.example").length,
      0,
      "Alpha is not affected by the enforcement stage",
    );
    assert.equal(gamma!.contactEmail, "team3@pub.example");

    // A change that tightens nothing affects no one.
    await registry.setPolicy("cli:ops", (p) => ({ ...p, infoUrl: "https://chat.example.net/clients" }));
    await assert.rejects(
      kit.run("notice send", { subject: "s", body: "b", audience: "affected" }),
      /affects no publisher/,
    );
  });

  it("reminds only those who have not acknowledged", async () => {
    const { notice } = await kit.programme.notices.send(ADMIN, {
      subject: "New terms",
      body: "Please accept the new terms.",
      audience: "all",
    });
    await delivered(notice.id, 3);
    await kit.programme.notices.acknowledge(notice.id, pubs[0]!.id, "portal:pu_a");
    await kit.programme.notices.markRead(notice.id, pubs[1]!.id);
    kit.clock.advance(7 * DAY);

    const first = await kit.run("notice remind", { id: notice.id });
    assert.match(first.message, /reminded 2 publishers: Beta Soft, Gamma Labs/);
    await kit.smtp.waitFor(5);
    const reminders = kit.smtp.mails.slice(3);
    assert.deepEqual(reminders.map((m) => m.to[0]).sort(), ["team2@pub.example", "team3@pub.example"]);
    assert.equal(reminders[0]!.subject, "Reminder: [chat.example.net] New terms");
    assert.match(reminders[0]!.text, /We sent you the notice below on 2027-01-04 09:00 UTC/);

    const after1 = await eventually(async () => {
      const d = await detail(notice.id);
      return d.recipients.every((r) => r.reminders.every((m) => m.delivery === "delivered")) ? d : undefined;
    });
    const beta = byOrg(after1, "Beta Soft");
    assert.equal(beta.remindersSent, 1);
    assert.equal(beta.lastReminderAt, kit.clock.now());
    assert.equal(beta.reminders[0]!.emailedAt, kit.clock.now());
    assert.equal(byOrg(after1, "Alpha Apps").remindersSent, 0);

    await kit.programme.notices.acknowledge(notice.id, pubs[1]!.id, "portal:pu_b");
    const second = await kit.programme.notices.remind(notice.id, ADMIN);
    assert.deepEqual(
      second.map((r: NoticeRecipient) => r.organisation),
      ["Gamma Labs"],
    );
    assert.equal(second[0]!.remindersSent, 2);
    await kit.smtp.waitFor(6);
    assert.deepEqual(kit.smtp.mails[5]!.to, ["team3@pub.example"]);

    const info = await kit.programme.notices.send(ADMIN, {
      subject: "Maintenance",
      body: "Sunday 02:00 UTC.",
      audience: "all",
      requiresAck: false,
    });
    await assert.rejects(
      kit.programme.notices.remind(info.notice.id, ADMIN),
      /does not ask for acknowledgement/,
    );
  });

  it("records a bounce when the relay refuses a recipient with 550, and does not retry it", async () => {
    kit.smtp.reject.add("team3@pub.example");
    const { notice } = await kit.programme.notices.send(ADMIN, {
      subject: "Hello",
      body: "Text.",
      audience: "all",
    });
    const d = await delivered(notice.id, 3);
    assert.deepEqual(d.summary, {
      recipients: 3,
      delivered: 2,
      bounced: 1,
      pending: 0,
      read: 0,
      acknowledged: 0,
    });
    const gamma = byOrg(d, "Gamma Labs");
    assert.equal(gamma.delivery, "bounced");
    assert.equal(gamma.bouncedAt, kit.clock.now());
    assert.match(gamma.deliveryError!, /550 5\.1\.1 No such mailbox/);
    assert.equal(gamma.emailedAt, undefined);

    const mail = await kit.programme.outbox.get(gamma.mailId);
    assert.equal(mail?.status, "bounced");
    assert.equal(mail?.attempts, 1);
    kit.clock.advance(DAY);
    await kit.programme.worker.runOnce();
    assert.equal((await kit.programme.outbox.get(gamma.mailId))?.attempts, 1, "a bounce is final");
    assert.equal((await kit.programme.outbox.counts()).bounced, 1);
    assert.match(
      (await kit.run("notice show", { id: notice.id })).message,
      /bounced \(550 5\.1\.1 No such mailbox\)/,
    );
  });
});
