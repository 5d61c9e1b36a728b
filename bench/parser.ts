/**
 * XML parser benchmark for XMPP streams.
 *
 *   node dist/bench/parser.js [--seconds 1.5] [--rounds 3]
 *
 * Feeds the same synthetic c2s stream (chat messages, presences with caps, ~5 KB roster
 * results, whitespace keepalives), cut into TCP-read-sized Buffer chunks, to each candidate
 * parser and builds an XmlElement tree per top-level element, as the server has to.
 * Every candidate runs in its own child process so JIT and GC state do not leak between them.
 * Reports stanzas and MB per CPU second and bytes allocated on the V8 heap per stanza (from GC statistics,
 * so native allocations made by node-expat or inside WebAssembly memory are not counted),
 * then probes each candidate with ill-formed and restricted XML.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { GCProfiler, getHeapStatistics } from "node:v8";
import { SAXParser, SaxEventType, type Tag, type Text } from "sax-wasm";
import { SaxesParser, type SaxesTagNS, type SaxesTagPlain } from "saxes";
import { XmlElement } from "../src/core/xml/element.js";
import { StreamParser } from "../src/core/xml/parser.js";
import { type NsScope, ROOT_SCOPE, resolveElement } from "../src/core/xml/parser-namespaces.js";

const require = createRequire(import.meta.url);
const NS_STREAM = "http://etherx.jabber.org/streams";

// ---------------------------------------------------------------------------------------------
// The workload

/** Small deterministic PRNG (mulberry32) so every run and every process sees the same stream. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" +
  NS_STREAM +
  "' to='example.com' version='1.0' xml:lang='en'>";

const BODIES = [
  "Art thou not Romeo, and a Montague?",
  "Neither, fair saint, if either thee dislike. ☺",
  "How cam'st thou hither, tell me, and wherefore? &amp; why?",
  "Café at 5? Bring the &lt;usual&gt; 😀",
];

function chatMessage(r: () => number, i: number): string {
  const body = BODIES[i % BODIES.length]!;
  return (
    `<message to='juliet${i % 50}@example.com/balcony' type='chat' id='m${i}'>` +
    `<body>${body}</body><active xmlns='http://jabber.org/protocol/chatstates'/>` +
    (r() < 0.3 ? "<request xmlns='urn:xmpp:receipts'/>" : "") +
    "</message>"
  );
}

function presence(i: number): string {
  return (
    `<presence id='p${i}'><show>away</show><status>Out to lunch</status><priority>5</priority>` +
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://client.example.org'" +
    " ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>"
  );
}

function rosterResult(i: number): string {
  let items = "";
  for (let k = 0; k < 40; k++) {
    items +=
      `<item jid='contact${k}@example.org' name='Contact Nº${k}' subscription='both'>` +
      `<group>${k % 3 === 0 ? "Friends" : "Work &amp; Co"}</group></item>`;
  }
  return `<iq type='result' id='roster${i}'><query xmlns='jabber:iq:roster' ver='v${i}'>${items}</query></iq>`;
}

export interface Workload {
  chunks: Buffer[];
  bytes: number;
  stanzas: number;
}

/** ~1 MB of stream: 60% chat, 35% presence, 5% roster results, cut into 100–4000 byte reads. */
export function makeWorkload(targetBytes = 1 << 20): Workload {
  const r = prng(42);
  const parts: string[] = [HEADER];
  let size = 0;
  let stanzas = 0;
  while (size < targetBytes) {
    const p = r();
    const s = p < 0.6 ? chatMessage(r, stanzas) : p < 0.95 ? presence(stanzas) : rosterResult(stanzas);
    parts.push(s);
    if (r() < 0.05) parts.push(" ");
    size += Buffer.byteLength(s);
    stanzas++;
  }
  const all = Buffer.from(parts.join(""));
  const chunks: Buffer[] = [];
  for (let off = 0; off < all.length; ) {
    const n = 100 + Math.floor(r() * 3900);
    chunks.push(all.subarray(off, off + n));
    off += n;
  }
  return { chunks, bytes: all.length, stanzas };
}

// ---------------------------------------------------------------------------------------------
// Candidates: each turns SAX events into one XmlElement per top-level element.

interface Feeder {
  write(chunk: Buffer): void;
  readonly stanzas: number;
}

/** Builds top-level elements from plain SAX events (qualified names, no namespace processing). */
class TreeBuilder {
  stanzas = 0;
  private depth = 0;
  private readonly stack: XmlElement[] = [];

