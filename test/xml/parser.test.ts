import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StreamError, type StreamErrorCondition } from "../../src/core/errors.js";
import { serialize, type XmlElement, x } from "../../src/core/xml/element.js";
import { StreamParser, type StreamParserLimits, sweepIdleTokenizers } from "../../src/core/xml/parser.js";

const NS_STREAMS = "http://etherx.jabber.org/streams";
const HEADER =
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}'` +
  " to='example.com' version='1.0' xml:lang='en'>";
const DEFAULT_LIMITS: StreamParserLimits = { maxStanzaBytes: 262144, maxDepth: 32 };

type Event =
  | { type: "start"; attrs: Record<string, string> }
  | { type: "element"; el: XmlElement }
  | { type: "end" }
  | { type: "error"; condition: StreamErrorCondition };

interface Recorder {
  parser: StreamParser;
  events: Event[];
  elements(): XmlElement[];
  errors(): StreamErrorCondition[];
}

function recorder(limits: Partial<StreamParserLimits> = {}, onElement?: (el: XmlElement) => void): Recorder {
  const events: Event[] = [];
  const parser = new StreamParser(
    {
      streamStart: (attrs) => events.push({ type: "start", attrs }),
      element: (el) => {
        events.push({ type: "element", el });
        onElement?.(el);
      },
      streamEnd: () => events.push({ type: "end" }),
      error: (err) => {
        assert.ok(err instanceof StreamError);
        events.push({ type: "error", condition: err.condition });
      },
    },
    { ...DEFAULT_LIMITS, ...limits },
  );
  return {
    parser,
    events,
    elements: () => events.flatMap((e) => (e.type === "element" ? [e.el] : [])),
    errors: () => events.flatMap((e) => (e.type === "error" ? [e.condition] : [])),
  };
}

/** Parses `body` after the standard header and returns the top-level elements; fails on any error. */
function stanzas(body: string): XmlElement[] {
  const r = recorder();
  r.parser.write(HEADER + body);
  assert.deepEqual(r.errors(), []);
  return r.elements();
}

/** Feeds the chunks and returns the single error condition reported. */
function errorOf(
  chunks: string | (string | Buffer)[],
  limits: Partial<StreamParserLimits> = {},
): StreamErrorCondition {
  const r = recorder(limits);
  for (const c of typeof chunks === "string" ? [chunks] : chunks) r.parser.write(c);
  const errors = r.errors();
  assert.equal(errors.length, 1, `expected one error, got ${JSON.stringify(r.events)}`);
  return errors[0]!;
}

describe("StreamParser: stream header", () => {
  it("reports the header attributes as written plus the default namespace", () => {
    const r = recorder();
    r.parser.write(HEADER);
    assert.deepEqual(r.events, [
      {
        type: "start",
        attrs: {
          xmlns: "jabber:client",
          "xmlns:stream": NS_STREAMS,
          to: "example.com",
          version: "1.0",
          "xml:lang": "en",
        },
      },
    ]);
  });

  it("accepts another prefix bound to the streams namespace", () => {
    const r = recorder();
    r.parser.write(`<s:stream xmlns:s='${NS_STREAMS}' xmlns='jabber:server' to='a.example'><message/>`);
    assert.deepEqual(r.errors(), []);
    assert.equal(r.events[0]?.type, "start");
    assert.deepEqual(r.elements(), [x("message")]);
  });

  it("gives xmlns '' when the header declares no default namespace", () => {
    const r = recorder();
    r.parser.write(`<stream:stream xmlns:stream='${NS_STREAMS}'><message/>`);
    assert.deepEqual(r.events[0], { type: "start", attrs: { "xmlns:stream": NS_STREAMS, xmlns: "" } });
    assert.deepEqual(r.elements(), [x("message", { xmlns: "" })]);
  });

  it("refuses a root that is not {streams}stream with invalid-namespace", () => {
    assert.equal(
      errorOf("<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>"),
      "invalid-namespace",
    );
    assert.equal(errorOf(`<stream:features xmlns:stream='${NS_STREAMS}'>`), "invalid-namespace");
    assert.equal(errorOf("<stream xmlns='jabber:client'>"), "invalid-namespace");
    assert.equal(errorOf("<message xmlns='jabber:client'/>"), "invalid-namespace");
  });

  it("refuses an unbound stream prefix as not-well-formed", () => {
    assert.equal(errorOf("<stream:stream xmlns='jabber:client'>"), "not-well-formed");
  });

  it("reports </stream:stream>", () => {
    const r = recorder();
    r.parser.write(HEADER + "<message/></stream:stream>");
    assert.deepEqual(
      r.events.map((e) => e.type),
      ["start", "element", "end"],
    );
  });

  it("accepts a UTF-8 byte order mark at the start", () => {
    const r = recorder();
    r.parser.write(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER + "<a/>")]));
    assert.deepEqual(r.errors(), []);
    assert.deepEqual(r.elements(), [x("a")]);
  });

  it("refuses an encoding other than UTF-8 and XML other than 1.0", () => {
    assert.equal(
      errorOf("<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER.slice(21)),
      "unsupported-encoding",
    );
    assert.equal(errorOf("<?xml version='1.1'?>" + HEADER.slice(21)), "not-well-formed");
    const ok = recorder();
    ok.parser.write("<?xml version='1.0' encoding='UTF-8'?>" + HEADER.slice(21));
    assert.deepEqual(ok.errors(), []);
  });
});

