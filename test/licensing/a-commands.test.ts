/** The licensing admin commands, run through their definitions (as every face does) on a temp SQLite storage. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  type CommandContext,
  type CommandDefinition,
  CommandError,
  commandErrorOf,
} from "../../src/core/commands.js";
import type { AccessPolicy, AppKey, Licence, Publisher } from "../../src/licensing/index.js";
import { generateKeyPair } from "../../src/licensing/index.js";
import { loadServerConfig } from "../../src/server/config.js";
import { allCommands } from "../../src/server/parts.js";
import { openStorage } from "../../src/storage/index.js";
import { ManualClock } from "../kit/harness.js";

const dir = mkdtempSync(join(tmpdir(), "switchboard-licensing-cmd-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

const DAY = 86_400_000;
const START = Date.UTC(2027, 0, 1);

function find(...name: string[]): CommandDefinition<never> {
  const def = allCommands.find((d) => d.name.join(" ") === name.join(" "));
  assert.ok(def, `no command ${name.join(" ")}`);
  return def;
}

describe("licensing commands", () => {
  let ctx: CommandContext;
  let clock: ManualClock;

  /** Like the CLI: validate the raw input with the definition's schema, then run it. */
  async function run(name: string, raw: Record<string, unknown> = {}) {
    const def = find(...name.split(" "));
    const parsed = def.input.safeParse(raw);
    if (!parsed.success) throw new CommandError(parsed.error.issues.map((i) => i.message).join("; "));
    return def.run(ctx, parsed.data);
  }

  async function statusOf(name: string, raw: Record<string, unknown> = {}): Promise<number> {
    try {
      await run(name, raw);
    } catch (err) {
      const refused = commandErrorOf(err);
      if (refused) return refused.status;
      throw err;
    }
    assert.fail(`${name} ${JSON.stringify(raw)} succeeded`);
  }

  async function setup(): Promise<{ publisher: Publisher; key: ReturnType<typeof generateKeyPair> }> {
    const { data } = await run("publisher add", { organisation: "Example Ltd", email: "dev@example.com" });
    const { publisher } = data as { publisher: Publisher };
    const key = generateKeyPair();
    const file = join(dir, `pub-${++counter}.pub`);
    writeFileSync(file, `${key.publicKey}\n`);
    await run("app register", {
      clientId: "com.example.chat",
      name: "Example Chat",
      publisher: publisher.id,
      platform: ["linux", "android,ios"],
      publicKeyFile: file,
    });
    return { publisher, key };
  }

  beforeEach(async () => {
    clock = new ManualClock(START);
    ctx = {
      config: loadServerConfig({ overrides: { dataDir: dir } }),
      storage: await openStorage({ backend: "sqlite", path: join(dir, `cmd-${++counter}.sqlite`) }),
      clock,
      actor: "cli:tester",
    };
  });
  afterEach(async () => {
    await ctx.storage.close();
  });

  it("are all registered, with unique names", () => {
    const names = allCommands.map((d) => d.name.join(" "));
    assert.equal(new Set(names).size, names.length);
    for (const n of [
      "keygen",
      "publisher add",
      "publisher list",
      "app register",
      "app list",
      "app show",
      "app key add",
      "app key revoke",
      "licence grant",
      "licence suspend",
      "licence revoke",
      "licence reinstate",
      "licence extend",
      "licence list",
      "policy show",
      "policy set",
      "audit list",
    ]) {
      assert.ok(names.includes(n), n);
    }
  });

  it("register an app with its first key, then show it", async () => {
    const { publisher, key } = await setup();
    const shown = await run("app show", { clientId: "com.example.chat" });
    const data = shown.data as { app: { platforms: string[]; publisherId: string }; keys: AppKey[] };
    assert.deepEqual(data.app.platforms, ["android", "ios", "linux"]);
    assert.equal(data.app.publisherId, publisher.id);
    assert.deepEqual(
      data.keys.map((k) => [k.keyId, k.publicKey]),
      [["k1", key.publicKey]],
    );
    assert.match(shown.message, /k1 {2}active/);
    const list = await run("app list", { publisher: publisher.id });
    assert.match(
      list.message,
      /com\.example\.chat {2}Example Chat {2}\[android, ios, linux\] {2}1 active key/,
    );
    assert.equal(await statusOf("app list", { publisher: "pub_nope" }), 404);
    assert.match((await run("publisher list")).message, /Example Ltd <dev@example\.com>/);
  });

  it("rotate keys: add a second, revoke the first, both kept", async () => {
    await setup();
    const k2 = generateKeyPair();
    await run("app key add", { clientId: "com.example.chat", keyId: "k2", publicKey: k2.publicKey });
    clock.advance(1000);
    const revoked = await run("app key revoke", { clientId: "com.example.chat", keyId: "k1" });
    assert.equal((revoked.data as { key: AppKey }).key.revokedAt, START + 1000);
    const keys = ((await run("app show", { clientId: "com.example.chat" })).data as { keys: AppKey[] }).keys;
    assert.deepEqual(
      keys.map((k) => [k.keyId, k.revokedAt]),
      [
        ["k1", START + 1000],
        ["k2", undefined],
      ],
    );
  });

  it("give the right status for bad input (400), unknown things (404) and duplicates (409)", async () => {
    const { publisher, key } = await setup();
    const cases: [string, Record<string, unknown>, number][] = [
      ["publisher add", { organisation: "X", email: "not-an-email" }, 400],
      ["publisher add", { organisation: "EXAMPLE LTD", email: "a@example.com" }, 409],
      ["app register", { clientId: "Bad Id", name: "n", publisher: publisher.id, platform: "web" }, 400],
      ["app register", { clientId: "org.x", name: "n", publisher: "pub_nope", platform: "web" }, 404],
      [
        "app register",
        { clientId: "com.example.chat", name: "n", publisher: publisher.id, platform: "web" },
        409,
      ],
      ["app register", { clientId: "org.x", name: "n", publisher: publisher.id }, 400],
      // The key is checked before anything is written: the app is not left half-registered.
      [
        "app register",
        { clientId: "org.y", name: "n", publisher: publisher.id, platform: "web", publicKey: key.publicKey },
        409,
      ],
      [
        "app register",
        { clientId: "org.y", name: "n", publisher: publisher.id, platform: "web", publicKey: "AAAA" },
        400,
      ],
      [
        "app register",
        { clientId: "org.y", name: "n", publisher: publisher.id, platform: "web", keyId: "k1" },
        400,
      ],
      [
        "app register",
        {
          clientId: "org.y",
          name: "n",
          publisher: publisher.id,
          platform: "web",
          publicKeyFile: join(dir, "none"),
        },
        400,
      ],
      ["app show", { clientId: "org.y" }, 404],
      ["app show", { clientId: "ORG" }, 400],
      [
        "app key add",
        { clientId: "com.example.chat", keyId: "k1", publicKey: generateKeyPair().publicKey },
        409,
      ],
      ["app key add", { clientId: "com.example.chat", keyId: "k5" }, 400],
      ["app key add", { clientId: "com.example.chat", keyId: "k5", publicKey: key.privateKeyPem }, 400],
      ["app key add", { clientId: "org.nope", keyId: "k5", publicKey: generateKeyPair().publicKey }, 404],
      ["app key revoke", { clientId: "com.example.chat", keyId: "k9" }, 404],
      ["licence grant", { clientId: "org.nope" }, 404],
      ["licence grant", { clientId: "com.example.chat", scope: "planet" }, 400],
      ["licence grant", { clientId: "com.example.chat", validUntil: "2027-06-01" }, 400],
      ["licence grant", { clientId: "com.example.chat", validUntil: "2027-06-01T00:00:00" }, 400],
      ["licence grant", { clientId: "com.example.chat", validUntil: "2027-02-30T00:00:00Z" }, 400],
      ["licence grant", { clientId: "com.example.chat", validUntil: "2026-12-31T00:00:00Z" }, 400],
      ["licence grant", { clientId: "com.example.chat", maxSessions: "many" }, 400],
      ["licence grant", { clientId: "com.example.chat", maxSessions: "0" }, 400],
      ["licence suspend", { licenceId: "lic_nope" }, 404],
      ["licence extend", { licenceId: "lic_nope", until: "never" }, 404],
      ["licence list", { status: "lost" }, 400],
      ["licence list", { app: "org.nope" }, 404],
      ["audit list", { since: "yesterday" }, 400],
    ];
    const revision = ((await run("policy show")).data as { revision: number }).revision;
    for (const [name, raw, status] of cases) {
      assert.equal(await statusOf(name, raw), status, `${name} ${JSON.stringify(raw)}`);
    }
    assert.equal(((await run("policy show")).data as { revision: number }).revision, revision);
    assert.equal(((await run("app list")).data as { apps: unknown[] }).apps.length, 1);
  });

  it("manage licences and list them by app and status now", async () => {
    await setup();
    await run("app register", {
      clientId: "org.other",
      name: "Other",
      publisher: ((await run("publisher list")).data as { publishers: Publisher[] }).publishers[0]!.id,
      platform: "web",
    });
    // Licences list in the order they were granted.
    const grant = async (raw: Record<string, unknown>) => {
      clock.advance(1);
      return ((await run("licence grant", raw)).data as { licence: Licence }).licence;
    };
    const a = await grant({
      clientId: "com.example.chat",
      validUntil: "2027-01-02T00:00:00+00:00",
      maxSessions: "5",
      terms: "contract 42",
    });
    assert.equal(a.maxSessions, 5);
    assert.equal(a.validUntil, START + DAY);
    assert.equal(a.validFrom, START + 1);
    const b = await grant({ subject: "IRC.gw.example.", scope: "gateway" });
    assert.equal((b as { domain?: string }).domain, "irc.gw.example");
    const c = await grant({ clientId: "org.other", validFrom: "2027-03-01T01:00:00+01:00" });
    assert.equal(c.validFrom, Date.UTC(2027, 2, 1));

    const ids = async (raw: Record<string, unknown>) =>
      ((await run("licence list", raw)).data as { licences: Licence[] }).licences.map((l) => l.id);
    assert.deepEqual(await ids({}), [a.id, b.id, c.id]);
    assert.deepEqual(await ids({ app: "com.example.chat" }), [a.id]);
    assert.deepEqual(await ids({ subject: "irc.gw.example" }), [b.id]);
    assert.deepEqual(await ids({ subject: "com.example.chat" }), [a.id]);
    assert.deepEqual(await ids({ scope: "gateway" }), [b.id]);
    assert.deepEqual(await ids({ scope: "peering" }), []);
    // A domain licence is named by its domain and scope; apps' options do not apply to it.
    assert.equal(await statusOf("licence grant", { subject: "irc.gw.example" }), 404);
    assert.equal(await statusOf("licence grant", { domain: "irc.gw.example" }), 400);
    assert.equal(await statusOf("licence grant", { subject: "a b", scope: "peering" }), 400);
    assert.equal(
      await statusOf("licence grant", { subject: "x.example", scope: "peering", maxSessions: "2" }),
      400,
    );
    assert.equal(
      await statusOf("licence grant", { subject: "x.example", clientId: "com.example.chat" }),
      400,
    );
    const listed = await run("licence list", { subject: "irc.gw.example" });
    assert.match(listed.message, /irc\.gw\.example {2}gateway {2}active/);
    assert.deepEqual(await ids({ status: "pending" }), [c.id]);
    await run("licence suspend", { licenceId: b.id });
    assert.deepEqual(await ids({ status: "suspended" }), [b.id]);
    clock.advance(DAY);
    assert.deepEqual(await ids({ status: "expired" }), [a.id]);
    assert.deepEqual(await ids({ app: "com.example.chat", status: "active" }), []);
    const extended = await run("licence extend", { licenceId: a.id, until: "2028-01-01T00:00:00Z" });
    assert.match(
      extended.message,
      /active .*until 2028-01-01T00:00:00\.000Z, at most 5 sessions, terms contract 42/,
    );
    assert.deepEqual(await ids({ status: "active" }), [a.id]);
    await run("licence reinstate", { licenceId: b.id });
    await run("licence revoke", { licenceId: b.id });
    assert.equal(await statusOf("licence reinstate", { licenceId: b.id }), 409);
    assert.equal(await statusOf("licence revoke", { licenceId: b.id }), 409);
    assert.deepEqual(await ids({ status: "revoked" }), [b.id]);
    assert.equal((await run("licence extend", { licenceId: a.id, until: "never" })).data !== undefined, true);
    assert.equal(
      (
        (await run("licence list", { app: "com.example.chat", status: "active" })).data as {
          licences: Licence[];
        }
      ).licences[0]?.validUntil,
      undefined,
    );
  });

  it("policy set builds schedules, version rules, URLs and exemptions; policy show tells what applies", async () => {
    await setup();
    const set = (raw: Record<string, unknown>) => run("policy set", raw);
    await set({
      mode: "warn",
      stage: ["2027-01-15T00:00:00Z=enforce@25", "2027-01-10T00:00:00Z=warn,2027-02-01T00:00:00Z=enforce"],
      app: "com.example.chat",
      minVersion: "5.0",
      recommended: "5.1",
      block: ["4.7.0-4.7.3", "4.8"],
      blockReason: "crashes",
      upgradeUrl: "https://example.com/chat/download",
      infoUrl: "https://example.com/clients",
      exempt: ["Support,tester"],
    });
    let shown = await run("policy show");
    let data = shown.data as {
      policy: AccessPolicy;
      effective: { mode: string; stage: unknown };
      next: { at: number } | null;
      cutoff: { at: number } | null;
    };
    assert.deepEqual(
      data.policy.stages.map((s) => [new Date(s.at).toISOString(), s.mode, s.percentage]),
      [
        ["2027-01-10T00:00:00.000Z", "warn", undefined],
        ["2027-01-15T00:00:00.000Z", "enforce", 25],
        ["2027-02-01T00:00:00.000Z", "enforce", undefined],
      ],
    );
    assert.deepEqual(data.policy.apps["com.example.chat"], {
      minVersion: "5.0",
      recommendedVersion: "5.1",
      upgradeUrl: "https://example.com/chat/download",
      blocked: [
        { from: "4.7.0", to: "4.7.3", reason: "crashes" },
        { from: "4.8", to: "4.8", reason: "crashes" },
      ],
    });
    assert.deepEqual(data.policy.exemptions, ["support", "tester"]);
    assert.equal(data.effective.mode, "warn");
    assert.equal(data.effective.stage, null);
    assert.equal(data.next?.at, Date.UTC(2027, 0, 10));
    assert.equal(data.cutoff?.at, Date.UTC(2027, 0, 15));
    assert.match(shown.message, /now +warn \(base mode, no stage in force\)/);
    assert.match(shown.message, /next +warn from 2027-01-10T00:00:00\.000Z/);

    clock.t = Date.UTC(2027, 0, 20);
    shown = await run("policy show");
    data = shown.data as typeof data;
    assert.equal(data.effective.mode, "enforce");
    assert.match(shown.message, /now +enforce \(stage of 2027-01-15T00:00:00\.000Z, 25 % of accounts\)/);
    assert.match(shown.message, /next +enforce from 2027-02-01T00:00:00\.000Z/);
    assert.match(
      shown.message,
      /com\.example\.chat: minimum 5\.0, recommended 5\.1, blocked 4\.7\.0-4\.7\.3 \(crashes\), 4\.8/,
    );

    // Same instant replaces; unblock, none and unexempt remove.
    await set({
      stage: "2027-02-01T00:00:00Z=enforce@75",
      app: "com.example.chat",
      unblock: "4.8",
      recommended: "none",
      unexempt: "TESTER",
      upgradeUrl: "none",
    });
    let policy = ((await run("policy show")).data as { policy: AccessPolicy }).policy;
    assert.deepEqual(policy.stages.at(-1), { at: Date.UTC(2027, 1, 1), mode: "enforce", percentage: 75 });
    assert.deepEqual(policy.apps["com.example.chat"], {
      minVersion: "5.0",
      blocked: [{ from: "4.7.0", to: "4.7.3", reason: "crashes" }],
    });
    assert.deepEqual(policy.exemptions, ["support"]);
    await set({ clearStages: true, upgradeUrl: "https://example.com/upgrade", infoUrl: "none" });
    policy = ((await run("policy show")).data as { policy: AccessPolicy }).policy;
    assert.deepEqual(policy.stages, []);
    await set({ cutoff: "2027-03-01T00:00:00Z" });
    const cutoff = ((await run("policy show")).data as { cutoff: unknown }).cutoff;
    assert.deepEqual(cutoff, { at: Date.UTC(2027, 2, 1), mode: "enforce" });
    assert.equal(await statusOf("policy set", { cutoff: "March" }), 400);
    await set({ clearStages: true });
    assert.equal(policy.upgradeUrl, "https://example.com/upgrade");
    assert.equal(policy.infoUrl, undefined);

    const bad: [Record<string, unknown>, number][] = [
      [{}, 400],
      [{ mode: "closed" }, 400],
      [{ minVersion: "5.0" }, 400],
      [{ block: "1-2" }, 400],
      [{ app: "com.example.chat", blockReason: "x" }, 400],
      [{ app: "org.nope", minVersion: "1" }, 404],
      [{ app: "com.example.chat", minVersion: "1..2" }, 400],
      [{ app: "com.example.chat", minVersion: "v5" }, 400],
      [{ app: "com.example.chat", block: "5-4" }, 400],
      [{ app: "com.example.chat", unblock: "9.9" }, 404],
      [{ app: "com.example.chat", recommended: "4.0" }, 400],
      [{ stage: "2027-03-01T00:00:00Z=shutdown" }, 400],
      [{ stage: "2027-03-01T00:00:00Z=enforce@150" }, 400],
      [{ stage: "2027-03-01T00:00:00=enforce" }, 400],
      [{ stage: "2027-03-01T00:00:00Z=enforce,2027-03-01T00:00:00+00:00=warn" }, 400],
      [{ exempt: "a@b" }, 400],
      [{ unexempt: "nobody" }, 404],
      [{ infoUrl: "javascript:alert(1)" }, 400],
    ];
    for (const [raw, status] of bad)
      assert.equal(await statusOf("policy set", raw), status, JSON.stringify(raw));
  });

  it("record every change in the audit log with the actor, before and after", async () => {
    await setup();
    const { licence } = (await run("licence grant", { clientId: "com.example.chat" })).data as {
      licence: Licence;
    };
    await run("licence suspend", { licenceId: licence.id });
    await run("policy set", { mode: "enforce" });
    const all = await run("audit list");
    const entries = (all.data as { entries: { kind: string; data: { actor: string } }[] }).entries;
    assert.deepEqual(
      entries.map((e) => e.kind),
      ["publisher.add", "app.register", "key.add", "licence.grant", "licence.suspend", "policy.set"],
    );
    assert.ok(entries.every((e) => e.data.actor === "cli:tester"));
    assert.match(
      all.message,
      /licence\.suspend {2}licence:lic_\w+ {2}by cli:tester {2}\(status: "active" → "suspended"\)/,
    );
    assert.match(all.message, /policy\.set {2}policy {2}by cli:tester {2}\(mode: "open" → "enforce"\)/);
    const licences = (await run("audit list", { kind: "licence." })).data as { entries: unknown[] };
    assert.equal(licences.entries.length, 2);
    const policyOnly = (await run("audit list", { subject: "policy" })).data as { entries: unknown[] };
    assert.equal(policyOnly.entries.length, 1);
    const latest = (await run("audit list", { limit: "2" })).data as { entries: { kind: string }[] };
    assert.deepEqual(
      latest.entries.map((e) => e.kind),
      ["licence.suspend", "policy.set"],
    );
  });
});