  open(name: string, attrs: Record<string, string>): void {
    if (++this.depth === 1) return; // the stream element itself
    const el = new XmlElement(name, attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
  }

  text(t: string): void {
    const top = this.stack[this.stack.length - 1];
    if (!top) return;
    const last = top.children.length - 1;
    if (last >= 0 && typeof top.children[last] === "string") top.children[last] += t;
    else top.children.push(t);
  }

  close(): void {
    this.depth--;
    if (this.stack.pop() && this.stack.length === 0) this.stanzas++;
  }
}

type Factory = () => Feeder | Promise<Feeder>;

function saxesPlain(extraHandlers = false): Feeder {
  const b = new TreeBuilder();
  const p = new SaxesParser({ position: false });
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  p.on("opentag", (t) => b.open(t.name, t.attributes as SaxesTagPlain["attributes"]));
  p.on("text", (t) => b.text(t));
  p.on("closetag", () => b.close());
  p.on("error", (e) => {
    throw e;
  });
  if (extraHandlers) {
    // Handlers a strict XMPP parser needs; none of them fires on this workload.
    const ignore = () => {};
    p.on("cdata", ignore);
    p.on("xmldecl", ignore);
    p.on("doctype", ignore);
    p.on("comment", ignore);
    p.on("processinginstruction", ignore);
  }
  return {
    write: (c) => void p.write(decoder.decode(c, { stream: true })),
    get stanzas() {
      return b.stanzas;
    },
  };
}

/**
 * Builds the tree the server wants (local names, xmlns only where the namespace changes,
 * prefixed attributes with their declaration) from elements already namespace-resolved,
 * by saxes itself or by parser-namespaces.ts: the two ways to get namespace well-formedness.
 */
class NsTreeBuilder {
  stanzas = 0;
  private depth = 0;
  private contentNs = "";
  private readonly stack: { el: XmlElement; ns: string; scope: NsScope }[] = [];

  /** From saxes in xmlns mode. */
  openResolved(t: SaxesTagNS): void {
    if (++this.depth === 1) {
      this.contentNs = t.ns[""] ?? "";
      return;
    }
    const parent = this.stack[this.stack.length - 1];
    const attrs: Record<string, string> =
      t.uri !== (parent ? parent.ns : this.contentNs) ? { xmlns: t.uri } : {};
    for (const name in t.attributes) {
      const a = t.attributes[name]!;
      if (a.prefix === "xmlns" || name === "xmlns") continue;
      attrs[name] = a.value;
      if (a.prefix !== "" && a.prefix !== "xml") attrs[`xmlns:${a.prefix}`] = a.uri;
    }
    this.push(new XmlElement(t.local, attrs), t.uri, ROOT_SCOPE);
  }

  /** From saxes without xmlns mode, resolved by parser-namespaces.ts. */
  openPlain(t: SaxesTagPlain): void {
    if (++this.depth === 1) {
      const r = resolveElement(t.name, t.attributes, ROOT_SCOPE, null, true);
      this.contentNs = r.scope.defaultNs;
      this.stack.length = 0;
      this.rootScope = r.scope;
      return;
    }
    const parent = this.stack[this.stack.length - 1];
    const r = resolveElement(
      t.name,
      t.attributes,
      parent ? parent.scope : this.rootScope,
      parent ? parent.ns : this.contentNs,
    );
    this.push(new XmlElement(r.local, r.attrs), r.ns, r.scope);
  }

  private rootScope = ROOT_SCOPE;

  private push(el: XmlElement, ns: string, scope: NsScope): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.el.children.push(el);
    this.stack.push({ el, ns, scope });
  }

  text(t: string): void {
    const top = this.stack[this.stack.length - 1];
    if (top) top.el.children.push(t);
  }

  close(): void {
    this.depth--;
    if (this.stack.pop() && this.stack.length === 0) this.stanzas++;
  }
}

function saxesNs(): Feeder {
  const b = new NsTreeBuilder();
  const p = new SaxesParser({ xmlns: true, position: false });
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  p.on("opentag", (t: SaxesTagNS) => b.openResolved(t));
  p.on("text", (t) => b.text(t));
  p.on("closetag", () => b.close());
  p.on("error", (e) => {
    throw e;
  });
  return {
    write: (c) => void p.write(decoder.decode(c, { stream: true })),
    get stanzas() {
      return b.stanzas;
    },
  };
}

