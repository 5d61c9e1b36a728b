/**
 * Prometheus metrics: the exposition names every family, the figures move when clients
 * connect, log in, send stanzas and fail to authenticate, licence refusals are counted by
 * reason, storage calls are timed, and access is limited (loopback by default, a token
 * when configured).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { licensingApi } from "../../src/modules/licensing/index.js";
import { connectJs, jsLoginFailure } from "../helpers/js-client.js";
import { startWebServer, type WebServer } from "./api-kit.js";

/** The value of one series, e.g. value(text, 'switchboard_sessions'), or undefined. */
function value(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    if (line.slice(0, sp) === series) return Number(line.slice(sp + 1));
  }
  return undefined;
}

const FAMILIES = [
  "nodejs_eventloop_lag_seconds",
  "nodejs_eventloop_lag_p99_seconds",
  "process_cpu_user_seconds_total",
  "switchboard_c2s_connections",
  "switchboard_sessions",
  "switchboard_online_accounts",
  "switchboard_online_accounts_supported",
  "switchboard_client_sessions",
  "switchboard_stanzas_received_total",
  "switchboard_stanzas_sent_total",
  "switchboard_routed_stanzas_total",
  "switchboard_auth_failures_total",
  "switchboard_web_login_failures_total",
  "switchboard_licence_refusals_total",
  "switchboard_licence_proofs_total",
  "switchboard_storage_operation_seconds",
  "switchboard_archive_append_queued_rows",
  "switchboard_archive_append_callers_waiting",
  "switchboard_archive_append_batches_total",
  "switchboard_http_requests_total",
];

describe("metrics", () => {
  let web: WebServer;
  const scrape = async () => {
    const a = await web.call("GET", "/metrics");
    assert.equal(a.status, 200, a.text);
    return a.text;
  };

  before(async () => {
    web = await startWebServer();
    await web.addUser("alice", "alice-password");
  });
  after(async () => {
    await web?.stop();
  });

  test("the exposition format with every metric family", async () => {
    const a = await web.call("GET", "/metrics");
    assert.equal(a.status, 200);
    assert.match(a.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    for (const name of FAMILIES) assert.match(a.text, new RegExp(`^# TYPE ${name} `, "m"), name);
    assert.equal(value(a.text, "switchboard_sessions"), 0);
    // Through the timed storage the HTTP listener wraps, the archive's queue by store.
    assert.equal(value(a.text, 'switchboard_archive_append_queued_rows{store="mam"}'), 0);
  });

  test("figures move when a client logs in, exchanges stanzas and leaves", async () => {
    const before = await scrape();
    const storageCalls =
      value(before, 'switchboard_storage_operation_seconds_count{store="accounts",operation="get"}') ?? 0;
    const alice = await connectJs(web.asTestServer(), {
      user: "alice",
      password: "alice-password",
      resource: "m",
    });
    try {
      await alice.sync(); // an IQ ping: one stanza in, one out
      const during = await scrape();
      assert.equal(value(during, "switchboard_sessions"), 1);
      assert.equal(value(during, "switchboard_online_accounts"), 1);
      // STARTTLS made the connection a TLS one.
      assert.equal(value(during, 'switchboard_c2s_connections{transport="tls"}'), 1);
      assert.equal(value(during, 'switchboard_c2s_connections{transport="tcp"}'), 0);
      assert.equal(value(during, 'switchboard_client_sessions{app="",version="",verification="unknown"}'), 1);
      const inIq = value(during, 'switchboard_stanzas_received_total{kind="iq"}') ?? 0;
      const outIq = value(during, 'switchboard_stanzas_sent_total{kind="iq"}') ?? 0;
      assert.ok(inIq >= 1, `iq in ${inIq}`);
      assert.ok(outIq >= 1, `iq out ${outIq}`);
      const after =
        value(during, 'switchboard_storage_operation_seconds_count{store="accounts",operation="get"}') ?? 0;
      assert.ok(after > storageCalls, "the login read the account: a timed storage call");

      await alice.sync();
      const again = await scrape();
      assert.equal(value(again, 'switchboard_stanzas_received_total{kind="iq"}'), inIq + 1);
    } finally {
      await alice.close();
    }
    // The session is gone once the stream closed.
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = value(await scrape(), "switchboard_sessions") === 0;
      if (!gone) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(gone, "sessions back to 0");
  });

  test("a failed login is counted by SASL condition", async () => {
    const before = value(await scrape(), 'switchboard_auth_failures_total{condition="not-authorized"}') ?? 0;
    const condition = await jsLoginFailure(web.asTestServer(), { user: "alice", password: "wrong" });
    assert.equal(condition, "not-authorized");
    const after = value(await scrape(), 'switchboard_auth_failures_total{condition="not-authorized"}');
    assert.equal(after, before + 1);
  });

  test("licence refusals are counted by reason", async () => {
    const set = await web.call("POST", "/api/v1/policy/set", { token: web.token, body: { mode: "enforce" } });
    assert.equal(set.status, 200, set.text);
    // The module picks the change up within its polling interval; do not wait for it.
    await licensingApi(web.server.services.apis)!.recheck();
    await assert.rejects(
      connectJs(web.asTestServer(), { user: "alice", password: "alice-password" }),
      /login failed/,
    );
    const text = await scrape();
    assert.ok(
      (value(text, 'switchboard_licence_refusals_total{reason="unlicensed-client",stage="login"}') ?? 0) >= 1,
      text
        .split("\n")
        .filter((l) => l.includes("licence_refusals"))
        .join("\n"),
    );
    await web.call("POST", "/api/v1/policy/set", { token: web.token, body: { mode: "open" } });
  });

  test("HTTP requests are counted by route pattern and status", async () => {
    await web.call("GET", "/api/v1/user/list");
    const text = await scrape();
    assert.ok(
      (value(text, 'switchboard_http_requests_total{method="GET",route="/api/v1/user/list",status="401"}') ??
        0) >= 1,
    );
  });
});

describe("metrics access", () => {
  test("loopback only by default: another address (via a trusted proxy) gets 403", async () => {
    const web = await startWebServer({ config: { http: { trustProxy: true } } });
    try {
      assert.equal((await web.call("GET", "/metrics")).status, 200);
      const remote = await web.call("GET", "/metrics", { headers: { "x-forwarded-for": "203.0.113.9" } });
      assert.equal(remote.status, 403);
      assert.equal(remote.json.type, "/problems/forbidden");
    } finally {
      await web.stop();
    }
  });

  test("public: served to every address", async () => {
    const web = await startWebServer({ config: { http: { trustProxy: true, metrics: { public: true } } } });
    try {
      const remote = await web.call("GET", "/metrics", { headers: { "x-forwarded-for": "203.0.113.9" } });
      assert.equal(remote.status, 200);
    } finally {
      await web.stop();
    }
  });

  test("with a token: required from everyone, loopback included", async () => {
    const token = "metrics-scrape-secret-123";
    const web = await startWebServer({ config: { http: { metrics: { token } } } });
    try {
      const none = await web.call("GET", "/metrics");
      assert.equal(none.status, 401);
      assert.match(none.headers.get("www-authenticate") ?? "", /Bearer/);
      assert.equal((await web.call("GET", "/metrics", { token: "wrong-token-of-some-length" })).status, 401);
      const ok = await web.call("GET", "/metrics", { token });
      assert.equal(ok.status, 200);
      assert.match(ok.text, /switchboard_sessions 0/);
    } finally {
      await web.stop();
    }
  });
});
