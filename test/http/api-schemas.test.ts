/**
 * Every command's `--json` output follows the JSON Schema the server publishes for it at
 * /api/v1/schemas/<command>.json (generated from the command's output schema): each command
 * runs with the CLI beside a running server (those that act on live sessions through the
 * HTTP API), its output validated with a JSON Schema validator against the schemas fetched
 * from that server. Every command must declare an output schema and be run here.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Ajv2020 } from "ajv/dist/2020.js";
import { outputSchema, outputSchemaName } from "../../src/http/api/openapi.js";
import { portalLinkIn } from "../../src/programme/portal-accounts.js";
import { createServices } from "../../src/programme/services.js";
import { allCommands } from "../../src/server/parts.js";
import { storageOptionsFrom } from "../../src/storage/index.js";
import { connectJs, type JsPeer } from "../helpers/js-client.js";
import { NATS_URL, natsSkip } from "../helpers/nats.js";
import { RawConnection } from "../helpers/raw-client.js";
import { CLI, freePorts, REPO_ROOT } from "../helpers/server.js";
import { applicationForm } from "../programme/kit.js";
import { startWebServer, type WebServer } from "./api-kit.js";

const exec = promisify(execFile);

/** Commands that need more than one server to succeed: their output is checked where they run. */
const CHECKED_ELSEWHERE: Record<string, string> = {
  "cluster drain": "test/e2e/cluster-handover.test.ts (two cluster nodes)",
};