describe("StreamParser: namespace contract", () => {
  it("drops xmlns on top-level elements in the content namespace and on same-namespace children", () => {
    assert.deepEqual(stanzas("<message to='a@b' type='chat'><body>hi</body></message>"), [
      x("message", { to: "a@b", type: "chat" }, x("body", null, "hi")),
    ]);
    // Declared explicitly, it is still the content namespace.
    assert.deepEqual(stanzas("<message xmlns='jabber:client'><body>hi</body></message>"), [
      x("message", null, x("body", null, "hi")),
    ]);
  });

  it("keeps xmlns only where the namespace changes", () => {
    const [iq] = stanzas(
      "<iq type='get' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>" +
        "<item xmlns='urn:other'><x/></item></items></pubsub></iq>",
    );
    assert.deepEqual(
      iq,
      x(
        "iq",
        { type: "get", id: "1" },
        x(
          "pubsub",
          { xmlns: "http://jabber.org/protocol/pubsub" },
          x("items", { node: "n" }, x("item", { xmlns: "urn:other" }, x("x"))),
        ),
      ),
    );
  });

  it("turns prefixed elements into local names with xmlns, dropping the declarations", () => {
    const [iq] = stanzas(
      "<iq type='result' id='r'><foo:query xmlns:foo='jabber:iq:roster' ver='1'>" +
        "<foo:item jid='a@b'/></foo:query></iq>",
    );
    assert.deepEqual(
      iq,
      x(
        "iq",
        { type: "result", id: "r" },
        x("query", { xmlns: "jabber:iq:roster", ver: "1" }, x("item", { jid: "a@b" })),
      ),
    );
  });

  it("resolves a prefix bound to the parent's namespace to no xmlns", () => {
    assert.deepEqual(stanzas("<message xmlns:c='jabber:client'><c:body>hi</c:body></message>"), [
      x("message", null, x("body", null, "hi")),
    ]);
  });

  it("gives top-level elements of other namespaces their xmlns", () => {
    assert.deepEqual(
      stanzas(
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" +
          "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>" +
          "<stream:features/><message xmlns=''/>",
      ),
      [
        x("starttls", { xmlns: "urn:ietf:params:xml:ns:xmpp-tls" }),
        x(
          "error",
          { xmlns: NS_STREAMS },
          x("not-authorized", { xmlns: "urn:ietf:params:xml:ns:xmpp-streams" }),
        ),
        x("features", { xmlns: NS_STREAMS }),
        x("message", { xmlns: "" }),
      ],
    );
  });

  it("handles server-to-server streams with the dialback prefix", () => {
    const r = recorder();
    r.parser.write(
      `<stream:stream xmlns='jabber:server' xmlns:stream='${NS_STREAMS}' xmlns:db='jabber:server:dialback'>` +
        "<db:result from='a.example' to='b.example'>key</db:result><presence/>",
    );
    assert.deepEqual(r.errors(), []);
    assert.deepEqual(r.elements(), [
      x("result", { xmlns: "jabber:server:dialback", from: "a.example", to: "b.example" }, "key"),
      x("presence"),
    ]);
  });

  it("keeps component streams' content namespace implicit too", () => {
    const r = recorder();
    r.parser.write(
      `<stream:stream xmlns='jabber:component:accept' xmlns:stream='${NS_STREAMS}'><handshake/>`,
    );
    assert.deepEqual(r.elements(), [x("handshake")]);
  });

  it("gives every top-level element its xmlns when the stream's default is not a content namespace", () => {
    const r = recorder();
    r.parser.write(
      `<stream:stream xmlns='urn:other' xmlns:stream='${NS_STREAMS}'><message><body/></message>`,
    );
    assert.deepEqual(r.elements(), [x("message", { xmlns: "urn:other" }, x("body"))]);
  });

  it("keeps xml:lang and re-declares the prefix of other prefixed attributes on their element", () => {
    const [msg] = stanzas(
      "<message xml:lang='de' xmlns:p='urn:p'><x xmlns='urn:x'><y p:a='1' b='2'/></x></message>",
    );
    assert.deepEqual(
      msg,
      x(
        "message",
        { "xml:lang": "de" },
        x("x", { xmlns: "urn:x" }, x("y", { "p:a": "1", "xmlns:p": "urn:p", b: "2" })),
      ),
    );
    // The serialized form is self-contained: parsing it again gives the same tree.
    assert.deepEqual(stanzas(serialize(msg!)), [msg]);
  });

  it("undeclares the default namespace with xmlns=''", () => {
    assert.deepEqual(stanzas("<message><x xmlns=''><y/></x></message>"), [
      x("message", null, x("x", { xmlns: "" }, x("y"))),
    ]);
  });

  it("keeps an attribute named __proto__ as an attribute", () => {
    const [el] = stanzas("<a __proto__='x'/>");
    assert.equal(Object.getPrototypeOf(el!.attrs), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(el!.attrs, "__proto__")?.value, "x");
  });

  it("ignores whitespace between top-level elements and merges text with CDATA", () => {
    assert.deepEqual(stanzas(" \n<a/>\t \r\n<b>x<![CDATA[<y> & z]]>w</b>  "), [
      x("a"),
      x("b", null, "x<y> & zw"),
    ]);
  });
});

