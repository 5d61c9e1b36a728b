/**
 * Every command's `--json` output follows the JSON Schema the server publishes for it at
 * /api/v1/schemas/<command>.json (generated from the command's output schema): the
 * licensing and statistics commands run with the CLI beside a running server, their output
 * validated with a JSON Schema validator against the schemas fetched from that server.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Ajv2020 } from "ajv/dist/2020.js";
import { outputSchema, outputSchemaName } from "../../src/http/api/openapi.js";
import { allCommands } from "../../src/server/parts.js";
import { CLI, REPO_ROOT } from "../helpers/server.js";
import { startWebServer, type WebServer } from "./api-kit.js";

const exec = promisify(execFile);

describe("published output schemas", () => {
  let web: WebServer;
  let dir: string;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validated = new Set<string>();

  before(async () => {
    web = await startWebServer();
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
    const data = JSON.parse(stdout) as Record<string, unknown>;
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
      `${words.join(" ")} --json does not follow its schema: ${ajv.errorsText(validate.errors)}\n${stdout}`,
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

  test("every command that declares an output schema was checked, the licensing and statistics ones all do", () => {
    const declared = allCommands.filter((c) => c.output).map((c) => c.name.join(" "));
    assert.deepEqual([...validated].sort(), [...new Set(declared)].sort());
    const licensing = allCommands.filter((c) =>
      ["keygen", "publisher", "app", "licence", "policy", "audit", "stats"].includes(c.name[0]!),
    );
    assert.deepEqual(
      licensing.filter((c) => !c.output).map((c) => c.name.join(" ")),
      [],
      "licensing and statistics commands without an output schema",
    );
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
