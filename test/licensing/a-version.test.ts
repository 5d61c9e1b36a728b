import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compareVersions,
  formatVersionRange,
  inRange,
  isValidVersion,
  parseVersion,
  parseVersionRange,
  VersionError,
} from "../../src/licensing/index.js";

describe("versions: syntax", () => {
  const valid = ["0", "5", "5.0", "5.0.1", "4.7.2009", "1.2.3.4.5.6.7.8", "999999999", "007.01"];
  const invalid = [
    "",
    " ",
    "1..2",
    ".1",
    "1.",
    "v1",
    "1.a",
    "-1",
    "1.-2",
    "+1",
    "1.2.3.4.5.6.7.8.9",
    "1234567890",
    "1.0000000000",
    " 1.0",
    "1.0 ",
    "1,0",
    "1e3",
    "１.０",
    "1.2-beta",
  ];
  for (const v of valid) {
    it(`accepts ${JSON.stringify(v)}`, () => {
      assert.equal(isValidVersion(v), true);
      assert.equal(parseVersion(v).length, v.split(".").length);
    });
  }
  for (const v of invalid) {
    it(`refuses ${JSON.stringify(v)}`, () => {
      assert.equal(isValidVersion(v), false);
      assert.throws(() => parseVersion(v), VersionError);
      assert.throws(() => compareVersions(v, "1"), VersionError);
      assert.throws(() => compareVersions("1", v), VersionError);
    });
  }
  it("parses into numbers", () => {
    assert.deepEqual(parseVersion("4.7.2009"), [4, 7, 2009]);
    assert.deepEqual(parseVersion("007.01"), [7, 1]);
  });
});

describe("versions: comparison", () => {
  // [a, b, compare(a, b)]
  const table: [string, string, -1 | 0 | 1][] = [
    ["4.7.2009", "5.0", -1],
    ["5.0", "5.0.1", -1],
    ["4.7.2009", "5.0.1", -1],
    ["5", "5.0", 0],
    ["5", "5.0.0.0", 0],
    ["5.0.0", "5", 0],
    ["5.1", "5.01", 0],
    ["5.10", "5.9", 1],
    ["5.0.1", "5", 1],
    ["10", "9.99.99", 1],
    ["1.2.3.4.5.6.7.8", "1.2.3.4.5.6.7.9", -1],
    ["999999999", "999999998.999999999", 1],
    ["0", "0.0.0.1", -1],
  ];
  for (const [a, b, expected] of table) {
    it(`${a} vs ${b} → ${expected}`, () => {
      assert.equal(compareVersions(a, b), expected);
      assert.equal(compareVersions(b, a), -expected || 0);
    });
  }
  it("sorts consistently", () => {
    const sorted = ["5.0.1", "4.7.2009", "5", "4.10", "4.7.2010", "0.9"].sort(compareVersions);
    assert.deepEqual(sorted, ["0.9", "4.7.2009", "4.7.2010", "4.10", "5", "5.0.1"]);
  });
});

describe("versions: ranges", () => {
  it("are inclusive at both ends", () => {
    const r = { from: "4.7", to: "4.7.3" };
    assert.equal(inRange("4.7", r), true);
    assert.equal(inRange("4.7.0", r), true);
    assert.equal(inRange("4.7.2", r), true);
    assert.equal(inRange("4.7.3", r), true);
    assert.equal(inRange("4.7.3.0", r), true);
    assert.equal(inRange("4.7.3.1", r), false);
    assert.equal(inRange("4.6.99", r), false);
    assert.equal(inRange("5", r), false);
  });
  it("parse FROM-TO and single versions", () => {
    assert.deepEqual(parseVersionRange("4.7.0-4.7.3"), { from: "4.7.0", to: "4.7.3" });
    assert.deepEqual(parseVersionRange(" 4.7.1 "), { from: "4.7.1", to: "4.7.1" });
    assert.equal(formatVersionRange({ from: "4.7.1", to: "4.7.1" }), "4.7.1");
    assert.equal(formatVersionRange({ from: "1", to: "2" }), "1-2");
  });
  for (const bad of ["", "-1", "1-", "1-2-3", "5-4", "a-b", "1..2-3"]) {
    it(`refuse the range ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseVersionRange(bad), VersionError);
    });
  }
});
