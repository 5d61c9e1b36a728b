/**
 * XEP-0388 Extensible SASL Profile (SASL2) on a client stream: the same mechanisms
 * and exchange as RFC 6120 SASL (sasl.ts), framed in `urn:xmpp:sasl:2`, with three
 * differences that matter here:
 * - `<authenticate/>` may carry the client's `<user-agent/>` (kept on the session) and
 *   inline elements of other stream features, handled before the mechanism starts —
 *   so before the password is used (a licence proof rides here, docs/licensing-protocol.md);
 * - `<success/>` names the authorised JID and carries the inline features' answers;
 * - there is no stream restart: the post-authentication features follow at once.
 */
import { createHmac, randomBytes } from "node:crypto";
import { StanzaError, StreamError } from "../errors.js";
import type { Bind2Inline, Sasl2Inline, UserAgent } from "../features.js";
import { accountJid } from "../jid.js";
import type { SaslMechanism } from "../sasl/mechanism.js";
import { type XmlElement, x } from "../xml/element.js";
import { NS_BIND2, NS_SASL2 } from "../xml/namespaces.js";
import type { ClientStream } from "./engine.js";
import { type FailureCondition, NS_SASL, type SaslFraming, type SaslNegotiator } from "./sasl.js";
import type { StreamServices } from "./services.js";

/** Longest user-agent id, software or device name kept (XEP-0388 sets no limit). */
const MAX_USER_AGENT_TEXT = 256;
/** Longest Bind 2 <tag/> used in a resource. */
const MAX_TAG_CHARS = 64;

interface Bind2Result {
  answers: XmlElement[];
  failure?: StanzaError;
}

export class Sasl2Negotiator {
  private readonly framing: SaslFraming;
  /** Answers of the inline features to the <authenticate/> in progress, for <success/>. */
  private inlineAnswers: XmlElement[] = [];
  /** Inline elements handled once the mechanism succeeded (XEP-0198 <resume/>), in order. */
  private afterAuth: { provider: Sasl2Inline; element: XmlElement }[] = [];
  /** The Bind 2 request of the <authenticate/> in progress. */
  private bindRequest: XmlElement | undefined;

  constructor(
    private readonly svc: StreamServices,
    private readonly conn: ClientStream,
    private readonly sasl: SaslNegotiator,
  ) {
    this.framing = {
      challenge: (data) => x("challenge", { xmlns: NS_SASL2 }, data.toString("base64")),
      failure: (condition, text, element) => failureElement(condition, text, element),
      succeed: (username, data) => this.succeed(username, data),
    };
  }

  /** The <authentication/> feature: the mechanisms and the features that may ride inline. */
  async feature(): Promise<XmlElement> {
    const el = x("authentication", { xmlns: NS_SASL2 });
    for (const m of this.sasl.mechanisms()) el.c("mechanism").t(m.name);
    const inline: XmlElement[] = [];
    for (const p of this.inlineProviders()) {
      const offered = await p.offer?.(this.conn.session);
      if (offered) inline.push(offered);
    }
    if (this.svc.config.bind2) {
      const features = this.bind2Features().map((f) => x("feature", { var: f.var }));
      inline.push(x("bind", { xmlns: NS_BIND2 }, features.length > 0 && x("inline", {}, ...features)));
    }
    if (inline.length > 0) el.append(x("inline", {}, ...inline));
    return el;
  }

  async handle(el: XmlElement): Promise<void> {
    switch (el.name) {
      case "authenticate":
        return this.authenticate(el);
      case "response":
        return this.sasl.respond(el.text(), this.framing);
      case "abort":
        this.inlineAnswers = [];
        return this.sasl.abort(this.framing);
      default:
        throw new StreamError("unsupported-stanza-type", `<${el.name}/> in the SASL2 namespace`);
    }
  }

  private async authenticate(el: XmlElement): Promise<void> {
    const { conn } = this;
    this.inlineAnswers = [];
    this.afterAuth = [];
    this.bindRequest = this.svc.config.bind2 ? el.getChild("bind", NS_BIND2) : undefined;
    const agent = el.getChild("user-agent");
    if (agent) conn.session.userAgent = userAgentOf(agent);
    const providers = this.inlineProviders();
    const extra: SaslMechanism[] = [];
    for (const p of providers) if (p.mechanisms) extra.push(...p.mechanisms(conn.session, el));
    for (const child of el.children) {
      if (typeof child === "string") continue;
      const ns = child.attrs.xmlns;
      const provider = ns === undefined ? undefined : providers.find((p) => p.namespaces.includes(ns));
      if (!provider) continue;
      if (provider.authenticated) this.afterAuth.push({ provider, element: child });
      if (!provider.authenticate) continue;
      const outcome = await provider.authenticate(conn.session, child);
      if (conn.closed) return;
      if (outcome?.refused) {
        return this.sasl.refuse(
          "not-authorized",
          outcome.refused.text,
          this.framing,
          outcome.refused.element,
        );
      }
      if (outcome?.answer) this.inlineAnswers.push(outcome.answer);
    }
    const initial = el.getChild("initial-response");
    return this.sasl.start(el.attrs.mechanism ?? "", initial?.text() ?? "", this.framing, extra);
  }

