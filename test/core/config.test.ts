import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/core/config.js";
import { loadServerConfig } from "../../src/server/config.js";
import { storageOverride } from "../../src/storage/config.js";
import { describeStorage, storageOptionsFrom } from "../../src/storage/index.js";

test("defaults describe a localhost server with TLS required", () => {
  const c = loadServerConfig({});
  assert.equal(c.domain, "localhost");
  assert.equal(c.c2sPort, 5222);
  assert.equal(c.c2sTlsPort, 5223);
  assert.equal(c.allowPlaintext, false);
  assert.equal(c.allowRegistration, false);
  assert.equal(c.limits.maxStanzaBytes, 262144);
  assert.ok(path.isAbsolute(c.dataDir));
  assert.deepEqual(c.bind, ["127.0.0.1", "::1"], "both loopbacks, so localhost works over IPv4 and IPv6");
});

test("bind: a list in the file, addresses separated by commas on the command line and in the environment", () => {
  assert.deepEqual(loadServerConfig({ overrides: { bind: "127.0.0.1" } }).bind, ["127.0.0.1"]);
  assert.deepEqual(loadServerConfig({ overrides: { bind: " ::1 , 127.0.0.2" } }).bind, ["::1", "127.0.0.2"]);
  assert.deepEqual(loadServerConfig({ env: { SWITCHBOARD_BIND: "0.0.0.0,::" } }).bind, ["0.0.0.0", "::"]);
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "switchboard.yaml");
  writeFileSync(file, "bind:\n  - 127.0.0.1\n  - '::1'\n");
  assert.deepEqual(loadServerConfig({ file }).bind, ["127.0.0.1", "::1"]);
  assert.throws(
    () => loadServerConfig({ overrides: { bind: " , " } }),
    (e: unknown) => e instanceof ConfigError && /bind/.test(e.message),
  );
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

test("storage: SQLite under dataDir by default, a URL names the backend, file < environment < command line", () => {
  const defaults = loadServerConfig({});
  assert.equal(defaults.storage.backend, "sqlite");
  assert.deepEqual(storageOptionsFrom(defaults), {
    backend: "sqlite",
    path: path.join(defaults.dataDir, "switchboard.sqlite"),
    archiveWrites: { delayMs: 0, maxRows: 500, worker: false },
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "switchboard.yaml");
  writeFileSync(file, "storage:\n  url: postgres://sb:pw@db.example:5432/switchboard\n  poolSize: 4\n");
  const fromFile = loadServerConfig({ file });
  assert.equal(fromFile.storage.backend, "postgres", "the URL names the backend");
  assert.deepEqual(storageOptionsFrom(fromFile), {
    backend: "postgres",
    url: "postgres://sb:pw@db.example:5432/switchboard",
    poolSize: 4,
    messageAppends: { queueRows: 5_000, queueBytes: 16 * 1024 * 1024 },
  });
  assert.equal(
    describeStorage(storageOptionsFrom(fromFile)),
    "postgres://sb:***@db.example:5432/switchboard",
  );

  const fromEnv = loadServerConfig({ file, env: { SWITCHBOARD_STORAGE_URL: "sqlite:relative/sb.sqlite" } });
  assert.deepEqual(storageOptionsFrom(fromEnv), {
    backend: "sqlite",
    path: path.resolve("relative/sb.sqlite"),
    archiveWrites: { delayMs: 0, maxRows: 500, worker: false },
  });

  const fromCli = loadServerConfig({
    file,
    env: { SWITCHBOARD_STORAGE_URL: "sqlite:/ignored.sqlite" },
    overrides: { storage: storageOverride("postgresql://other@127.0.0.1/sb") },
  });
  assert.deepEqual(storageOptionsFrom(fromCli), {
    backend: "postgres",
    url: "postgresql://other@127.0.0.1/sb",
    poolSize: 4,
    messageAppends: { queueRows: 5_000, queueBytes: 16 * 1024 * 1024 },
  });
});

test("storage: the PostgreSQL archive append queue's bounds from the file, positive integers only", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "switchboard.yaml");
  writeFileSync(
    file,
    "storage:\n  url: postgres://db/x\n  archiveQueueRows: 200\n  archiveQueueBytes: 1048576\n",
  );
  const opts = storageOptionsFrom(loadServerConfig({ file }));
  assert.deepEqual(opts.backend === "postgres" ? opts.messageAppends : undefined, {
    queueRows: 200,
    queueBytes: 1_048_576,
  });
  for (const [key, value] of [
    ["archiveQueueRows", 0],
    ["archiveQueueRows", 2.5],
    ["archiveQueueRows", "100"],
    ["archiveQueueBytes", -1],
    ["archiveQueueBytes", 0],
  ] as const) {
    assert.throws(
      () => loadServerConfig({ overrides: { storage: { url: "postgres://db/x", [key]: value } } }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`storage.${key}`),
      `${key}: ${JSON.stringify(value)}`,
    );
  }
});

