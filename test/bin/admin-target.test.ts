/**
 * The options the start banner gives its admin commands: they name the server's
 * configuration file, its domain when that came from elsewhere, and its storage, and a
 * storage URL whose password the banner hides is never printed in a command.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { adminTarget, type StartedWith } from "../../src/bin/admin-target.js";

const cwd = "/srv/chat";
const plain: StartedWith = { configFile: undefined, domainGiven: false, storageGiven: false };
const sqlite = { domain: "localhost", dataDir: "/srv/chat/data", storage: {} };

describe("the start banner's admin command options", () => {
  test("npm start: the data directory, relative to where the server runs", () => {
    assert.equal(adminTarget(sqlite, plain, cwd), "--data-dir data");
    assert.equal(adminTarget({ ...sqlite, dataDir: "/var/lib/sb" }, plain, cwd), "--data-dir /var/lib/sb");
  });

  test("a configuration file is named, and a domain given beside it", () => {
    const fromFile = { ...plain, configFile: "switchboard.yaml" };
    assert.equal(
      adminTarget({ ...sqlite, domain: "chat.example" }, fromFile, cwd),
      "--config switchboard.yaml --data-dir data",
    );
    assert.equal(
      adminTarget({ ...sqlite, domain: "chat.example" }, { ...fromFile, domainGiven: true }, cwd),
      "--config switchboard.yaml --domain chat.example --data-dir data",
    );
    assert.equal(
      adminTarget({ ...sqlite, domain: "chat.example" }, plain, cwd),
      "--domain chat.example --data-dir data",
    );
  });

  test("a storage URL is printed only when it holds no password", () => {
    const pg = (url: string) => ({ ...sqlite, storage: { url } });
    const given = { ...plain, storageGiven: true };
    assert.equal(adminTarget(pg("postgres://sb@db/sb"), given, cwd), "--storage 'postgres://sb@db/sb'");
    const secret = adminTarget(pg("postgres://sb:s3cret@db/sb"), given, cwd);
    assert.equal(secret, `--storage "$SWITCHBOARD_STORAGE_URL"`);
    assert.doesNotMatch(secret, /s3cret|\*\*\*/);
    // From the file: the file names it (a relative sqlite: path is relative to the file).
    const fromFile = { ...plain, configFile: "/etc/sb/sb.yaml" };
    assert.equal(adminTarget(pg("postgres://sb:s3cret@db/sb"), fromFile, cwd), "--config /etc/sb/sb.yaml");
    assert.equal(adminTarget(pg("sqlite:state/sb.sqlite"), fromFile, cwd), "--config /etc/sb/sb.yaml");
  });
});