describe("StreamParser: references", () => {
  it("decodes the predefined entities and character references in text and attributes", () => {
    assert.deepEqual(
      stanzas("<a v='&amp;&lt;&gt;&quot;&apos;&#x1F600;&#233;'>&amp;&lt;&gt;&quot;&apos;&#x1F600;&#233;</a>"),
      [x("a", { v: "&<>\"'😀é" }, "&<>\"'😀é")],
    );
  });

  it("refuses other entities as restricted-xml and bad character references as not-well-formed", () => {
    assert.equal(errorOf(HEADER + "<a>&nbsp;</a>"), "restricted-xml");
    assert.equal(errorOf(HEADER + "<a v='&lol;'/>"), "restricted-xml");
    assert.equal(errorOf(HEADER + "<a>&#0;</a>"), "not-well-formed");
    assert.equal(errorOf(HEADER + "<a>&#xD800;</a>"), "not-well-formed");
    assert.equal(errorOf(HEADER + "<a>&#xFFFE;</a>"), "not-well-formed");
  });
});

/** A stream exercising names, namespaces, references, CDATA and 2-, 3- and 4-byte characters. */
const SAMPLE = Buffer.from(
  HEADER +
    "<message to='juliet@example.com' id='m1' type='chat'><body>Café ☺ 😀 &amp; &lt;tag&gt; &#x1F600;</body>" +
    "<x:z xmlns:x='urn:x' x:a='ü'><![CDATA[<raw> ✓]]></x:z></message>\n " +
    "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='é'/></presence>" +
    "<iq type='result' id='r'><query xmlns='jabber:iq:roster'><item jid='ñ@example.com' name='Zoë'>" +
    "<group>Friends &amp; family</group></item></query></iq> </stream:stream>",
);

function eventsFor(chunks: (Buffer | string)[]): Event[] {
  const r = recorder();
  for (const c of chunks) r.parser.write(c);
  return r.events;
}