describe("published output schemas", () => {
  let web: WebServer;
  let dir: string;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validated = new Set<string>();

  let componentPort: number;

  before(async () => {
    [componentPort] = (await freePorts(1)) as [number];
    web = await startWebServer({ config: { componentPort } });
    dir = mkdtempSync(path.join(os.tmpdir(), "sb-schemas-"));
  });
  after(async () => {
    await web?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `switchboard WORDS… ARGS… --json` on the server's data and validates what it prints. */
  async function runJson(words: string[], args: string[] = []): Promise<Record<string, unknown>> {
    const def = allCommands.find((c) => c.name.join(" ") === words.join(" "));
    assert.ok(def, `no command ${words.join(" ")}`);
    const where = def.local ? [] : ["--data-dir", web.dataDir, "--domain", web.domain];
    const { stdout } = await exec(process.execPath, [CLI, ...words, ...args, ...where, "--json"], {
      cwd: REPO_ROOT,
    });
    return followsSchema(words, JSON.parse(stdout) as Record<string, unknown>, "--json");
  }

  /** Runs a command through the HTTP API (commands that act on live sessions) and validates its data. */
  async function apiJson(
    method: "GET" | "POST",
    words: string[],
    input: Record<string, string> = {},
  ): Promise<Record<string, unknown>> {
    const url = `/api/v1/${words.join("/")}`;
    const res =
      method === "GET"
        ? await web.call("GET", url, { token: web.token, query: input })
        : await web.call("POST", url, { token: web.token, body: input });
    assert.equal(res.status, 200, `${method} ${url}: ${res.text}`);
    return followsSchema(
      words,
      (res.json as { data?: Record<string, unknown> }).data ?? {},
      "the API's data",
    );
  }

  /** Validates a command's result against its published schema (a local command's: generated here). */
  async function followsSchema(
    words: string[],
    data: Record<string, unknown>,
    what: string,
  ): Promise<Record<string, unknown>> {
    const def = allCommands.find((c) => c.name.join(" ") === words.join(" "))!;
    let schema: Record<string, unknown> | undefined;
    if (def.local) {
      schema = outputSchema(def);
    } else {
      const res = await web.call("GET", `/api/v1/schemas/${outputSchemaName(def)}.json`);
      assert.equal(res.status, 200, `the schema of ${words.join(" ")} is published`);
      schema = res.json as Record<string, unknown>;
    }
    assert.ok(schema, `${words.join(" ")} declares an output schema`);
    const validate = ajv.compile({ ...schema, $id: undefined });
    assert.ok(
      validate(data),
      `${words.join(" ")} ${what} does not follow its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(data)}`,
    );
    validated.add(words.join(" "));
    return data;
  }

  test("the licensing and statistics commands' --json output follows the published schemas", async () => {
    const key = path.join(dir, "app.key");
    await runJson(["keygen"], ["--out", key]);
    await runJson(["keygen"], ["--out", `${key}2`]);
    await runJson(["publisher", "add"], ["--organisation", "Example Ltd", "--email", "dev@example.com"]);
    await runJson(["publisher", "list"]);
    await runJson(
      ["app", "register"],
      ["com.example.chat", "--name", "Chat", "--publisher", "dev@example.com", "--platform", "linux"].concat([
        "--key-id",
        "k1",
        "--public-key-file",
        `${key}.pub`,
      ]),
    );
    await runJson(
      ["app", "key", "add"],
      ["com.example.chat", "--key-id", "k2", "--public-key-file", `${key}2.pub`],
    );
    await runJson(["app", "key", "revoke"], ["com.example.chat", "k1"]);
    const granted = await runJson(
      ["licence", "grant"],
      ["com.example.chat", "--valid-until", "2030-01-01T00:00:00Z"],
    );
    const id = (granted.licence as { id: string }).id;
    await runJson(["licence", "grant"], ["peer.example.org", "--scope", "peering"]);
    await runJson(["licence", "suspend"], [id]);
    await runJson(["licence", "reinstate"], [id]);
    await runJson(["licence", "extend"], [id, "--valid-until", "never"]);
    await runJson(["licence", "list"]);
    await runJson(["app", "list"]);
    await runJson(["app", "show"], ["com.example.chat"]);
    await runJson(["licence", "tickets", "rotate"]);
    await runJson(
      ["policy", "set"],
      [
        "--mode",
        "warn",
        "--stage",
        "2030-01-01T00:00:00Z=enforce@25",
        "--stage",
        "2030-02-01T00:00:00Z=open",
      ].concat([
        "--app",
        "com.example.chat",
        "--min-version",
        "2.0",
        "--block",
        "2.1-2.2",
        "--exempt",
        "support",
      ]),
    );
    await runJson(["policy", "show"]);
    await runJson(["licence", "revoke"], [id]);
    await runJson(["audit", "list"], ["--limit", "100"]);
    await runJson(["stats", "clients"]);
  });

  test("the FAST token commands' --json output follows the published schemas", async () => {
    await exec(
      process.execPath,
      [
        CLI,
        "user",
        "add",
        "fastuser",
        "--password",
        "fast-user-pw",
        "--data-dir",
        web.dataDir,
        "--domain",
        web.domain,
      ],
      { cwd: REPO_ROOT },
    );
    const listed = await runJson(["fast", "list"], ["fastuser"]);
    assert.deepEqual(listed.clients, []);
    const revoked = await runJson(["fast", "revoke"], ["fastuser"]);
    assert.equal(revoked.revoked, 0);
  });

  test("the account, session, token, admin, component and link commands' output follows the published schemas", async () => {
    const added = await runJson(["user", "add"], ["ada", "--password", "ada-pw-1"]);
    assert.equal(added.jid, `ada@${web.domain}`);
    const shown = await runJson(["user", "show"], ["ada"]);
    assert.equal(shown.disabled, false);
    assert.deepEqual(await runJson(["user", "passwd"], ["ada", "--password", "ada-pw-2"]), {});
    const file = path.join(dir, "accounts.csv");
    writeFileSync(file, "bea,bea-pw-1\ncyd,cyd-pw-1\nada,ada-pw-3\n");
    const imported = await runJson(["user", "import"], [file]);
    assert.deepEqual([imported.created, imported.skipped], [2, 1]);
    const listed = await runJson(["user", "list"], ["--prefix", "a"]);
    assert.deepEqual(listed.accounts, ["ada"]);

    // Sessions and kicking act on the running server: through the API, with a real client logged in.
    let ada: JsPeer | undefined = await connectJs(web.asTestServer(), {
      user: "ada",
      password: "ada-pw-2",
      resource: "laptop",
    });
    try {
      const sessions = await apiJson("GET", ["user", "sessions"], { name: "ada" });
      assert.equal((sessions.sessions as { resource: string }[])[0]?.resource, "laptop");
      const kicked = await apiJson("POST", ["user", "kick"], { name: "ada", resource: "laptop" });
      assert.equal(kicked.closed, 1);
      await ada.ended;
      ada = undefined;
    } finally {
      await ada?.close();
    }
    const disabled = await runJson(["user", "disable"], ["bea"]);
    assert.deepEqual([disabled.disabled, disabled.closedSessions], [true, 0]);
    await runJson(["user", "enable"], ["bea"]);
    const deleted = await runJson(["user", "delete"], ["cyd"]);
    assert.equal(deleted.disconnectedSessions, 0);

    const token = await runJson(["token", "create"], ["--name", "deploy-bot"]);
    assert.equal(typeof token.token, "string");
    await runJson(["token", "revoke"], ["deploy-bot"]);
    const tokens = (await runJson(["token", "list"])).tokens as { name: string; revokedAt?: string }[];
    assert.ok(tokens.some((t) => t.name === "deploy-bot" && t.revokedAt !== undefined));
    await runJson(["admin", "grant"], ["ada"]);
    const admins = (await runJson(["admin", "list"])).admins as { name: string }[];
    assert.deepEqual(
      admins.map((a) => a.name),
      ["ada"],
    );
    await runJson(["admin", "revoke"], ["ada"]);

    const generated = await runJson(["component", "add"], ["gw.example.org"]);
    assert.equal(typeof generated.secret, "string");
    const secret = "a shared secret of the gateway";
    const given = await runJson(["component", "add"], ["gw.example.org", "--secret", secret]);
    assert.deepEqual(given, { domain: "gw.example.org", replaced: true });
    await runJson(["component", "add"], ["old.example.org"]);
    await runJson(["component", "remove"], ["old.example.org"]);
    const components = (await runJson(["component", "list"])).components as { domain: string }[];
    assert.deepEqual(
      components.map((c) => c.domain),
      ["gw.example.org"],
    );

    // A component attaches: `link list` shows its link (from the API: the running server's own view).
    const link = await RawConnection.connect({ host: "127.0.0.1", port: componentPort, label: "component" });
    try {
      link.write(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' " +
          "xmlns:stream='http://etherx.jabber.org/streams' to='gw.example.org'>",
      );
      const header = await link.waitFor(
        /<stream:stream[^>]*\bid=['"]([^'"]+)['"][^>]*>/,
        "the stream header",
      );
      link.write(
        `<handshake>${createHash("sha1")
          .update(header[1]! + secret)
          .digest("hex")}</handshake>`,
      );
      await link.waitFor(/<handshake\s*\/>|<handshake><\/handshake>/, "the handshake's answer");
      const links = (await apiJson("GET", ["link", "list"])).links as { domain: string }[];
      assert.deepEqual(
        links.map((l) => l.domain),
        ["gw.example.org"],
      );
      await runJson(["link", "list"], ["--kind", "s2s"]);
    } finally {
      link.destroy();
    }
  });

  test("the programme's commands' output follows the published schemas", async () => {
    const { storage, clock, config } = web.server.services;
    const services = createServices({ storage, clock, config });
    const { account } = await services.accounts.signUp({
      email: "dev@example.com",
      password: "a long password",
    });
    assert.ok(account);
    const users = (await runJson(["portal-user", "list"], ["--unconfirmed"])).accounts as {
      confirmation?: { link?: { valid: boolean } };
    }[];
    assert.equal(users[0]?.confirmation?.link?.valid, true);
    const confirmation = (await services.outbox.all()).find((m) => m.ref?.kind === "account")!;
    await services.accounts.verifyEmail(portalLinkIn(confirmation.text)!.token);
    await runJson(["mail", "show"], [confirmation.id]);

    const first = await services.applications.submit(account.id, applicationForm());
    const second = await services.applications.submit(
      account.id,
      applicationForm({
        appName: "Example Gateway",
        scope: "gateway",
        domain: "irc.example.org",
        platforms: "",
      }),
    );
    const queue = (await runJson(["application", "list"], ["--status", "submitted"]))
      .applications as unknown[];
    assert.equal(queue.length, 2);
    await runJson(["application", "show"], [first.id]);
    await runJson(["application", "review"], [first.id]);
    const approved = await runJson(
      ["application", "approve"],
      [first.id, "--client-id", "com.example.portalchat", "--valid-until", "2030-01-01T00:00:00Z"],
    );
    assert.equal((approved.licence as { clientId: string }).clientId, "com.example.portalchat");
    await runJson(["application", "reject"], [second.id, "--reason", "no gateway yet"]);
    // The approval linked the account; linking it again to its publisher answers the same way.
    const publisherId = (await services.accounts.get(account.id))!.publisherId!;
    const linked = await runJson(["portal-user", "link"], ["dev@example.com", "--publisher", publisherId]);
    assert.equal((linked.account as { publisherId: string }).publisherId, publisherId);

    const mails = (await runJson(["mail", "list"], ["--limit", "100"])).mails as { id: string }[];
    assert.ok(mails.length >= 4);
    const resent = await runJson(["mail", "resend"], [mails[0]!.id]);
    assert.ok((resent.relay as { configured: boolean }).configured === false);

    const audience = await runJson(["notice", "audience"], ["--audience", "all"]);
    assert.ok((audience.addressees as unknown[]).length >= 1);
    const sent = await runJson(
      ["notice", "send"],
      ["--subject", "Maintenance", "--body", "The server restarts on Sunday.", "--audience", "all"],
    );
    const noticeId = (sent.notice as { id: string }).id;
    await runJson(["notice", "list"]);
    await runJson(["notice", "show"], [noticeId]);
    const reminded = await runJson(["notice", "remind"], [noticeId]);
    assert.ok((reminded.reminded as unknown[]).length >= 1);
  });

  test("the cluster and storage commands' output follows the published schemas", async () => {
    const [closed] = (await freePorts(1)) as [number];
    const unreachable = await runJson(["cluster", "status"], ["--cluster", `nats://127.0.0.1:${closed}`]);
    assert.equal((unreachable.nats as { ok: boolean }).ok, false);
    assert.equal((unreachable.storage as { ok: boolean }).ok, true);
    if ((await natsSkip()) === false) {
      const reached = await runJson(["cluster", "status"], ["--cluster", NATS_URL]);
      assert.equal((reached.nats as { ok: boolean }).ok, true);
    }

    const source = storageOptionsFrom(web.server.services.config);
    assert.equal(source.backend, "sqlite");
    const copied = await runJson(
      ["storage", "migrate"],
      [
        "--from",
        `sqlite:${(source as { path: string }).path}`,
        "--to",
        `sqlite:${path.join(dir, "copy.sqlite")}`,
      ],
    );
    assert.ok((copied.tables as { accounts: number }).accounts >= 2);
  });

  test("every command declares an output schema, and every one was checked", () => {
    const names = [...new Set(allCommands.map((c) => c.name.join(" ")))]
      .filter((n) => !(n in CHECKED_ELSEWHERE))
      .sort();
    assert.deepEqual(
      allCommands.filter((c) => !c.output).map((c) => c.name.join(" ")),
      [],
      "commands without an output schema",
    );
    assert.deepEqual([...validated].sort(), names, "commands whose output this file did not check");
  });

  test("the OpenAPI document refers to the schemas; the index lists them", async () => {
    const doc = (await web.call("GET", "/api/v1/openapi.json")).json as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const stats = JSON.stringify(doc.paths["/api/v1/stats/clients"]?.get?.responses["200"]);
    assert.match(stats, /#\/components\/schemas\/statsClientsOutput/);
    assert.match(stats, /\/api\/v1\/schemas\/stats-clients\.json/);
    const index = (await web.call("GET", "/api/v1/schemas")).json as {
      schemas: { command: string; href: string }[];
    };
    assert.ok(
      index.schemas.some((s) => s.command === "policy show" && s.href === "/api/v1/schemas/policy-show.json"),
    );
    const missing = await web.call("GET", "/api/v1/schemas/nope.json");
    assert.equal(missing.status, 404);
  });
});
