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
import { StreamError } from "../errors.js";
import type { Sasl2Inline, UserAgent } from "../features.js";
import { type XmlElement, x } from "../xml/element.js";
import { NS_SASL2 } from "../xml/namespaces.js";
import type { ClientStream } from "./engine.js";
import { type FailureCondition, NS_SASL, type SaslFraming, type SaslNegotiator } from "./sasl.js";
import type { StreamServices } from "./services.js";

/** Longest user-agent id, software or device name kept (XEP-0388 sets no limit). */
const MAX_USER_AGENT_TEXT = 256;

export class Sasl2Negotiator {
  private readonly framing: SaslFraming;
  /** Answers of the inline features to the <authenticate/> in progress, for <success/>. */
  private inlineAnswers: XmlElement[] = [];

  constructor(
    private readonly svc: StreamServices,
    private readonly conn: ClientStream,
    private readonly sasl: SaslNegotiator,
  ) {
    this.framing = {
      challenge: (data) => x("challenge", { xmlns: NS_SASL2 }, data.toString("base64")),
      failure: (condition, text, element) => failureElement(condition, text, element),
      succeed: (username, data) => {
        const answers = this.inlineAnswers;
        this.inlineAnswers = [];
        conn.send(
          x(
            "success",
            { xmlns: NS_SASL2 },
            data && data.length > 0 && x("additional-data", {}, data.toString("base64")),
            x("authorization-identifier", {}, `${username}@${svc.domain}`),
            ...answers,
          ),
        );
        conn.completeAuthentication(username, { restart: false });
      },
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
    const agent = el.getChild("user-agent");
    if (agent) conn.session.userAgent = userAgentOf(agent);
    const providers = this.inlineProviders();
    for (const child of el.children) {
      if (typeof child === "string") continue;
      const ns = child.attrs.xmlns;
      const provider = ns === undefined ? undefined : providers.find((p) => p.namespaces.includes(ns));
      if (!provider) continue;
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
    return this.sasl.start(el.attrs.mechanism ?? "", initial?.text() ?? "", this.framing);
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