describe("StreamParser: chunking", () => {
  const reference = eventsFor([SAMPLE]);

  it("parses the sample stream as expected", () => {
    assert.deepEqual(
      reference.map((e) => e.type),
      ["start", "element", "element", "element", "end"],
    );
    const [message, presence, iq] = reference.flatMap((e) => (e.type === "element" ? [e.el] : []));
    assert.deepEqual(
      message,
      x(
        "message",
        { to: "juliet@example.com", id: "m1", type: "chat" },
        x("body", null, "Café ☺ 😀 & <tag> 😀"),
        x("z", { xmlns: "urn:x", "x:a": "ü", "xmlns:x": "urn:x" }, "<raw> ✓"),
      ),
    );
    assert.equal(presence?.getChild("c", "http://jabber.org/protocol/caps")?.attrs.ver, "é");
    assert.equal(
      iq?.getChild("query", "jabber:iq:roster")?.getChild("item")?.getChildText("group"),
      "Friends & family",
    );
  });

  it("gives the same events for a split at every byte position, including inside multibyte characters", () => {
    let insideChar = 0;
    for (let i = 1; i < SAMPLE.length; i++) {
      if ((SAMPLE[i]! & 0xc0) === 0x80) insideChar++;
      assert.deepEqual(
        eventsFor([SAMPLE.subarray(0, i), SAMPLE.subarray(i)]),
        reference,
        `split at byte ${i}`,
      );
    }
    assert.ok(insideChar >= 10, "the sample must have splits inside multibyte characters");
  });

  it("gives the same events fed one byte at a time", () => {
    const bytes: Buffer[] = [];
    for (let i = 0; i < SAMPLE.length; i++) bytes.push(SAMPLE.subarray(i, i + 1));
    assert.deepEqual(eventsFor(bytes), reference);
  });

  it("gives the same events for string chunks split at every UTF-16 position, including inside surrogate pairs", () => {
    const text = SAMPLE.toString("utf8");
    for (let i = 1; i < text.length; i++) {
      assert.deepEqual(eventsFor([text.slice(0, i), text.slice(i)]), reference, `split at char ${i}`);
    }
  });

  it("refuses invalid UTF-8 and lone surrogates", () => {
    assert.equal(
      errorOf([HEADER, Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e])]),
      "not-well-formed",
    );
    assert.equal(
      errorOf([HEADER, Buffer.from([0x3c, 0x61, 0x3e, 0xc0, 0xaf, 0x3c, 0x2f, 0x61, 0x3e])]),
      "not-well-formed",
    );
    assert.equal(errorOf([HEADER + "<a>\udc00</a>"]), "not-well-formed");
  });
});

