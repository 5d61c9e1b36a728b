/**
 * The OpenAPI 3.1 document is valid JSON, lists every command the API offers with the
 * right method and input schema, resolves every $ref, and matches the routes the server
 * actually answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { allCommands } from "../../src/server/parts.js";
import { type Json, startWebServer, type WebServer } from "./api-kit.js";

function resolveRef(doc: Json, ref: string): unknown {
  assert.ok(ref.startsWith("#/"), `only local refs: ${ref}`);
  return ref
    .slice(2)
    .split("/")
    .reduce((node: Json, part) => (node === undefined ? undefined : node[part]), doc);
}

/** Every $ref anywhere in the document. */
function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refs(n, out);
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

describe("OpenAPI document", () => {
  let web: WebServer;
  let doc: Json;

  before(async () => {
    web = await startWebServer();
    const a = await web.call("GET", "/api/v1/openapi.json");
    assert.equal(a.status, 200);
    assert.match(a.headers.get("content-type") ?? "", /^application\/json/);
    doc = JSON.parse(a.text);
  });
  after(async () => {
    await web?.stop();
  });

  test("is OpenAPI 3.1 with info, paths, security schemes", () => {
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(typeof doc.info.title, "string");
    assert.equal(typeof doc.info.version, "string");
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ["bearerToken", "consoleSession"]);
    assert.equal(doc.servers[0].url, web.base);
  });

  test("lists every server-side command with its method, and no command-line-only one", () => {
    const offered = allCommands.filter((c) => !c.local);
    assert.ok(offered.length >= 30, `${offered.length} commands`);
    for (const def of offered) {
      const p = `/api/v1/${def.name.join("/")}`;
      const ops = doc.paths[p];
      assert.ok(ops, `${p} is missing`);
      const method = def.mutates ? "post" : "get";
      assert.deepEqual(Object.keys(ops), [method], p);
      const op = ops[method];
      assert.equal(op.summary, def.description);
      assert.deepEqual(op.tags, [def.name[0]]);
      for (const status of ["200", "400", "401", "403", "404", "409"])
        assert.ok(op.responses[status], `${p} ${status}`);
      if (def.mutates) {
        const schema = op.requestBody.content["application/json"].schema;
        assert.equal(schema.type, "object");
        for (const arg of def.args) assert.ok(schema.properties[arg.name], `${p}: body property ${arg.name}`);
        // The API refuses any other field.
        assert.equal(schema.additionalProperties, false, `${p}: unknown fields are refused`);
      } else {
        const names = op.parameters.map((x: { name: string }) => x.name);
        for (const arg of def.args) assert.ok(names.includes(arg.name), `${p}: query parameter ${arg.name}`);
      }
    }
    for (const def of allCommands.filter((c) => c.local)) {
      assert.equal(doc.paths[`/api/v1/${def.name.join("/")}`], undefined, `${def.name.join(" ")} is local`);
    }
    const operationIds = Object.values(doc.paths).flatMap((ops) =>
      Object.values(ops as Record<string, { operationId: string }>).map((o) => o.operationId),
    );
    assert.equal(new Set(operationIds).size, operationIds.length, "operationIds are unique");
  });

  test("input schemas carry the constraints of the zod schemas", () => {
    const add = doc.paths["/api/v1/user/add"].post.requestBody.content["application/json"].schema;
    assert.deepEqual(add.required.sort(), ["name", "password"]);
    assert.equal(add.properties.name.minLength, 1);
    assert.equal(add.properties.name.description, "account name (localpart)");
    const list = doc.paths["/api/v1/licence/list"].get.parameters;
    const status = list.find((x: { name: string }) => x.name === "status");
    assert.deepEqual(status.schema.enum, ["active", "suspended", "revoked", "expired", "pending"]);
    assert.equal(status.required, false);
  });

  test("every $ref resolves", () => {
    const all = refs(doc);
    assert.ok(all.length > 50);
    for (const r of new Set(all)) assert.ok(resolveRef(doc, r), `${r} does not resolve`);
  });

  test("every documented operation is served (no 404/405 for the documented method)", async () => {
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) {
        const a = await web.call(method.toUpperCase(), p, method === "post" ? { body: {} } : {});
        assert.ok(a.status !== 404 && a.status !== 405, `${method} ${p} answered ${a.status}`);
      }
    }
  });
});