function saxesPlainNs(): Feeder {
  const b = new NsTreeBuilder();
  const p = new SaxesParser({ position: false });
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  p.on("opentag", (t) => b.openPlain(t as SaxesTagPlain));
  p.on("text", (t) => b.text(t));
  p.on("closetag", () => b.close());
  p.on("error", (e) => {
    throw e;
  });
  return {
    write: (c) => void p.write(decoder.decode(c, { stream: true })),
    get stanzas() {
      return b.stanzas;
    },
  };
}

function ltx(): Feeder {
  const SaxLtx = require("ltx/lib/parsers/ltx.js");
  const b = new TreeBuilder();
  const p = new SaxLtx();
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  p.on("startElement", (name: string, attrs: Record<string, string>) => b.open(name, attrs));
  p.on("text", (t: string) => b.text(t));
  p.on("endElement", () => b.close());
  return {
    write: (c) => p.write(decoder.decode(c, { stream: true })),
    get stanzas() {
      return b.stanzas;
    },
  };
}

function expat(): Feeder {
  const { Parser } = require("node-expat");
  const b = new TreeBuilder();
  const p = new Parser("UTF-8");
  p.on("startElement", (name: string, attrs: Record<string, string>) => b.open(name, attrs));
  p.on("text", (t: string) => b.text(t));
  p.on("endElement", () => b.close());
  p.on("error", (e: unknown) => {
    throw new Error(String(e));
  });
  return {
    write: (c) => p.write(c),
    get stanzas() {
      return b.stanzas;
    },
  };
}

let wasmBytes: Buffer | undefined;
async function saxWasm(): Promise<Feeder> {
  wasmBytes ??= readFileSync(require.resolve("sax-wasm/lib/sax-wasm.wasm"));
  const b = new TreeBuilder();
  const p = new SAXParser(SaxEventType.OpenTag | SaxEventType.CloseTag | SaxEventType.Text);
  await p.prepareWasm(new Uint8Array(wasmBytes));
  p.eventHandler = (type, detail) => {
    if (type === SaxEventType.OpenTag) {
      const tag = detail as Tag;
      const attrs: Record<string, string> = {};
      for (const a of tag.attributes) attrs[a.name.value] = a.value.value;
      b.open(tag.name, attrs);
      if (tag.selfClosing) b.close();
    } else if (type === SaxEventType.CloseTag) {
      if (!(detail as Tag).selfClosing) b.close();
    } else b.text((detail as Text).value);
  };
  return {
    write: (c) => p.write(c),
    get stanzas() {
      return b.stanzas;
    },
  };
}

function switchboard(): Feeder {
  let stanzas = 0;
  const p = new StreamParser(
    {
      streamStart() {},
      element() {
        stanzas++;
      },
      streamEnd() {},
      error(err) {
        throw err;
      },
    },
    { maxStanzaBytes: 262144, maxDepth: 32 },
  );
  return {
    write: (c) => p.write(c),
    get stanzas() {
      return stanzas;
    },
  };
}

const CANDIDATES: Record<string, Factory> = {
  "saxes (xmlns: true)": saxesNs,
  "saxes (xmlns: false)": () => saxesPlain(),
  "saxes (xmlns: false), 9 event handlers set": () => saxesPlain(true),
  "saxes (xmlns: false) + parser-namespaces.ts": saxesPlainNs,
  "ltx parser": ltx,
  "node-expat": expat,
  "sax-wasm": saxWasm,
  "StreamParser (src/core/xml/parser.ts)": switchboard,
};

// ---------------------------------------------------------------------------------------------
// Measurement (child process)

interface Figures {
  name: string;
  seconds: number;
  passes: number;
  stanzasPerSec: number;
  mbPerSec: number;
  allocPerStanza: number;
}

/** Bytes allocated on the V8 heap between start and stop, summed across the GCs in between. */
function allocationMeter(): { stop(): number } {
  const profiler = new GCProfiler();
  const startUsed = getHeapStatistics().used_heap_size;
  profiler.start();
  return {
    stop() {
      const endUsed = getHeapStatistics().used_heap_size;
      const stats = profiler.stop().statistics;
      let total = 0;
      let prev = startUsed;
      for (const s of stats) {
        // GCProfiler reports camelCase heap statistics, unlike getHeapStatistics().
        const before = (s.beforeGC.heapStatistics as unknown as { usedHeapSize: number }).usedHeapSize;
        const after = (s.afterGC.heapStatistics as unknown as { usedHeapSize: number }).usedHeapSize;
        total += Math.max(0, before - prev);
        prev = after;
      }
      return total + Math.max(0, endUsed - prev);
    },
  };
}