describe("StreamParser: restarts and lifecycle", () => {
  it("expects a new header (with XML declaration) after reset()", () => {
    const r = recorder();
    r.parser.write(HEADER + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    r.parser.reset();
    r.parser.write(HEADER + "<iq type='set' id='b'/>");
    assert.deepEqual(r.errors(), []);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ["start", "element", "start", "element"],
    );
  });

  it("drops what followed the element whose handler restarted the stream (STARTTLS injection)", () => {
    let parser!: StreamParser;
    const r = recorder({}, (el) => {
      if (el.name === "starttls") parser.reset();
    });
    parser = r.parser;
    parser.write(HEADER + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>injected</message>");
    parser.write(HEADER + "<presence/>");
    assert.deepEqual(r.errors(), []);
    assert.deepEqual(r.elements(), [
      x("starttls", { xmlns: "urn:ietf:params:xml:ns:xmpp-tls" }),
      x("presence"),
    ]);
  });

  it("stops delivering after end(), even from inside a handler, without reporting an error", () => {
    let parser!: StreamParser;
    const r = recorder({}, () => parser.end());
    parser = r.parser;
    parser.write(HEADER + "<a/><b/>");
    parser.write("<c/>");
    parser.reset();
    parser.write(HEADER + "<d/>");
    assert.deepEqual(r.elements(), [x("a")]);
    assert.deepEqual(r.errors(), []);
  });

  it("reports an exception thrown by a handler as a stream error instead of throwing", () => {
    const thrown = recorder({}, () => {
      throw new Error("bug");
    });
    assert.doesNotThrow(() => thrown.parser.write(HEADER + "<a/><b/>"));
    assert.deepEqual(thrown.errors(), ["internal-server-error"]);
    assert.equal(thrown.elements().length, 1);

    const streamError = recorder({}, () => {
      throw new StreamError("unsupported-stanza-type");
    });
    streamError.parser.write(HEADER + "<a/>");
    assert.deepEqual(streamError.errors(), ["unsupported-stanza-type"]);
  });

  it("reports one error, then ignores input and reset()", () => {
    const r = recorder();
    r.parser.write(HEADER + "<a></b>");
    const parsed = r.parser.bytesParsed;
    r.parser.write("<c/>");
    r.parser.reset();
    r.parser.write(HEADER + "<d/>");
    assert.deepEqual(r.errors(), ["not-well-formed"]);
    assert.equal(r.elements().length, 0);
    assert.equal(r.parser.bytesParsed, parsed);
  });

  it("processes writes made from inside a handler after the current chunk, in order", () => {
    let parser!: StreamParser;
    const r = recorder({}, (el) => {
      if (el.name === "a") parser.write("<c/>");
    });
    parser = r.parser;
    parser.write(HEADER + "<a/><b/>");
    assert.deepEqual(
      r.elements().map((e) => e.name),
      ["a", "b", "c"],
    );
  });
});

describe("StreamParser: idle streams give their tokenizer up", () => {
  /** Two sweeps: the first notes that something was read, the second finds nothing new. */
  function sweepTwice(): void {
    sweepIdleTokenizers();
    sweepIdleTokenizers();
  }

  it("sleeps between stanzas after a sweep with nothing read, and parses on where it was", () => {
    const r = recorder();
    r.parser.write(
      "<?xml version='1.0'?><s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'" +
        " xmlns:x='urn:example:x' to='example.com' version='1.0'><message to='a@example.com'/>",
    );
    sweepIdleTokenizers();
    assert.equal(r.parser.sleeping, false, "read since the last sweep: still awake");
    sweepIdleTokenizers();
    assert.equal(r.parser.sleeping, true);
    // Prefixes declared on the stream element still resolve; the default namespace still applies.
    r.parser.write(
      "  <iq type='get' id='1'><x:q/></iq><s:error><bad-format xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></s:error>",
    );
    assert.equal(r.parser.sleeping, false);
    assert.deepEqual(r.errors(), []);
    const [, iq, error] = r.elements();
    assert.equal(serialize(iq!), '<iq type="get" id="1"><q xmlns="urn:example:x"/></iq>');
    assert.equal(error!.name, "error");
    assert.equal(error!.attrs.xmlns, NS_STREAMS);
    sweepTwice();
    assert.equal(r.parser.sleeping, true);
    r.parser.write("</s:stream>");
    assert.deepEqual(
      r.events.map((e) => e.type),
      ["start", "element", "element", "element", "end"],
    );
  });

  it("keeps its tokenizer in the middle of a stanza, and a split character, until the stanza is complete", () => {
    const r = recorder();
    r.parser.write(`${HEADER}<message><body>half`);
    sweepTwice();
    assert.equal(r.parser.sleeping, false);
    r.parser.write(Buffer.from([0xc3]));
    sweepTwice();
    assert.equal(r.parser.sleeping, false);
    r.parser.write(Buffer.concat([Buffer.from([0xa9]), Buffer.from("</body></message>")]));
    sweepTwice();
    assert.equal(r.parser.sleeping, true);
    assert.deepEqual(r.errors(), []);
    assert.equal(r.elements()[0]!.getChildText("body"), "half\u00e9");
  });

  it("after waking, still rejects what the stream rejected: a wrong close tag, a stanza over the limit, a PI", () => {
    const wrongClose = recorder();
    wrongClose.parser.write(`${HEADER}<a/>`);
    sweepTwice();
    wrongClose.parser.write("</stream>");
    assert.deepEqual(wrongClose.errors(), ["not-well-formed"]);

    const large = recorder({ maxStanzaBytes: 64 });
    large.parser.write(`${HEADER}<a/>`);
    sweepTwice();
    large.parser.write(`<message><body>${"x".repeat(100)}</body></message>`);
    assert.deepEqual(large.errors(), ["policy-violation"]);

    const pi = recorder();
    pi.parser.write(`${HEADER}<a/>`);
    sweepTwice();
    pi.parser.write("<?pi x?>");
    assert.deepEqual(pi.errors(), ["restricted-xml"]);
  });

  it("does not sleep before the stream is open, nor wake once it ended", () => {
    const r = recorder();
    r.parser.write("<?xml version='1.0'?>");
    sweepTwice();
    assert.equal(r.parser.sleeping, false);
    r.parser.write(HEADER.slice("<?xml version='1.0'?>".length));
    sweepTwice();
    assert.equal(r.parser.sleeping, true);
    r.parser.end();
    assert.equal(r.parser.sleeping, false);
    r.parser.write("<a/>");
    assert.deepEqual(
      r.events.map((e) => e.type),
      ["start"],
    );
  });

  it("shares a header's namespaces only with headers that declared the same", () => {
    // The first stream's default namespace spells out the second's declarations; the second
    // must still get its own.
    const odd = recorder();
    odd.parser.write(`<stream:stream xmlns='jabber:client&#10;x=urn:x' xmlns:stream='${NS_STREAMS}'><a/>`);
    assert.deepEqual(odd.errors(), []);
    const usual = recorder();
    usual.parser.write(
      `<stream:stream xmlns='jabber:client' xmlns:x='urn:x' xmlns:stream='${NS_STREAMS}'><b/><x:c/>`,
    );
    assert.deepEqual(usual.errors(), []);
    assert.deepEqual(
      usual.elements().map((e) => [e.name, e.attrs.xmlns]),
      [
        ["b", undefined],
        ["c", "urn:x"],
      ],
    );
  });

  it("after a restart expects a new header, asleep or not", () => {
    const r = recorder();
    r.parser.write(`${HEADER}<a/>`);
    sweepTwice();
    r.parser.reset();
    r.parser.write(`${HEADER}<b/>`);
    assert.deepEqual(r.errors(), []);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ["start", "element", "start", "element"],
    );
  });
});

