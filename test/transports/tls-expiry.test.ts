/**
 * A certificate close to its end is logged, once a day per domain until it is renewed: a
 * renewal that failed quietly (an ACME client's cron job) shows in the log, not first in
 * clients' refusals.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { Writable } from "node:stream";
import { after, test } from "node:test";
import { pino } from "pino";
import { loadServerConfig } from "../../src/server/config.js";
import { loadTls } from "../../src/transports/tls.js";
import { TestCa } from "../helpers/test-ca.js";

const ca = new TestCa();
after(() => rmSync(ca.dir, { recursive: true, force: true }));

test("within 14 days of its end: one warning a day per domain; expired: said so", async () => {
  const issued = ca.issue("localhost");
  const lines: { msg: string; domain: string; daysLeft: number }[] = [];
  const log = pino(
    { level: "warn" },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  const config = loadServerConfig({
    overrides: { dataDir: ca.dir, tls: { certFile: issued.certFile, keyFile: issued.keyFile } },
  });
  const material = await loadTls(config, log);
  const end = new Date(new X509Certificate(readFileSync(issued.certFile)).validTo).getTime();
  const HOUR = 3_600_000;

  // 20 days before: nothing (the test CA's certificates last 3 days; the clock is the argument).
  assert.deepEqual(material.warnOfExpiry(end - 20 * 24 * HOUR), []);
  assert.equal(lines.length, 0);
  assert.deepEqual(material.warnOfExpiry(end - 5 * 24 * HOUR), ["localhost"]);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!.msg, /expires soon/);
  assert.equal(lines[0]!.daysLeft, 5);
  // An hour later: still soon, not logged again.
  assert.deepEqual(material.warnOfExpiry(end - 5 * 24 * HOUR + HOUR), ["localhost"]);
  assert.equal(lines.length, 1);
  // A day later: logged again.
  material.warnOfExpiry(end - 4 * 24 * HOUR + HOUR);
  assert.equal(lines.length, 2);
  // Past its end.
  material.warnOfExpiry(end + 25 * HOUR);
  assert.equal(lines.length, 3);
  assert.match(lines[2]!.msg, /has expired/);
  assert.equal(lines[2]!.daysLeft, 0);
});
