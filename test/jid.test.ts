import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  accountJid,
  accountKey,
  Jid,
  JidError,
  normalizeDomain,
  normalizeLocal,
  normalizeResource,
  parseJid,
  tryParseJid,
} from "../src/core/jid.js";

function parts(input: string): [string, string, string] {
  const j = parseJid(input);
  return [j.local, j.domain, j.resource];
}

describe("RFC 7622 §3.5 examples", () => {
  const valid: [string, [string, string, string]][] = [
    ["juliet@example.com", ["juliet", "example.com", ""]],
    ["juliet@example.com/foo", ["juliet", "example.com", "foo"]],
    ["juliet@example.com/foo bar", ["juliet", "example.com", "foo bar"]],
    ["juliet@example.com/foo@bar", ["juliet", "example.com", "foo@bar"]],
    ["foo\\20bar@example.com", ["foo\\20bar", "example.com", ""]],
    ["fussball@example.com", ["fussball", "example.com", ""]],
    ["fußball@example.com", ["fußball", "example.com", ""]],
    ["π@example.com", ["π", "example.com", ""]],
    ["Σ@example.com/foo", ["σ", "example.com", "foo"]],
    ["σ@example.com/foo", ["σ", "example.com", "foo"]],
    ["ς@example.com/foo", ["ς", "example.com", "foo"]],
    ["king@example.com/♚", ["king", "example.com", "♚"]],
    ["example.com", ["", "example.com", ""]],
    ["example.com/foobar", ["", "example.com", "foobar"]],
    ["a.example.com/b@example.net", ["", "a.example.com", "b@example.net"]],
  ];
  for (const [input, expected] of valid) {
    test(`valid: ${input}`, () => assert.deepEqual(parts(input), expected));
  }

  const invalid = [
    '"juliet"@example.com',
    "foo bar@example.com",
    "juliet@example.com/",
    "@example.com/",
    "juliet@",
    "/foobar",
  ];
  for (const input of invalid) {
    test(`invalid: ${input}`, () => assert.throws(() => parseJid(input), JidError));
  }

  // PRECIS IdentifierClass (RFC 8264 §9.1) disallows compatibility characters and symbols in localparts.
  test("invalid: henryⅣ@example.com (U+2163 has a compatibility decomposition)", {}, () =>
    assert.throws(() => parseJid("henryⅣ@example.com"), JidError),
  );
  test("invalid: ♚@example.com (symbol in a localpart)", {}, () =>
    assert.throws(() => parseJid("♚@example.com"), JidError),
  );
});

describe("localpart", () => {
  test("is case-folded and width-mapped", () => {
    assert.equal(parseJid("JULIET@example.com").local, "juliet");
    assert.equal(parseJid("ＪＵＬＩＥＴ@example.com").local, "juliet");
    assert.equal(normalizeLocal("ÉLODIE"), "élodie");
  });

  test("is NFC-normalised: composed and decomposed forms are the same account", () => {
    assert.equal(normalizeLocal("e\u0301lodie"), normalizeLocal("\u00e9lodie"));
  });

  test("refuses the characters RFC 7622 §3.3.1 forbids, spaces and controls", () => {
    for (const c of ['"', "&", "'", "/", ":", "<", ">", "@", " ", "\u00a0", "\u0007", "\u007f"]) {
      assert.throws(() => normalizeLocal("ju" + c + "liet"), JidError, JSON.stringify(c));
    }
    assert.throws(() => normalizeLocal(""), JidError);
  });

  test("invisible characters are refused", () =>
    assert.throws(() => normalizeLocal("jul\u200biet"), JidError));
});

describe("domainpart", () => {
  test("is lower-cased, width-mapped, and loses a trailing dot", () => {
    assert.equal(parseJid("juliet@EXAMPLE.COM").domain, "example.com");
    assert.equal(parseJid("juliet@ｅｘａｍｐｌｅ．ｃｏｍ").domain, "example.com");
    assert.equal(parseJid("juliet@example.com.").domain, "example.com");
    assert.equal(parseJid("juliet@example\u3002com").domain, "example.com"); // ideographic full stop
  });

  test("IDN: U-labels and A-labels name the same domain, kept as U-labels", () => {
    assert.equal(parseJid("juliet@münchen.de").domain, "münchen.de");
    assert.equal(parseJid("juliet@xn--mnchen-3ya.de").domain, "münchen.de");
    assert.equal(parseJid("juliet@MÜNCHEN.DE").domain, "münchen.de");
    assert.ok(parseJid("juliet@münchen.de").equals(parseJid("juliet@XN--MNCHEN-3YA.DE")));
  });

  test("IP literals", () => {
    assert.equal(parseJid("juliet@192.0.2.1").domain, "192.0.2.1");
    assert.equal(parseJid("juliet@[2001:DB8::1]").domain, "[2001:db8::1]");
    assert.throws(() => parseJid("juliet@256.1.1.1"), JidError);
  });

  test("refuses spaces, ports, '@', empty labels, over-long labels", () => {
    for (const d of [
      "exa mple.com",
      "example.com:5222",
      "b@c",
      "example..com",
      "c".repeat(64) + ".com",
      ".",
    ]) {
      assert.throws(() => normalizeDomain(d), JidError, d);
    }
  });

  test("an IPv6 literal must be an IPv6 address", () =>
    assert.throws(() => parseJid("juliet@[not-an-address]"), JidError));

  test("numeric and hex hosts are not rewritten as IPv4 addresses", () => {
    assert.throws(() => parseJid("0x7f.1"), JidError);
  });
});

