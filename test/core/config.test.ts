import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/core/config.js";
import { loadServerConfig } from "../../src/server/config.js";

test("defaults describe a localhost server with TLS required", () => {
  const c = loadServerConfig({});
  assert.equal(c.domain, "localhost");
  assert.equal(c.c2sPort, 5222);
  assert.equal(c.c2sTlsPort, 5223);
  assert.equal(c.allowPlaintext, false);
  assert.equal(c.allowRegistration, false);
  assert.equal(c.limits.maxStanzaBytes, 262144);
  assert.ok(path.isAbsolute(c.dataDir));
});

test("file < environment < command line, and relative dataDir follows the file", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "switchboard.yaml");
  writeFileSync(
    file,
    "domain: file.example\nc2sPort: 1111\ndataDir: ./state\nlimits:\n  maxStanzaBytes: 65536\n",
  );
  const c = loadServerConfig({
    file,
    env: { SWITCHBOARD_C2S_PORT: "2222", SWITCHBOARD_ALLOW_PLAINTEXT: "true" },
    overrides: { c2sPort: 3333, domain: undefined },
  });
  assert.equal(c.domain, "file.example");
  assert.equal(c.c2sPort, 3333);
  assert.equal(c.allowPlaintext, true);
  assert.equal(c.dataDir, path.join(dir, "state"));
  assert.equal(c.limits.maxStanzaBytes, 65536);
  assert.equal(c.limits.authTimeoutSeconds, 30, "unset limits keep their defaults");
});

test("invalid values are refused with the option's path", () => {
  assert.throws(
    () => loadServerConfig({ overrides: { c2sPort: 70000 } }),
    (e: unknown) => e instanceof ConfigError && /c2sPort/.test(e.message),
  );
  assert.throws(
    () => loadServerConfig({ overrides: { limits: { maxStanzaBytes: 5 } } }),
    (e: unknown) => e instanceof ConfigError && /limits\.maxStanzaBytes/.test(e.message),
  );
});

test("a missing or malformed file is a ConfigError", () => {
  assert.throws(() => loadServerConfig({ file: "/nonexistent/switchboard.yaml" }), ConfigError);
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "list.yaml");
  writeFileSync(file, "- a\n- b\n");
  assert.throws(() => loadServerConfig({ file }), ConfigError);
});
