/**
 * A sender floods a recipient while PostgreSQL takes no archive write (another connection
 * holds a lock every insert into the archive waits for). The server must stop taking the
 * flood once the archive's queue of appends is full — the sender's messages wait, and its
 * connection stops being read — instead of queueing the flood in memory; /metrics shows the
 * wait; once the database lets go, every message is delivered and archived, in order.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { metricValues, sumWhere } from "../helpers/federation.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { RawConnection } from "../helpers/raw-client.js";
import { freePorts, startServer, type TestServer } from "../helpers/server.js";

const MESSAGES = 6000;
const BODY = "x".repeat(4000);
const PW = { alice: "alice-flood-pw", bob: "bob-reader-pw" };
const skip = await postgresSkip();

/** Resident memory of a process, in bytes (Linux). */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const delivered = (c: RawConnection) => c.received.match(/<message /g)?.length ?? 0;

describe("a message flood while PostgreSQL takes no archive write", { skip }, () => {
  let database: TestDatabase;
  let server: TestServer;
  let httpPort: number;
  const opened: RawConnection[] = [];

  before(async () => {
    database = await createTestDatabase("archive_backpressure");
    [httpPort] = (await freePorts(1)) as [number];
    server = await startServer({
      name: "archive-backpressure",
      users: PW,
      storage: database.url,
      // The sender is not slowed by the inbound rate limit: only by the archive.
      extraArgs: ["--http-port", String(httpPort), "--log-level", "info"],
      config: { limits: { bytesPerSecond: 0 } },
    });
  });
  after(async () => {
    for (const c of opened) c.destroy();
    await server?.stop();
    await database?.drop();
  });

  test("waits for the archive instead of queueing the flood, then delivers and archives all of it in order", async (t) => {
    const pid = server.proc.pid!;
    const metrics = `http://${server.host}:${httpPort}/metrics`;
    const bob = await RawConnection.open(server, { label: "bob (reader)" });
    opened.push(bob);
    await bob.login(server, "bob", PW.bob, "r");
    bob.write("<presence/>");
    const alice = await RawConnection.open(server, { label: "alice (sender)" });
    opened.push(alice);
    await alice.login(server, "alice", PW.alice, "flood");
    await sleep(300);
    const atStart = delivered(bob);

    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    let blocking = false;
    try {
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE account_messages IN SHARE MODE");
      blocking = true;
      const before = rssBytes(pid);
      let peak = before;
      const flood = Array.from(
        { length: MESSAGES },
        (_, i) => `<message to='bob@localhost' type='chat' id='m${i}'><body>${i} ${BODY}</body></message>`,
      ).join("");
      alice.write(flood);
      for (let i = 0; i < 30; i++) {
        await sleep(100);
        peak = Math.max(peak, rssBytes(pid));
      }
      const whileHeld = delivered(bob) - atStart;
      const callers = sumWhere(await metricValues(metrics, "switchboard_archive_append_callers_waiting"), {
        store: "mam",
      });
      const queued = sumWhere(await metricValues(metrics, "switchboard_archive_append_queued_rows"), {
        store: "mam",
      });
      const growth = (peak - before) / 1024 / 1024;
      t.diagnostic(
        `while held: ${whileHeld} of ${MESSAGES} delivered, ${queued} rows queued, ${callers} waiting; RSS grew ${growth.toFixed(1)} MiB; ${alice.unsentBytes} bytes unsent by the sender`,
      );
      // The queue holds 16 MiB of rows (about 1,300 of these, two per message): the rest waits.
      assert.ok(whileHeld < MESSAGES / 2, `${whileHeld} messages delivered while the archive took nothing`);
      assert.equal(callers, 1, "the sender's message waits for room");
      // Its connection is not read meanwhile: the flood stays with the sender, not in the server.
      assert.ok(alice.unsentBytes > flood.length / 2, `${alice.unsentBytes} bytes left unread by the server`);
      assert.ok(queued > 0, "rows wait to be written");
      assert.ok(server.running, `the server exited; log:\n${server.logTail()}`);

      await blocker.query("COMMIT");
      blocking = false;
    } finally {
      if (blocking) await blocker.query("ROLLBACK");
      await blocker.end();
    }
    // The server answers an IQ only after everything before it was handled.
    alice.write("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.waitFor(/<iq[^>]*id=['"]sync['"]/, "the answer to a ping sent after the flood", 60_000);
    const deadline = Date.now() + 30_000;
    while (delivered(bob) - atStart < MESSAGES && Date.now() < deadline) await sleep(50);
    const ids = [...bob.received.matchAll(/<message [^>]*id=['"](m\d+)['"]/g)].map((m) => m[1]);
    assert.deepEqual(
      ids,
      Array.from({ length: MESSAGES }, (_, i) => `m${i}`),
      "every message delivered, in order",
    );
    const check = new pg.Client({ connectionString: database.url });
    await check.connect();
    try {
      // The last appends are written after their messages went on.
      const counts = () =>
        check
          .query<{ owner: string; n: number }>(
            "SELECT owner, count(*)::int AS n FROM account_messages GROUP BY owner ORDER BY owner",
          )
          .then((r) => r.rows);
      let rows = await counts();
      while (rows.some((r) => r.n < MESSAGES) && Date.now() < deadline) {
        await sleep(100);
        rows = await counts();
      }
      assert.deepEqual(rows, [
        { owner: "alice", n: MESSAGES },
        { owner: "bob", n: MESSAGES },
      ]);
      const { rows: order } = await check.query<{ text: string }>(
        "SELECT text FROM account_messages WHERE owner = 'bob' ORDER BY seq",
      );
      assert.deepEqual(
        order.map((r) => Number(r.text.split(" ")[0])),
        Array.from({ length: MESSAGES }, (_, i) => i),
        "archived in the order of delivery",
      );
    } finally {
      await check.end();
    }
    const callersAfter = sumWhere(await metricValues(metrics, "switchboard_archive_append_callers_waiting"), {
      store: "mam",
    });
    assert.equal(callersAfter, 0);
  });
});