describe("StreamParser: restricted XML", () => {
  it("refuses a DOCTYPE", () => {
    assert.equal(
      errorOf("<?xml version='1.0'?><!DOCTYPE stream:stream>" + HEADER.slice(21)),
      "restricted-xml",
    );
    assert.equal(errorOf(HEADER + "<!DOCTYPE a>"), "restricted-xml");
  });

  it("refuses a billion-laughs document without expanding anything", () => {
    let dtd = "<!ENTITY lol 'lol'>";
    for (let i = 1; i <= 9; i++) dtd += `<!ENTITY lol${i} '${`&lol${i === 1 ? "" : i - 1};`.repeat(10)}'>`;
    const doc = `<?xml version='1.0'?><!DOCTYPE lolz [${dtd}]>${HEADER.slice(21)}<message><body>&lol9;</body></message>`;
    const r = recorder();
    r.parser.write(doc);
    assert.deepEqual(r.errors(), ["restricted-xml"]);
    assert.equal(r.events.length, 1);
    assert.ok(r.parser.bytesParsed <= Buffer.byteLength(doc));
    // The same entity used without its DTD is refused as well.
    assert.equal(errorOf(HEADER + "<message><body>&lol9;</body></message>"), "restricted-xml");
  });

  it("refuses entity and other markup declarations inside the stream", () => {
    assert.equal(errorOf(HEADER + "<!ENTITY x 'y'>"), "restricted-xml");
    assert.equal(errorOf(HEADER + "<message><!ELEMENT x ANY></message>"), "restricted-xml");
  });

  it("refuses comments anywhere", () => {
    assert.equal(errorOf("<?xml version='1.0'?><!-- hi -->" + HEADER.slice(21)), "restricted-xml");
    assert.equal(errorOf(HEADER + "<!-- keepalive -->"), "restricted-xml");
    assert.equal(errorOf(HEADER + "<message><!-- c --></message>"), "restricted-xml");
  });

  it("refuses processing instructions other than the XML declaration at the very start", () => {
    assert.equal(errorOf("<?xml version='1.0'?><?foo bar?>" + HEADER.slice(21)), "restricted-xml");
    assert.equal(errorOf(HEADER + "<message><?foo bar?></message>"), "restricted-xml");
    assert.equal(errorOf(HEADER + "<?xml version='1.0'?>"), "restricted-xml");
    assert.equal(errorOf(" " + HEADER), "restricted-xml");
  });
});