test("storage: archive writes configured from the file (writer thread or main thread, window, batch)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "switchboard.yaml");
  writeFileSync(
    file,
    "storage:\n  archiveWriter: thread\n  archiveWriteDelayMs: 250\n  archiveWriteBatch: 200\n",
  );
  const opts = storageOptionsFrom(loadServerConfig({ file }));
  assert.deepEqual(opts.backend === "sqlite" ? opts.archiveWrites : undefined, {
    delayMs: 250,
    maxRows: 200,
    worker: true,
  });
  writeFileSync(file, "storage:\n  archiveWriter: elsewhere\n");
  assert.throws(() => loadServerConfig({ file }), /archiveWriter/);
});

test("storage: a sqlite: path in a file is relative to the file", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sb-config-"));
  const file = path.join(dir, "switchboard.yaml");
  writeFileSync(file, "storage:\n  backend: sqlite\n  url: sqlite:db/sb.sqlite\n");
  assert.deepEqual(storageOptionsFrom(loadServerConfig({ file })), {
    backend: "sqlite",
    path: path.join(dir, "db", "sb.sqlite"),
    archiveWrites: { delayMs: 0, maxRows: 500, worker: false },
  });
});

test("storage: contradictory or incomplete settings are refused with the option's path", () => {
  const refused = (storage: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(
      () => loadServerConfig({ overrides: { storage } }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      JSON.stringify(storage),
    );
  refused({ backend: "postgres" }, /storage\.url: postgres needs a url/);
  refused({ url: "mysql://db/x" }, /storage\.url: expected sqlite:PATH or postgres:\/\//);
  refused(
    { backend: "sqlite", url: "postgres://db/x" },
    /storage\.backend: is sqlite but the url is postgres/,
  );
  refused({ url: "postgres://db/x", poolSize: 0 }, /storage\.poolSize/);
});

test("hosts: objects with their certificates in a file (paths relative to it), or domain names", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-config-hosts-"));
  const file = path.join(dir, "config.yaml");
  writeFileSync(
    file,
    "domain: public.example\nhosts:\n  - domain: Corp.Example\n    tls: { certFile: certs/corp.crt, keyFile: certs/corp.key }\n  - chat.example\n",
  );
  const c = loadServerConfig({ file });
  assert.equal(c.domain, "public.example");
  assert.deepEqual(c.hosts, [
    {
      domain: "corp.example",
      tls: { certFile: path.join(dir, "certs/corp.crt"), keyFile: path.join(dir, "certs/corp.key") },
    },
    { domain: "chat.example", tls: {} },
  ]);
  assert.deepEqual(loadServerConfig({}).hosts, []);
  assert.deepEqual(
    loadServerConfig({ env: { SWITCHBOARD_HOSTS: "a.example, b.example" } }).hosts.map((h) => h.domain),
    ["a.example", "b.example"],
  );
});
