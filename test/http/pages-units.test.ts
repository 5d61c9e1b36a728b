/** The pieces under the pages: escaping templates, form components, dry-run storage, rates, form mapping. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { MessageRate } from "../../src/core/message-rate.js";
import { humanize, input, table } from "../../src/http/assets/components.js";
import { safeNext } from "../../src/http/assets/respond.js";
import { dryRunStorage } from "../../src/http/console/dry-run.js";
import { policyInput } from "../../src/http/console/policy-form.js";
import { escapeHtml, html, join, raw } from "../../src/http/html.js";
import { appUsage } from "../../src/http/portal/apps.js";
import type { LiveRow } from "../../src/licensing/index.js";
import { DEFAULT_POLICY } from "../../src/licensing/index.js";
import { openStorage } from "../../src/storage/index.js";

describe("html templates", () => {
  it("escapes every interpolation unless it is SafeHtml", () => {
    const name = `<script>alert("x")</script> & 'co'`;
    assert.equal(
      html`<p title="${name}">${name}</p>`.value,
      `<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;</p>`,
    );
    assert.equal(html`<div>${html`<b>${"<i>"}</b>`}</div>`.value, "<div><b>&lt;i&gt;</b></div>");
    assert.equal(html`${raw("<hr>")}`.value, "<hr>");
    assert.equal(escapeHtml(`a&b<c>"d"'e'`), "a&amp;b&lt;c&gt;&quot;d&quot;&#39;e&#39;");
  });

  it("renders arrays, numbers, and nothing for null, undefined and booleans", () => {
    assert.equal(html`${["<a>", html`<b>`, 3]}`.value, "&lt;a&gt;<b>3");
    assert.equal(html`[${null}${undefined}${false}${true}]`.value, "[]");
    assert.equal(html`${0}`.value, "0");
    assert.equal(join(["<x>", "y"], html`<br>`).value, "&lt;x&gt;<br>y");
  });

  it("carries JSON in an attribute that no value can break out of", () => {
    const data = { label: `"><script>alert(1)</script>`, quote: "'" };
    const out = html`<canvas data-chart="${JSON.stringify(data)}"></canvas>`.value;
    assert.ok(!out.includes("<script>"));
    const attr = /data-chart="([^"]*)"/.exec(out)![1]!;
    const decoded = attr
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
    assert.deepEqual(JSON.parse(decoded), data);
  });
});

describe("form components", () => {
  it("labels inputs and ties errors to them", () => {
    const out = input({
      name: "email",
      label: "Email",
      hint: "We mail you",
      errors: { email: "Bad <address>" },
      value: `"x"`,
    }).value;
    assert.match(out, /<label for="f-email">Email<\/label>/);
    assert.match(out, /aria-describedby="f-email-hint f-email-error"/);
    assert.match(out, /aria-invalid="true"/);
    assert.match(out, /value="&quot;x&quot;"/);
    assert.match(out, /id="f-email-error" data-testid="error-email">Bad &lt;address&gt;</);
    const clean = input({ name: "q", label: "Search" }).value;
    assert.ok(!clean.includes("aria-invalid"));
  });

  it("shows an empty state instead of an empty table", () => {
    const out = table({
      caption: "c",
      head: ["a"],
      rows: [],
      empty: "No applications yet.",
      testid: "t",
    }).value;
    assert.match(out, /data-testid="t-empty"><p>No applications yet\.<\/p>/);
    assert.ok(!out.includes("<table"));
  });

  it("turns service messages into sentences", () => {
    assert.deepEqual(
      humanize(
        { email: "is not a valid email address", password: "the password is short" },
        { email: "Email" },
      ),
      {
        email: "Email is not a valid email address.",
        password: "The password is short.",
      },
    );
  });

  it("keeps next links on the site", () => {
    assert.equal(safeNext("/console/apps?q=x", "/console", "/console"), "/console/apps?q=x");
    for (const bad of [
      "https://evil.example/console",
      "//evil.example/console",
      "/portal",
      "/console\\..\\x",
      42,
    ]) {
      assert.equal(safeNext(bad, "/console", "/console"), "/console", String(bad));
    }
  });
});

describe("dry-run storage", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-dry-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads through, keeps writes to itself, and drops audit appends", async () => {
    const storage = await openStorage({ backend: "sqlite", path: path.join(dir, "db.sqlite") });
    try {
      const docs = storage.documents<number>("x");
      await docs.put("a", 1);
      await docs.put("b", 2);
      const dry = dryRunStorage(storage);
      const overlay = dry.documents<number>("x");
      assert.equal(await overlay.get("a"), 1);
      await overlay.update("a", (v) => (v ?? 0) + 10);
      await overlay.put("c", 3);
      assert.equal(await overlay.delete("b"), true);
      assert.deepEqual(await overlay.list(), [
        { key: "a", value: 11 },
        { key: "c", value: 3 },
      ]);
      assert.equal(await overlay.count(), 2);
      assert.deepEqual(await overlay.list({ limit: 1 }), [{ key: "a", value: 11 }]);
      // Nothing reached the real storage.
      assert.equal(await docs.get("a"), 1);
      assert.equal(await docs.get("b"), 2);
      assert.equal(await docs.get("c"), undefined);
      await dry.archive("audit").append({ at: 1, kind: "k", data: {} });
      assert.equal((await storage.archive("audit").query()).length, 0);
      assert.throws(() => dry.accounts, /not available in a dry run/);
    } finally {
      await storage.close();
    }
  });
});

describe("messages per minute", () => {
  it("is the growth of the counter over the last minute", () => {
    let t = 0;
    let count = 0;
    const rate = new MessageRate(
      () => count,
      () => t,
    );
    rate.sample();
    assert.equal(rate.perMinute(), undefined);
    for (let i = 0; i < 24; i++) {
      t += 5_000;
      count += 10; // 120 per minute
      rate.sample();
    }
    assert.equal(rate.perMinute(), 120);
    t += 5_000;
    count += 60;
    assert.equal(Math.round(rate.perMinute()!), 170);
  });
});

describe("policy editor forms", () => {
  const current = {
    ...DEFAULT_POLICY,
    infoUrl: "https://info.example",
    stages: [{ at: Date.UTC(2030, 0, 1), mode: "warn" as const }],
    apps: { "a.b": { minVersion: "1.0", blocked: [{ from: "0.9", to: "0.9.5" }] } },
    exemptions: ["ops"],
  };

  it("sends only what changed; emptied fields remove the setting", () => {
    assert.deepEqual(
      policyInput("schedule", { mode: "open", infoUrl: "https://info.example", upgradeUrl: "" }, current),
      {},
    );
    assert.deepEqual(
      policyInput(
        "schedule",
        {
          mode: "enforce",
          infoUrl: "",
          stageAt: "2031-02-03T04:05",
          stageMode: "enforce",
          stagePercentage: "25",
        },
        current,
      ),
      {
        mode: "enforce",
        stage: ["2031-02-03T04:05:00Z=enforce@25"],
        infoUrl: "none",
      },
    );
    assert.deepEqual(
      policyInput("schedule", { mode: "open", removeStage: String(Date.UTC(2030, 0, 1)) }, current),
      {
        clearStages: true,
      },
    );
    assert.deepEqual(
      policyInput(
        "app",
        { app: "a.b", minVersion: "2.0", unblock: "0.9-0.9.5", block: "1.1-1.2", blockReason: "crash" },
        current,
      ),
      {
        app: "a.b",
        minVersion: "2.0",
        block: ["1.1-1.2"],
        blockReason: "crash",
        unblock: ["0.9-0.9.5"],
      },
    );
    assert.deepEqual(policyInput("app", { app: "a.b", minVersion: "" }, current), {
      app: "a.b",
      minVersion: "none",
    });
    assert.deepEqual(policyInput("exemptions", { exempt: "alice, bob carol", unexempt: "ops" }, current), {
      exempt: ["alice", "bob", "carol"],
      unexempt: ["ops"],
    });
  });
});

describe("app usage for publishers", () => {
  const row = (
    version: string | null,
    sessions: number,
    status: LiveRow["status"] = "verified",
  ): LiveRow => ({
    clientId: "a.b",
    version,
    platform: "linux",
    status,
    sessions,
    accounts: sessions,
  });

  it("counts verified sessions by version and the share below the minimum", () => {
    const usage = appUsage(
      [
        row("2.0", 6),
        row("1.5", 3),
        row("1.5", 1),
        row(null, 2, "unverified"),
        { ...row("9.9", 5), clientId: "other" },
      ],
      "a.b",
      "2.0",
    );
    assert.equal(usage.sessions, 10);
    assert.deepEqual(
      usage.byVersion.map((r) => [r.version, r.sessions, r.belowMinimum]),
      [
        ["2.0", 6, false],
        ["1.5", 4, true],
      ],
    );
    assert.equal(usage.belowShare, 0.4);
    assert.equal(appUsage(undefined, "a.b").measured, false);
    assert.equal(appUsage([], "a.b").belowShare, null);
  });
});