describe("StreamParser: ill-formed XML", () => {
  const cases: [string, string][] = [
    ["mismatched tags", "<a><b></a></b>"],
    ["close tag without open tag", "<a/></b>"],
    ["control character", "<a>\u0001</a>"],
    ["U+FFFE", "<a>\ufffe</a>"],
    ["duplicate attribute", "<a b='1' b='2'/>"],
    ["unquoted attribute", "<a b=1/>"],
    ["'<' in attribute value", "<a b='<'/>"],
    ["unbound element prefix", "<p:a/>"],
    ["unbound attribute prefix", "<a p:x='1'/>"],
    ["unbound prefix on a child", "<a><b><p:c/></b></a>"],
    ["same expanded attribute name twice", "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>"],
    ["undeclared prefix", "<a xmlns:p=''/>"],
    ["rebound xml prefix", "<a xmlns:xml='urn:x'/>"],
    ["xml namespace under another prefix", "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>"],
    ["declared xmlns prefix", "<a xmlns:xmlns='urn:x'/>"],
    ["xmlns namespace as default", "<a xmlns='http://www.w3.org/2000/xmlns/'/>"],
    ["element with the xmlns prefix", "<xmlns:a/>"],
    ["two colons in a name", "<a:b:c xmlns:a='u'/>"],
    ["local part starting with a digit", "<a:1b xmlns:a='u'/>"],
    ["second stream header", `<stream:stream xmlns:stream='${NS_STREAMS}'>`],
  ];
  for (const [name, body] of cases) {
    it(`refuses ${name}`, () => {
      assert.equal(errorOf(HEADER + body), "not-well-formed");
    });
  }

  it("never delivers an element or the stream end closed by a mismatched tag", () => {
    for (const body of ["<a></b>", "<a><b/></stream:stream>", "</wrong>", "<a/><b></c>"]) {
      const r = recorder();
      r.parser.write(HEADER + body);
      assert.deepEqual(
        r.events.map((e) => (e.type === "element" ? e.el.name : e.type)),
        body.startsWith("<a/>") ? ["start", "a", "error"] : ["start", "error"],
        body,
      );
    }
  });

  it("refuses garbage before the stream", () => {
    assert.equal(errorOf("GET / HTTP/1.1\r\n\r\n"), "not-well-formed");
    assert.equal(errorOf("hello" + HEADER), "not-well-formed");
  });

  it("ends the stream and drops whatever follows </stream:stream> (RFC 6120 §4.4)", () => {
    for (const chunks of [
      ["</stream:stream><a xmlns='urn:xmpp:sm:3' h='3'/>"],
      ["</stream:stream>", "<message/>"],
      ["</stream:stream>junk"],
      ["</stream:stream> ", "junk", "<message><body>x</body></message>"],
    ]) {
      const r = recorder();
      r.parser.write(HEADER);
      for (const c of chunks) r.parser.write(c);
      assert.deepEqual(
        r.events.map((e) => e.type),
        ["start", "end"],
        chunks.join(""),
      );
    }
  });

  it("accepts whitespace after </stream:stream>", () => {
    const r = recorder();
    r.parser.write(HEADER + "</stream:stream> \n ");
    assert.deepEqual(r.errors(), []);
  });

  it("refuses character data between top-level elements with bad-format", () => {
    assert.equal(errorOf(HEADER + "<a/>junk<b/>"), "bad-format");
  });
});