async function runPass(factory: Factory, w: Workload): Promise<void> {
  const f = await factory();
  for (const c of w.chunks) f.write(c);
  if (f.stanzas !== w.stanzas) throw new Error(`parsed ${f.stanzas} stanzas, expected ${w.stanzas}`);
}

async function measure(name: string, seconds: number): Promise<Figures> {
  const factory = CANDIDATES[name];
  if (!factory) throw new Error(`unknown candidate ${name}`);
  const w = makeWorkload();
  const warmUntil = performance.now() + Math.min(500, seconds * 250);
  while (performance.now() < warmUntil) await runPass(factory, w);
  const meter = allocationMeter();
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let passes = 0;
  do {
    await runPass(factory, w);
    passes++;
  } while (performance.now() - start < seconds * 1000);
  // Throughput is per second of CPU used by this process (all its threads, GC included), not
  // per wall-clock second: time lost to other processes on a shared machine does not count.
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const allocated = meter.stop();
  return {
    name,
    seconds: cpuSeconds,
    passes,
    stanzasPerSec: (passes * w.stanzas) / cpuSeconds,
    mbPerSec: (passes * w.bytes) / cpuSeconds / 1e6,
    allocPerStanza: allocated / (passes * w.stanzas),
  };
}

// ---------------------------------------------------------------------------------------------
// Correctness probes (each candidate in its strictest configuration)

interface ProbeResult {
  error: boolean;
  text: string;
  /** a DOCTYPE, entity declaration, comment or PI was reported by an event the server could refuse on */
  reported: boolean;
}

type Prober = (doc: Buffer) => Promise<ProbeResult>;

function saxesProber(xmlns: boolean): Prober {
  return async (doc) => {
    const r: ProbeResult = { error: false, text: "", reported: false };
    const p = new SaxesParser({ xmlns });
    p.on("error", () => {
      r.error = true;
    });
    p.on("text", (t) => {
      r.text += t;
    });
    p.on("doctype", () => {
      r.reported = true;
    });
    p.on("comment", () => {
      r.reported = true;
    });
    p.on("processinginstruction", () => {
      r.reported = true;
    });
    try {
      p.write(new TextDecoder("utf-8", { fatal: true }).decode(doc)).close();
    } catch {
      r.error = true;
    }
    return r;
  };
}

const PROBERS: Record<string, Prober> = {
  "saxes (xmlns: true)": saxesProber(true),
  "saxes (xmlns: false)": saxesProber(false),
  "ltx parser": async (doc) => {
    const SaxLtx = require("ltx/lib/parsers/ltx.js");
    const r: ProbeResult = { error: false, text: "", reported: false };
    const p = new SaxLtx();
    p.on("text", (t: string) => {
      r.text += t;
    });
    try {
      // ltx decodes with Buffer#toString(), which never fails.
      p.write(doc.toString());
      p.end();
    } catch {
      r.error = true;
    }
    return r;
  },
  "node-expat": async (doc) => {
    const { Parser } = require("node-expat");
    const r: ProbeResult = { error: false, text: "", reported: false };
    const p = new Parser("UTF-8");
    p.on("error", () => {
      r.error = true;
    });
    p.on("text", (t: string) => {
      r.text += t;
    });
    for (const ev of ["entityDecl", "comment", "processingInstruction"])
      p.on(ev, () => {
        r.reported = true;
      });
    p.write(doc);
    p.end();
    return r;
  },
  "sax-wasm": async (doc) => {
    wasmBytes ??= readFileSync(require.resolve("sax-wasm/lib/sax-wasm.wasm"));
    const r: ProbeResult = { error: false, text: "", reported: false };
    const p = new SAXParser(
      SaxEventType.Text | SaxEventType.Doctype | SaxEventType.Comment | SaxEventType.ProcessingInstruction,
    );
    await p.prepareWasm(new Uint8Array(wasmBytes));
    p.eventHandler = (type, detail) => {
      if (type === SaxEventType.Text) r.text += (detail as Text).value;
      else r.reported = true;
    };
    try {
      p.write(doc);
      p.end();
    } catch {
      r.error = true;
    }
    return r;
  },
};

interface Case {
  name: string;
  doc: Buffer;
  judge(r: ProbeResult): string;
}

const mustReject = (r: ProbeResult): string => (r.error ? "rejects" : "ACCEPTS");
const mustReport = (r: ProbeResult): string =>
  r.error ? "rejects" : r.reported ? "reports (refusable)" : "SILENTLY SKIPS";