describe("resourcepart", () => {
  test("keeps case and width, maps non-ASCII spaces, allows '@' and '/'", () => {
    assert.equal(parseJid("juliet@example.com/Balcony").resource, "Balcony");
    assert.equal(parseJid("juliet@example.com/Ｂａｌｃｏｎｙ").resource, "Ｂａｌｃｏｎｙ");
    assert.equal(parseJid("juliet@example.com/a\u00a0b").resource, "a b");
    assert.equal(parseJid("juliet@example.com/a/b@c").resource, "a/b@c");
    assert.ok(!parseJid("juliet@example.com/Balcony").equals(parseJid("juliet@example.com/balcony")));
  });

  test("refuses controls", () => {
    assert.throws(() => normalizeResource("bal\u0000cony"), JidError);
    assert.throws(() => normalizeResource("bal\ncony"), JidError);
  });

  test("removes what stringprep maps to nothing (emoji nicknames), refuses other invisible code points", () => {
    assert.equal(parseJid("room@muc.example.com/\u2764\uFE0F").resource, "\u2764");
    assert.equal(normalizeResource("\u{1F469}\u200D\u{1F4BB}"), "\u{1F469}\u{1F4BB}");
    assert.equal(normalizeResource("ba\u00ADl\u200Bcony\uFEFF"), "balcony");
    assert.ok(parseJid("juliet@example.com/bal\u200Bcony").equals(parseJid("juliet@example.com/balcony")));
    assert.throws(() => normalizeResource("\uFE0F\u200B"), JidError);
    assert.throws(() => parseJid("juliet@example.com/\uFE0F"), JidError);
    assert.throws(() => normalizeResource("bal\u200Econy"), JidError); // a bidi mark
    assert.throws(() => normalizeResource("bal\u{E0041}cony"), JidError); // a tag character
  });
});

describe("'@' and '/' placement (RFC 7622 §3.1)", () => {
  test("the first '/' starts the resource; '@' after it belongs to the resource", () => {
    assert.deepEqual(parts("example.com/juliet@example.net"), ["", "example.com", "juliet@example.net"]);
    assert.deepEqual(parts("juliet@example.com/r/s"), ["juliet", "example.com", "r/s"]);
  });

  test("a second '@' before the '/' is an error, as are empty parts", () => {
    for (const s of ["a@b@example.com", "@example.com", "juliet@/res", "juliet@example.com/", "", "/"]) {
      assert.throws(() => parseJid(s), JidError, s);
    }
  });
});

describe("length limits: 1023 octets per part", () => {
  test("localpart and resourcepart", () => {
    assert.equal(parseJid("a".repeat(1023) + "@example.com").local.length, 1023);
    assert.throws(() => parseJid("a".repeat(1024) + "@example.com"), JidError);
    assert.throws(() => parseJid("é".repeat(512) + "@example.com"), JidError); // 1024 octets in 512 characters
    assert.equal(parseJid("example.com/" + "r".repeat(1023)).resource.length, 1023);
    assert.throws(() => parseJid("example.com/" + "r".repeat(1024)), JidError);
  });

  test("domainpart", () => {
    const label = "b".repeat(63);
    const domain1023 = Array(16).fill(label).join(".");
    assert.equal(parseJid("a@" + domain1023).domain, domain1023);
    assert.throws(() => parseJid("a@" + domain1023 + ".cc"), JidError);
  });

  test("a whole JID of more than 3071 octets", () => {
    assert.throws(() => parseJid("a".repeat(3072)), JidError);
  });
});

describe("Jid", () => {
  test("string forms, bare and domain JIDs, equality", () => {
    const full = parseJid("Juliet@Example.com/Balcony");
    assert.equal(full.toString(), "juliet@example.com/Balcony");
    assert.equal(full.bareString, "juliet@example.com");
    assert.equal(full.isBare, false);
    assert.equal(full.bare().toString(), "juliet@example.com");
    assert.ok(full.bare().isBare);
    assert.ok(full.equals(parseJid("juliet@EXAMPLE.com/Balcony")));
    assert.ok(!full.equals(full.bare()));
    assert.ok(!full.equals(undefined));
    assert.ok(parseJid("example.com").isDomain);
    assert.ok(!parseJid("example.com/r").isDomain);
  });

  test("of(), withResource() and tryParseJid()", () => {
    assert.equal(Jid.of("ROMEO", "Example.com", "Orchard").toString(), "romeo@example.com/Orchard");
    assert.equal(Jid.of(undefined, "example.com").toString(), "example.com");
    assert.equal(parseJid("romeo@example.com").withResource("Ｘ").resource, "Ｘ");
    assert.throws(() => parseJid("romeo@example.com").withResource("a\u0000"), JidError);
    assert.equal(tryParseJid("not valid@example.com"), undefined);
    assert.equal(tryParseJid(undefined), undefined);
    assert.equal(tryParseJid("romeo@example.com")?.local, "romeo");
  });
});

describe("account keys", () => {
  test("the localpart on the primary domain, local@domain on another served domain", () => {
    assert.equal(accountKey("alice", "public.example", "public.example"), "alice");
    assert.equal(accountKey("alice", "corp.example", "public.example"), "alice@corp.example");
  });
  test("accountJid() reverses accountKey()", () => {
    for (const [local, domain] of [
      ["alice", "public.example"],
      ["alice", "corp.example"],
    ] as const) {
      const jid = accountJid(accountKey(local, domain, "public.example"), "public.example");
      assert.equal(jid.toString(), `${local}@${domain}`);
    }
  });
});