describe("StreamParser: limits", () => {
  /** A message of exactly `bytes` bytes whose body is made of `fill` (a 1-, 2-, 3- or 4-byte character). */
  function messageOf(bytes: number, fill = "a"): string {
    const open = "<message><body>";
    const close = "</body></message>";
    const fillBytes = Buffer.byteLength(fill);
    const room = bytes - open.length - close.length;
    const body = fill.repeat(Math.floor(room / fillBytes)) + "b".repeat(room % fillBytes);
    const msg = open + body + close;
    assert.equal(Buffer.byteLength(msg), bytes);
    return msg;
  }

  it("accepts a stanza of exactly maxStanzaBytes and refuses one byte more", () => {
    for (const fill of ["a", "é", "☺", "😀"]) {
      for (const split of [false, true]) {
        const feed = (msg: string, limit: number) => {
          const r = recorder({ maxStanzaBytes: limit });
          const bytes = Buffer.from(HEADER + " \n " + msg + "<next/>");
          if (split) for (let i = 0; i < bytes.length; i += 7) r.parser.write(bytes.subarray(i, i + 7));
          else r.parser.write(bytes);
          return r;
        };
        const exact = feed(messageOf(1000, fill), 1000);
        assert.deepEqual(exact.errors(), [], `${fill} split=${split}`);
        assert.equal(exact.elements().length, 2);
        const over = feed(messageOf(1001, fill), 1000);
        assert.deepEqual(over.errors(), ["policy-violation"], `${fill} split=${split}`);
        assert.equal(over.elements().length, 0);
      }
    }
  });

  it("counts a stanza's bytes the same after an idle stream's tokenizer was given up and made again", () => {
    // Waking feeds the new tokenizer the stream's open tag again; none of it may count
    // against the first stanza after the wake, nor may the whitespace before it.
    for (const fill of ["a", "😀"]) {
      for (const split of [false, true]) {
        const feedAfterWake = (msg: string, limit: number) => {
          const r = recorder({ maxStanzaBytes: limit });
          r.parser.write(`${HEADER}<first/>`);
          sweepIdleTokenizers();
          sweepIdleTokenizers();
          assert.equal(r.parser.sleeping, true);
          const bytes = Buffer.from(" \n " + msg + "<next/>");
          if (split) for (let i = 0; i < bytes.length; i += 7) r.parser.write(bytes.subarray(i, i + 7));
          else r.parser.write(bytes);
          return r;
        };
        const exact = feedAfterWake(messageOf(1000, fill), 1000);
        assert.deepEqual(exact.errors(), [], `${fill} split=${split}`);
        assert.deepEqual(
          exact.elements().map((e) => e.name),
          ["first", "message", "next"],
        );
        const over = feedAfterWake(messageOf(1001, fill), 1000);
        assert.deepEqual(over.errors(), ["policy-violation"], `${fill} split=${split}`);
        assert.deepEqual(
          over.elements().map((e) => e.name),
          ["first"],
        );
      }
    }
  });

  it("cuts a 10 MB stanza fed in 64 KB chunks at the limit and stops consuming", () => {
    const limit = 262144;
    const r = recorder({ maxStanzaBytes: limit });
    r.parser.write(HEADER);
    const afterHeader = r.parser.bytesParsed;
    const chunk = Buffer.alloc(65536, "a");
    const first = Buffer.concat([Buffer.from("<message><body>"), chunk.subarray(15)]);
    let errorAt = -1;
    for (let i = 0; i < 160; i++) {
      r.parser.write(i === 0 ? first : chunk);
      if (errorAt < 0 && r.errors().length > 0) errorAt = i;
    }
    assert.deepEqual(r.errors(), ["policy-violation"]);
    // 4 chunks fill the limit exactly; the 5th cannot be handed over.
    assert.equal(errorAt, 4);
    assert.equal(r.parser.bytesParsed - afterHeader, limit);
  });

  it("cuts a 100 MB attribute value at the limit", () => {
    const limit = 262144;
    const r = recorder({ maxStanzaBytes: limit });
    r.parser.write(HEADER + "<message to='");
    const chunk = Buffer.alloc(1 << 20, "x");
    for (let i = 0; i < 100; i++) r.parser.write(chunk);
    assert.deepEqual(r.errors(), ["policy-violation"]);
    assert.ok(r.parser.bytesParsed <= Buffer.byteLength(HEADER) + limit);
  });

  it("cuts an endless stream header at the limit", () => {
    const r = recorder({ maxStanzaBytes: 4096 });
    r.parser.write(`<stream:stream xmlns:stream='${NS_STREAMS}' to='`);
    for (let i = 0; i < 100; i++) r.parser.write("x".repeat(1000));
    assert.deepEqual(r.errors(), ["policy-violation"]);
    assert.equal(r.parser.bytesParsed, 4096);
  });

  it("lets whitespace keepalives through without counting them", () => {
    const r = recorder({ maxStanzaBytes: 1000 });
    r.parser.write(HEADER + "<a/>  ");
    const parsed = r.parser.bytesParsed;
    for (let i = 0; i < 2000; i++) r.parser.write(" \n");
    r.parser.write("\t<b/>");
    assert.deepEqual(r.errors(), []);
    assert.deepEqual(r.elements(), [x("a"), x("b")]);
    assert.ok(r.parser.bytesParsed <= parsed + 4);
  });

  it("accepts maxDepth levels of nesting and refuses one more", () => {
    const nest = (depth: number) => "<e>".repeat(depth) + "</e>".repeat(depth);
    const ok = recorder({ maxDepth: 3 });
    ok.parser.write(HEADER + nest(3));
    assert.deepEqual(ok.errors(), []);
    assert.equal(ok.elements().length, 1);
    assert.equal(errorOf(HEADER + nest(4), { maxDepth: 3 }), "policy-violation");
  });
});
