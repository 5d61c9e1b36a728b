/**
 * Every error is an RFC 9457 problem document: unknown paths (404), wrong methods (405
 * with Allow), invalid input with the field paths (400), CommandError statuses (404,
 * 409, 400 for a refused value such as a password over the length bound), unreadable
 * bodies (400, 415), and the problem types resolve to a description.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { problemOf, startWebServer, type WebServer } from "./api-kit.js";

describe("problem details", () => {
  let web: WebServer;

  before(async () => {
    web = await startWebServer();
  });
  after(async () => {
    await web?.stop();
  });

  test("404 for an unknown path, with the path as instance", async () => {
    const a = await web.call("GET", "/api/v1/nothing/here?x=1", { token: web.token });
    const p = problemOf(a, 404);
    assert.equal(p.type, "/problems/not-found");
    assert.equal(p.title, "Not found");
    assert.equal(p.instance, "/api/v1/nothing/here");
    problemOf(await web.call("POST", "/no-such-page", { form: { a: "b" } }), 404);
  });

  test("405 with Allow for a known path and another method", async () => {
    const a = await web.call("GET", "/api/v1/user/add", { token: web.token });
    const p = problemOf(a, 405);
    assert.equal(a.headers.get("allow"), "POST");
    assert.deepEqual(p.allow, ["POST"]);
    const b = await web.call("DELETE", "/api/v1/user/list", { token: web.token });
    assert.match(problemOf(b, 405).detail, /DELETE is not allowed/);
    assert.match(b.headers.get("allow") ?? "", /GET/);
  });

  test("400 validation problem listing each invalid field path", async () => {
    const a = await web.call("POST", "/api/v1/user/add", { token: web.token, body: { name: "" } });
    const p = problemOf(a, 400);
    assert.equal(p.type, "/problems/validation-error");
    const paths = p.errors.map((e: { path: string }) => e.path).sort();
    assert.deepEqual(paths, ["name", "password"]);
    for (const e of p.errors) assert.equal(typeof e.message, "string");

    const q = await web.call("GET", "/api/v1/user/list", { token: web.token, query: { limit: "0" } });
    assert.equal(problemOf(q, 400).errors[0].path, "limit");
    const enumValue = await web.call("GET", "/api/v1/licence/list", {
      token: web.token,
      query: { status: "dormant" },
    });
    assert.equal(problemOf(enumValue, 400).errors[0].path, "status");
    const nested = await web.call("POST", "/api/v1/policy/set", { token: web.token, body: { stage: [42] } });
    assert.ok(
      problemOf(nested, 400).errors.some((e: { path: string }) => e.path.startsWith("stage")),
      nested.text,
    );
    // Not an object at all.
    const array = await web.call("POST", "/api/v1/user/add", { token: web.token, body: [1, 2] });
    assert.deepEqual(problemOf(array, 400).errors, [{ path: "", message: "expected an object" }]);
  });

  test("unknown fields are refused with their path, and nothing is changed", async () => {
    const before = await web.call("GET", "/api/v1/policy/show", { token: web.token });
    assert.equal(before.status, 200);
    // `stages` for `stage`: the mode beside it must not be applied either.
    const misspelt = await web.call("POST", "/api/v1/policy/set", {
      token: web.token,
      body: { mode: "enforce", stages: ["2027-01-01T00:00:00Z=enforce"] },
    });
    const p = problemOf(misspelt, 400);
    assert.equal(p.type, "/problems/validation-error");
    assert.deepEqual(
      p.errors.map((e: { path: string }) => e.path),
      ["stages"],
    );
    assert.match(p.errors[0].message, /unknown field: policy set takes .*\bstage\b/);
    const after = await web.call("GET", "/api/v1/policy/show", { token: web.token });
    assert.equal(after.json.data.policy.mode, before.json.data.policy.mode);
    assert.equal(after.json.data.revision, before.json.data.revision);

    const query = await web.call("GET", "/api/v1/licence/list", {
      token: web.token,
      query: { application: "com.example.chat" },
    });
    assert.deepEqual(
      problemOf(query, 400).errors.map((e: { path: string }) => e.path),
      ["application"],
    );
    // The CSRF field of a console session is not a command field.
    const ok = await web.call("GET", "/api/v1/licence/list", {
      token: web.token,
      query: { scope: "client" },
    });
    assert.equal(ok.status, 200);
  });

  test("CommandError statuses: 404 for a missing object, 409 for a conflict, 400 for a refusal", async () => {
    const missing = await web.call("POST", "/api/v1/user/delete", {
      token: web.token,
      body: { name: "ghost" },
    });
    const p404 = problemOf(missing, 404);
    assert.equal(p404.detail, "no account ghost@localhost");

    const body = { name: "twin", password: "twin-password" };
    assert.equal((await web.call("POST", "/api/v1/user/add", { token: web.token, body })).status, 200);
    const again = await web.call("POST", "/api/v1/user/add", { token: web.token, body });
    assert.equal(problemOf(again, 409).type, "/problems/conflict");

    const bad = await web.call("POST", "/api/v1/user/add", {
      token: web.token,
      body: { name: "in valid@", password: "p" },
    });
    assert.match(problemOf(bad, 400).detail, /invalid account name/);
    // The bound of in-band registration (modules.register.maxPasswordLength) applies here too.
    for (const words of ["user/add", "user/passwd"]) {
      const long = await web.call("POST", `/api/v1/${words}`, {
        token: web.token,
        body: { name: "twin", password: "p".repeat(257) },
      });
      const p400 = problemOf(long, 400);
      assert.equal(p400.type, "/problems/bad-request");
      assert.equal(p400.detail, "invalid password: the password must have at most 256 characters");
    }
    const twice = await web.call("POST", "/api/v1/admin/grant", { token: web.token, body: { name: "twin" } });
    assert.equal(twice.status, 200);
    problemOf(
      await web.call("POST", "/api/v1/admin/grant", { token: web.token, body: { name: "twin" } }),
      409,
    );
    problemOf(
      await web.call("POST", "/api/v1/admin/grant", { token: web.token, body: { name: "nobody" } }),
      404,
    );
    problemOf(
      await web.call("POST", "/api/v1/token/revoke", { token: web.token, body: { name: "nope" } }),
      404,
    );
  });

  test("unreadable bodies: malformed JSON 400, unknown content type 415", async () => {
    const malformed = await web.call("POST", "/api/v1/user/add", { token: web.token, body: "{name:" });
    assert.equal(problemOf(malformed, 400).type, "/problems/bad-request");
    const xml = await web.call("POST", "/api/v1/user/add", {
      token: web.token,
      body: "<a/>",
      headers: { "content-type": "application/xml" },
    });
    assert.equal(problemOf(xml, 415).type, "/problems/unsupported-media-type");
  });

  test("commands that need a live session answer 404 when there is none", async () => {
    const a = await web.call("POST", "/api/v1/user/kick", {
      token: web.token,
      body: { name: "twin", resource: "x" },
    });
    assert.match(problemOf(a, 404).detail, /has no live session/);
  });

  test("problem types resolve to a description", async () => {
    const a = await web.call("GET", "/problems/validation-error");
    assert.equal(a.status, 200);
    assert.equal(a.json.type, "/problems/validation-error");
    assert.match(a.json.description, /field path/);
    problemOf(await web.call("GET", "/problems/no-such-type"), 404);
  });

  test("responses carry the security headers", async () => {
    const a = await web.call("GET", "/api/v1/health");
    assert.equal(a.status, 200);
    assert.equal(a.json.status, "ok");
    assert.equal(a.headers.get("x-content-type-options"), "nosniff");
    assert.equal(a.headers.get("x-frame-options"), "DENY");
    assert.match(a.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  });
});
