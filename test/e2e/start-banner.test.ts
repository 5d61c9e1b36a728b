/**
 * Out of the box (`switchboard start` with no mail relay): the banner points at the web
 * front page and says how mail works; a publisher's sign-up leaves its confirmation link in
 * the log (info level), `mail list` gives it too, and the link confirms the address. Started
 * again once accounts exist, the banner no longer asks to create one. Started with a
 * configuration file and a domain, the commands it suggests name them, so that they act on
 * that server's domain and hosts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { cli } from "../helpers/licensed-setup.js";
import { CLI, freePorts, startServer, type TestServer } from "../helpers/server.js";

async function waitForLog(
  server: TestServer,
  pattern: RegExp,
  what: string,
  from = 0,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = pattern.exec(readFileSync(server.logFile, "utf8").slice(from));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`${what} not in the log:\n${server.logTail(40)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A sign-up through the portal's form, as a browser sends it (session cookie and CSRF token). */
async function signUp(base: string, email: string, password: string): Promise<void> {
  const form = await fetch(`${base}/portal/signup`, { headers: { accept: "text/html" } });
  const cookie = form.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await form.text())?.[1];
  assert.ok(csrf, "the form page carries a CSRF token");
  const res = await fetch(`${base}/portal/signup`, {
    method: "POST",
    headers: { cookie, accept: "text/html", "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: csrf, email, password, confirm: password }).toString(),
  });
  assert.equal(res.status, 200, await res.text());
}

describe("switchboard start out of the box", () => {
  let server: TestServer | undefined;
  after(async () => {
    if (server?.running) await server.stop();
  });

  test("the banner, the confirmation link in the log, and a second start with accounts", async () => {
    const [httpPort] = (await freePorts(1)) as [number];
    const base = `http://127.0.0.1:${httpPort}`;
    server = await startServer({
      name: "start-banner",
      extraArgs: ["--http-port", String(httpPort), "--log-level", "info"],
      removeDataOnStop: false,
    });
    const dataDir = server.dataDir;
    const banner = (await waitForLog(server, /Switchboard is serving.*(?:\n {2}.*)+/, "the banner"))[0];
    assert.match(banner, new RegExp(`Web: ${base}/ `));
    assert.match(banner, /Create an account: npx switchboard user add alice/);
    assert.match(banner, /Mail: no SMTP relay \(mail\.smtp\.host\)/);
    assert.match(banner, /Console access: npx switchboard admin grant alice/);
    const front = await fetch(`${base}/`, { headers: { accept: "text/html" } });
    assert.equal(front.status, 200);
    assert.match(await front.text(), /href="\/portal"/);

    const email = "dev@example.com";
    const mark = readFileSync(server.logFile, "utf8").length;
    await signUp(base, email, "a long password");
    const line = await waitForLog(
      server,
      /"msg":"no SMTP relay configured: the confirmation link for dev@example\.com is (http:[^"]+)"/,
      "the confirmation link",
      mark,
    );
    const link = line[1]!;
    assert.ok(link.startsWith(`${base}/portal/verify?token=`), link);
    const logLine = line.input.slice(line.input.lastIndexOf("\n", line.index) + 1, line.index);
    assert.match(logLine, /^\{"level":30,/, "logged at info level");
    const listed = (await cli(server, ["mail", "list"])) as { mails: { link?: { url: string } }[] };
    assert.equal(listed.mails[0]?.link?.url, link, "mail list gives the same link");
    const confirmed = await fetch(link, { redirect: "manual", headers: { accept: "text/html" } });
    assert.equal(confirmed.status, 303);
    assert.match(String(confirmed.headers.get("location")), /\/portal\/login\?email=dev%40example\.com/);
    await server.stop();
    // The CLI works on the data directory of the stopped server.
    await cli(server, ["user", "add", "alice", "--password", "a-long-secret"]);
    await cli(server, ["admin", "grant", "alice"]);
    const restartedAt = readFileSync(server.logFile, "utf8").length;
    server = await startServer({
      name: "start-banner",
      dataDir,
      extraArgs: ["--http-port", String(httpPort)],
      removeDataOnStop: true,
    });
    const second = (
      await waitForLog(server, /Switchboard is serving.*(?:\n {2}.*)+/, "the second banner", restartedAt)
    )[0];
    assert.doesNotMatch(second, /Create an account/);
    assert.match(second, /Accounts: 1 account \(npx switchboard user list/);
    assert.match(second, new RegExp(`Console: log in at ${base}/console as alice`));
  });

  test("the commands the banner suggests carry the server's configuration file and domain", async () => {
    if (server?.running) await server.stop();
    server = await startServer({
      name: "start-banner-config",
      domain: "banner.test",
      config: { hosts: ["corp.banner.test"] },
    });
    const banner = (await waitForLog(server, /Switchboard is serving.*(?:\n {2}.*)+/, "the banner"))[0];
    const line = /Create an account: npx switchboard (user add alice --password 'a-long-secret' (.*))$/m.exec(
      banner,
    );
    assert.ok(line, banner);
    const target = line[2]!;
    assert.match(target, /--config \S+e2e-config\.yaml/);
    assert.match(target, /--domain banner\.test/);
    // Run as printed (no argument holds a space but the quoted password).
    const run = (args: string) => {
      const argv = args.match(/'[^']*'|\S+/g)!.map((a) => a.replace(/^'(.*)'$/, "$1"));
      return spawnSync(process.execPath, [CLI, ...argv], { encoding: "utf8" });
    };
    const alice = run(line[1]!);
    assert.equal(alice.status, 0, alice.stderr);
    assert.match(alice.stdout, /created alice@banner\.test/);
    // The file names the hosts: an account of another served domain needs it.
    const bob = run(`user add bob@corp.banner.test --password 'b-long-secret' ${target}`);
    assert.equal(bob.status, 0, bob.stderr);
    assert.match(bob.stdout, /created bob@corp\.banner\.test/);
    await server.stop();
  });
});
