/**
 * A raw client that speaks XEP-0198 by hand, on RawConnection: authenticate without
 * binding (so it can resume), bind, enable, acknowledge or not, resume, and count the
 * stanzas the server sent since <enable/> the way a client's `h` does.
 */
import { RawConnection } from "./raw-client.js";
import type { TestServer } from "./server.js";

export const NS_SM = "urn:xmpp:sm:3";
/** A top-level stanza's opening tag (the raw tests send nothing that nests one). */
const STANZA_START = /<(message|presence|iq)[\s>/]/g;

let syncCounter = 0;

export class SmRaw {
  /** Offset in `raw.received` where counting started (<enable/> or <resumed/>). */
  private countFrom = -1;
  private countBase = 0;

  private constructor(
    readonly raw: RawConnection,
    /** The features offered after authentication. */
    readonly features: string,
  ) {}

  /** STARTTLS when offered, SASL PLAIN, the stream restart: authenticated, not bound. */
  static async authenticate(
    server: TestServer,
    user: string,
    password: string,
    label?: string,
  ): Promise<SmRaw> {
    const raw = await RawConnection.open(server, { label: label ?? `${user} (raw XEP-0198)` });
    const first = await raw.openStream(server.domain);
    if (/<starttls/.test(first)) await raw.startTls(server.domain);
    const creds = Buffer.from(`\0${user}\0${password}`).toString("base64");
    raw.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`);
    await raw.waitFor(/<success[^>]*(\/>|>[\s\S]*?<\/success>)/, "SASL <success/>");
    const features = await raw.openStream(server.domain);
    return new SmRaw(raw, features);
  }

  /** authenticate + bind + (optionally) initial presence. */
  static async login(
    server: TestServer,
    user: string,
    password: string,
    resource: string,
    opts: { presence?: boolean } = {},
  ): Promise<SmRaw> {
    const c = await SmRaw.authenticate(server, user, password, `${user}/${resource} (raw XEP-0198)`);
    await c.bind(resource);
    if (opts.presence !== false) c.raw.write("<presence/>");
    return c;
  }

  async bind(resource: string): Promise<string> {
    this.raw.write(
      `<iq type='set' id='bind-${resource}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    const m = await this.raw.waitFor(/<jid>([^<]+)<\/jid>/, "the bound JID");
    return m[1]!;
  }

  /** <enable/>; returns the attributes of <enabled/>. Counting of received stanzas starts here. */
  async enable(opts: { resume?: boolean; max?: number } = {}): Promise<Record<string, string>> {
    const attrs = [`xmlns='${NS_SM}'`];
    if (opts.resume) attrs.push("resume='true'");
    if (opts.max !== undefined) attrs.push(`max='${opts.max}'`);
    this.raw.write(`<enable ${attrs.join(" ")}/>`);
    const m = await this.raw.waitFor(/<enabled\b[^>]*\/>/, "<enabled/>");
    this.countFrom = this.cursorEnd(m);
    this.countBase = 0;
    return attributes(m[0]);
  }

  /** <resume/>: `<resumed/>`'s attributes, or the `<failed/>` element's text. */
  async resume(previd: string, h: number): Promise<{ resumed?: Record<string, string>; failed?: string }> {
    this.raw.write(`<resume xmlns='${NS_SM}' previd='${previd}' h='${h}'/>`);
    const m = await this.raw.waitFor(
      /<resumed\b[^>]*\/>|<failed\b[^>]*(?:\/>|>[\s\S]*?<\/failed>)/,
      "<resumed/> or <failed/>",
    );
    if (m[0].startsWith("<failed")) return { failed: m[0] };
    this.countFrom = this.cursorEnd(m);
    this.countBase = h;
    return { resumed: attributes(m[0]) };
  }

  /** The client's `h`: stanzas received since <enable/> (plus the `h` a resumption started from). */
  get handled(): number {
    if (this.countFrom < 0) return 0;
    const text = this.raw.received.slice(this.countFrom);
    return this.countBase + (text.match(STANZA_START)?.length ?? 0);
  }

  ack(h = this.handled): void {
    this.raw.write(`<a xmlns='${NS_SM}' h='${h}'/>`);
  }

  /** Waits until the server has sent an <r/> since <enable/> or <resumed/>. */
  async request(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!/<r xmlns=['"]urn:xmpp:sm:3['"]\/>/.test(this.raw.received.slice(Math.max(0, this.countFrom)))) {
      if (Date.now() > deadline) throw new Error(`${this.raw.label}: no <r/> from the server`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A ping round trip: everything sent before it was handled by the server. */
  async sync(): Promise<void> {
    const id = `sync-${++syncCounter}`;
    this.raw.write(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await this.raw.waitFor(new RegExp(`id=["']${id}["']`), "a ping round trip");
  }

  /** Sends <r/> and returns the `h` of the server's <a/>. */
  async askAck(): Promise<number> {
    this.raw.write(`<r xmlns='${NS_SM}'/>`);
    const m = await this.raw.waitFor(
      /<a xmlns=['"]urn:xmpp:sm:3['"] h=['"](\d+)['"]\/>/,
      "the server's <a/>",
    );
    return Number(m[1]);
  }

  /** Occurrences of a text in everything received (a body arriving twice shows here). */
  count(text: string): number {
    return this.raw.received.split(text).length - 1;
  }

  /** The connection is cut without a closing (what a dead network looks like to the server). */
  cut(): void {
    this.raw.destroy();
  }

  /** A clean close: </stream:stream>, then wait for the server's. */
  async closeCleanly(): Promise<void> {
    this.raw.write("</stream:stream>");
    await this.raw.waitClosed("the server closes after </stream:stream>").catch(() => this.raw.destroy());
  }

  /** Where the match `m` (just returned by waitFor) ends in `raw.received`. */
  private cursorEnd(m: RegExpExecArray): number {
    const at = this.raw.received.lastIndexOf(m[0]);
    return at + m[0].length;
  }
}

export function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of tag.matchAll(/([\w:-]+)=['"]([^'"]*)['"]/g)) out[a[1]!] = a[2]!;
  return out;
}