  /**
   * The mechanism succeeded: inline resumption first (XEP-0198 §6.2), else the Bind 2 request
   * (XEP-0386), then <success/> — with the full JID when a session is resumed or bound — and
   * the post-authentication features only when neither happened.
   */
  private async succeed(username: string, data: Buffer | undefined): Promise<void> {
    const { conn, svc } = this;
    const answers = this.inlineAnswers;
    const after = this.afterAuth;
    const bindRequest = this.bindRequest;
    this.inlineAnswers = [];
    this.afterAuth = [];
    this.bindRequest = undefined;
    conn.authenticated(username);
    let resumed = false;
    const then: (() => void)[] = [];
    for (const { provider, element } of after) {
      const outcome = await provider.authenticated!(conn.session, element);
      if (conn.closed) return;
      if (outcome?.answer) answers.push(outcome.answer);
      if (outcome?.afterSuccess) then.push(outcome.afterSuccess);
      if (outcome?.resumed) resumed = true;
    }
    let bound: Bind2Result | undefined;
    if (!resumed && bindRequest) {
      bound = await this.bind(bindRequest);
      if (conn.closed) return;
      if (bound.failure) {
        // The account is authenticated but gets no resource: say why, and let it bind the RFC 6120 way.
        answers.push(x("bound", { xmlns: NS_BIND2 }, bound.failure.toElement()));
        bound = undefined;
      } else answers.push(x("bound", { xmlns: NS_BIND2 }, ...bound.answers));
    }
    const session = conn.session;
    const jid = resumed || bound ? session.jid?.toString() : undefined;
    conn.send(
      x(
        "success",
        { xmlns: NS_SASL2 },
        data && data.length > 0 && x("additional-data", {}, data.toString("base64")),
        x("authorization-identifier", {}, jid ?? accountJid(username, svc.domain).toString()),
        ...answers,
      ),
    );
    for (const fn of then) fn();
    if (bound) {
      await svc.hooks.fireAsync("session/bound", { session });
      return;
    }
    if (!resumed) conn.offerPostAuthFeatures();
  }

  /** XEP-0386: binds a resource (`tag/random`) and enables the session features asked inline. */
  private async bind(request: XmlElement): Promise<Bind2Result> {
    const { conn, svc } = this;
    const tag = request.getChildText("tag")?.trim().slice(0, MAX_TAG_CHARS);
    let requested: string | undefined;
    if (tag) {
      // XEP-0386 §3.2.1: `tag/id`, the id stable for one client (its user-agent id, not shown).
      const agentId = conn.session.userAgent?.id;
      const id = agentId
        ? createHmac("sha256", svc.saslDecoySecret)
            .update(`bind2\0${agentId}\0${tag}`)
            .digest("base64url")
            .slice(0, 12)
        : randomBytes(9).toString("base64url");
      requested = `${tag}/${id}`;
    }
    try {
      const jid = await conn.bindResource(requested);
      if (!jid) return { answers: [] };
    } catch (err) {
      if (err instanceof StanzaError) return { answers: [], failure: err };
      throw err;
    }
    const session = conn.session;
    // XEP-0386 §3.2: an earlier session of the same client (its SASL2 user-agent id) gives way.
    const agentId = session.userAgent?.id;
    if (agentId && session.username) {
      for (const other of svc.sessions.resourcesOf(session.username)) {
        if (other !== session && other.userAgent?.id === agentId)
          other.close(new StreamError("conflict", "Replaced by a new session of the same client"));
      }
    }
    const answers: XmlElement[] = [];
    const features = this.bind2Features();
    for (const child of request.elements()) {
      const ns = child.attrs.xmlns;
      if (ns === NS_BIND2) continue;
      const feature = features.find((f) => f.var === ns && (!f.elements || f.elements.includes(child.name)));
      if (!feature) continue;
      const answer = await feature.enable(session, child);
      if (conn.closed) break;
      if (answer) answers.push(answer);
    }
    return { answers };
  }

  private bind2Features(): Bind2Inline[] {
    const out: Bind2Inline[] = [];
    for (const p of this.svc.streamFeatures.forStage("post-auth")) if (p.bind2) out.push(p.bind2);
    return out;
  }

  private inlineProviders(): (Sasl2Inline & { namespaces: string[] })[] {
    const out: (Sasl2Inline & { namespaces: string[] })[] = [];
    for (const p of this.svc.streamFeatures.forStage("pre-auth")) {
      if (p.sasl2 && p.namespaces) out.push({ ...p.sasl2, namespaces: p.namespaces });
    }
    return out;
  }
}

/** XEP-0388: the RFC 6120 condition, any application-specific element, then an optional text. */
function failureElement(
  condition: FailureCondition,
  text: string | undefined,
  extra?: XmlElement,
): XmlElement {
  return x(
    "failure",
    { xmlns: NS_SASL2 },
    x(condition, { xmlns: NS_SASL }),
    extra,
    text !== undefined && x("text", {}, text),
  );
}

function userAgentOf(el: XmlElement): UserAgent {
  const text = (name: string) => {
    const t = el.getChild(name)?.text().trim();
    return t ? t.slice(0, MAX_USER_AGENT_TEXT) : undefined;
  };
  const agent: UserAgent = {};
  const id = el.attrs.id?.slice(0, MAX_USER_AGENT_TEXT);
  if (id) agent.id = id;
  const software = text("software");
  if (software) agent.software = software;
  const device = text("device");
  if (device) agent.device = device;
  return agent;
}

export { NS_SASL2 } from "../xml/namespaces.js";