const CASES: Case[] = [
  { name: "mismatched tags `<a><b></a></b>`", doc: Buffer.from("<a><b></a></b>"), judge: mustReject },
  { name: "bad character U+0001", doc: Buffer.from("<a>\u0001</a>"), judge: mustReject },
  {
    name: "invalid UTF-8 byte 0xFF",
    doc: Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e]),
    judge: mustReject,
  },
  { name: "duplicate attribute `<a b='1' b='2'/>`", doc: Buffer.from("<a b='1' b='2'/>"), judge: mustReject },
  { name: "unbound element prefix `<p:b/>`", doc: Buffer.from("<a><p:b/></a>"), judge: mustReject },
  { name: "unbound attribute prefix `p:x='1'`", doc: Buffer.from("<a p:x='1'/>"), judge: mustReject },
  {
    name: "same expanded attribute name twice",
    doc: Buffer.from("<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>"),
    judge: mustReject,
  },
  { name: "`<` in attribute value", doc: Buffer.from("<a b='<'/>"), judge: mustReject },
  { name: "undefined entity `&nbsp;`", doc: Buffer.from("<a>&nbsp;</a>"), judge: mustReject },
  { name: "DOCTYPE `<!DOCTYPE a>`", doc: Buffer.from("<!DOCTYPE a><a/>"), judge: mustReport },
  {
    name: "internal entity `<!ENTITY x 'boom'>` used as `&x;`",
    doc: Buffer.from("<!DOCTYPE a [<!ENTITY x 'boom'>]><a>&x;</a>"),
    judge: (r) =>
      r.text.includes("boom")
        ? r.reported
          ? "EXPANDS (declaration reported)"
          : "SILENTLY EXPANDS"
        : r.error
          ? "rejects"
          : "ignores",
  },
  { name: "comment", doc: Buffer.from("<a><!-- c --></a>"), judge: mustReport },
  { name: "processing instruction", doc: Buffer.from("<a><?pi x?></a>"), judge: mustReport },
  {
    name: "predefined + char references decoded",
    doc: Buffer.from("<a>&amp;&#x1F600;&#233;</a>"),
    judge: (r) => (r.error ? "rejects" : r.text === "&😀é" ? "decodes" : `WRONG: ${JSON.stringify(r.text)}`),
  },
];

// ---------------------------------------------------------------------------------------------
// Driver

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const seconds = option("--seconds", 1.5);
  const rounds = option("--rounds", 3);
  const candIdx = args.indexOf("--candidate");
  if (candIdx >= 0) {
    process.stdout.write(JSON.stringify(await measure(args[candIdx + 1]!, seconds)));
    return;
  }

  const w = makeWorkload();
  console.log(
    `workload: ${w.stanzas} stanzas, ${fmt(w.bytes / 1e6, 2)} MB in ${w.chunks.length} chunks; ` +
      `${rounds} interleaved rounds of ${seconds} s per candidate, best round kept\n`,
  );
  // Rounds are interleaved and the best kept, so that load from other processes on a shared
  // machine (which can only slow a run down) disturbs the comparison as little as possible.
  const self = fileURLToPath(import.meta.url);
  const bestOf = new Map<string, Figures>();
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(CANDIDATES)) {
      const out = execFileSync(process.execPath, [self, "--candidate", name, "--seconds", String(seconds)], {
        encoding: "utf8",
      });
      const f = JSON.parse(out) as Figures;
      const prev = bestOf.get(name);
      if (!prev || f.stanzasPerSec > prev.stanzasPerSec) bestOf.set(name, f);
    }
  }
  const results = [...bestOf.values()];
  const best = Math.max(...results.map((r) => r.stanzasPerSec));
  console.log("| parser | stanzas / CPU s | MB / CPU s | vs fastest | heap bytes allocated / stanza |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${fmt(r.stanzasPerSec)} | ${fmt(r.mbPerSec, 1)} | ${fmt(r.stanzasPerSec / best, 2)} | ${fmt(r.allocPerStanza)} |`,
    );
  }

  console.log("\n| input | " + Object.keys(PROBERS).join(" | ") + " |");
  console.log("| --- |" + " --- |".repeat(Object.keys(PROBERS).length));
  for (const c of CASES) {
    const cells: string[] = [];
    for (const probe of Object.values(PROBERS)) cells.push(c.judge(await probe(c.doc)));
    console.log(`| ${c.name} | ${cells.join(" | ")} |`);
  }
}

await main();