describe("licensing commands on the command line", () => {
  const bin = fileURLToPath(new URL("../../src/bin/switchboard.js", import.meta.url));
  const exec = promisify(execFile);
  const cli = (...args: string[]) => exec(process.execPath, [bin, ...args], { cwd: dir });

  it("take kebab-case and repeatable options, record the OS user, and keygen opens no storage", async () => {
    const dataDir = join(dir, "cli-data");
    await cli("keygen", "--out", join(dir, "cli.key"));
    assert.equal(existsSync(dataDir), false);
    assert.equal(existsSync(join(dir, "data")), false);
    const common = ["--data-dir", dataDir, "--json"];
    const { stdout } = await cli(
      "publisher",
      "add",
      "--organisation",
      "Org",
      "--email",
      "o@example.org",
      ...common,
    );
    const publisher = (JSON.parse(stdout) as { publisher: Publisher }).publisher;
    await cli(
      "app",
      "register",
      "org.app",
      "--name",
      "App",
      "--publisher",
      publisher.id,
      "--platform",
      "linux",
      "--platform",
      "web",
      "--public-key-file",
      join(dir, "cli.key.pub"),
      ...common,
    );
    const set = await cli(
      "policy",
      "set",
      "--stage",
      "2030-01-01T00:00:00Z=warn",
      "--stage",
      "2031-01-01T00:00:00Z=enforce@10",
      "--app",
      "org.app",
      "--min-version",
      "2.0",
      ...common,
    );
    const policy = (JSON.parse(set.stdout) as { policy: AccessPolicy }).policy;
    assert.equal(policy.stages.length, 2);
    assert.equal(policy.apps["org.app"]?.minVersion, "2.0");
    const audit = await cli("audit", "list", ...common);
    const entries = (JSON.parse(audit.stdout) as { entries: { data: { actor: string } }[] }).entries;
    assert.equal(entries.length, 4);
    assert.ok(entries.every((e) => /^cli:.+/.test(e.data.actor)));
    await assert.rejects(
      cli("app", "show", "org.nope", ...common),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr ?? "", /no app org\.nope/);
        return true;
      },
    );
  });

  it("licence extend takes --valid-until like licence grant; --until still works, with a warning", async () => {
    const common = ["--data-dir", join(dir, "cli-extend"), "--json"];
    await cli("keygen", "--out", join(dir, "extend.key"));
    await cli("publisher", "add", "--organisation", "Org", "--email", "x@example.org", ...common);
    await cli(
      "app",
      "register",
      "org.extend",
      "--name",
      "E",
      "--publisher",
      "x@example.org",
      "--platform",
      "linux",
      "--public-key-file",
      join(dir, "extend.key.pub"),
      ...common,
    );
    const granted = await cli(
      "licence",
      "grant",
      "org.extend",
      "--valid-until",
      "2030-01-01T00:00:00Z",
      ...common,
    );
    const id = (JSON.parse(granted.stdout) as { licence: Licence }).licence.id;
    const renamed = await cli("licence", "extend", id, "--valid-until", "2031-01-01T00:00:00Z", ...common);
    assert.equal(
      (JSON.parse(renamed.stdout) as { licence: Licence }).licence.validUntil,
      Date.UTC(2031, 0, 1),
    );
    assert.equal(renamed.stderr, "");
    const old = await cli("licence", "extend", id, "--until", "2032-01-01T00:00:00Z", ...common);
    assert.equal((JSON.parse(old.stdout) as { licence: Licence }).licence.validUntil, Date.UTC(2032, 0, 1));
    assert.match(old.stderr, /--until is deprecated: use --valid-until/);
    await assert.rejects(
      cli("licence", "extend", id, ...common),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr ?? "", /validUntil: give the new end with --valid-until/);
        return true;
      },
    );
    const help = await cli("licence", "extend", "--help");
    assert.match(help.stdout, /--valid-until <value> +new end/);
    assert.match(help.stdout, /--until <value> +deprecated, the same as --valid-until/);
  });

  it("policy set: --unexempt of an account that is not exempt exits 2 and says so; --clear-stages keeps exemptions", async () => {
    const common = ["--data-dir", join(dir, "cli-policy")];
    await cli("policy", "set", "--exempt", "support", "--stage", "2030-01-01T00:00:00Z=warn", ...common);
    await assert.rejects(
      cli("policy", "set", "--unexempt", "support", "--unexempt", "nobody", ...common),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.equal(
          err.stderr,
          "switchboard: --unexempt nobody: nobody is not exempt, so nothing was changed (exempt accounts: support)\n",
        );
        return true;
      },
    );
    const cleared = await cli("policy", "set", "--clear-stages", ...common, "--json");
    const policy = (JSON.parse(cleared.stdout) as { policy: AccessPolicy }).policy;
    assert.deepEqual(policy.stages, []);
    assert.deepEqual(
      policy.exemptions,
      ["support"],
      "the failed --unexempt changed nothing; --clear-stages kept it",
    );
    const help = await cli("policy", "set", "--help");
    assert.match(
      help.stdout.replace(/\s+/g, " "),
      /--clear-stages remove every stage first \(keeps the base mode, exemptions/,
    );
  });

  it("policy set warns about a schedule that relaxes enforcement; the audit list shows instants in ISO-8601", async () => {
    const common = ["--data-dir", join(dir, "cli-relax")];
    const set = await cli(
      "policy",
      "set",
      "--stage",
      "2030-01-01T00:00:00Z=enforce",
      "--stage",
      "2030-02-01T00:00:00Z=warn",
      ...common,
    );
    assert.match(
      set.stdout,
      /^warning: the stage of 2030-02-01T00:00:00Z \(warn\) relaxes enforcement: accounts in enforce before it go back to warn$/m,
    );
    const shown = await cli("policy", "show", ...common, "--json");
    assert.deepEqual((JSON.parse(shown.stdout) as { warnings: string[] }).warnings, [
      "the stage of 2030-02-01T00:00:00Z (warn) relaxes enforcement: accounts in enforce before it go back to warn",
    ]);
    const tightened = await cli(
      "policy",
      "set",
      "--stage",
      "2030-02-01T00:00:00Z=enforce",
      ...common,
      "--json",
    );
    assert.deepEqual((JSON.parse(tightened.stdout) as { warnings: string[] }).warnings, []);
    const audit = await cli("audit", "list", ...common);
    assert.match(audit.stdout, /stages: \[\{"at":"2030-01-01T00:00:00\.000Z","mode":"enforce"\}/);
    assert.doesNotMatch(audit.stdout, /"at":\d/, "no epoch milliseconds");
  });
});
