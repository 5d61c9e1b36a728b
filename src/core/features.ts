/**
 * What the server advertises: service discovery features and identities
 * (XEP-0030) and stream features, both registered by modules.
 */
import type { SaslMechanism } from "./sasl/mechanism.js";
import type { ClientSession } from "./session.js";
import type { XmlElement } from "./xml/element.js";
import type { StreamError } from "./xml/stream-error.js";

export type DiscoTarget = "host" | "account";

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

export class DiscoRegistry {
  private readonly features: Record<DiscoTarget, Map<string, number>> = {
    host: new Map(),
    account: new Map(),
  };
  private readonly identities: Record<DiscoTarget, DiscoIdentity[]> = { host: [], account: [] };
  /** Extra data forms (XEP-0128) for the host, e.g. contact addresses. */
  readonly extensions: XmlElement[] = [];

  addFeature(xmlns: string, target: DiscoTarget = "host"): () => void {
    const m = this.features[target];
    m.set(xmlns, (m.get(xmlns) ?? 0) + 1);
    return () => {
      const n = (m.get(xmlns) ?? 1) - 1;
      if (n <= 0) m.delete(xmlns);
      else m.set(xmlns, n);
    };
  }

  addIdentity(identity: DiscoIdentity, target: DiscoTarget = "host"): () => void {
    this.identities[target].push(identity);
    return () => {
      const list = this.identities[target];
      const i = list.indexOf(identity);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Adds an extension form (XEP-0128) to the host's disco#info; returns its removal. */
  addExtension(form: XmlElement): () => void {
    this.extensions.push(form);
    return () => {
      const i = this.extensions.indexOf(form);
      if (i >= 0) this.extensions.splice(i, 1);
    };
  }

  getFeatures(target: DiscoTarget): string[] {
    return [...this.features[target].keys()].sort();
  }

  getIdentities(target: DiscoTarget): DiscoIdentity[] {
    return [...this.identities[target]];
  }
}

/**
 * When a stream feature is offered:
 * - "pre-auth": after TLS (or when TLS is not required), beside the SASL mechanisms. Modules use
 *   this for steps that must happen before authentication (e.g. proving the client's licence).
 * - "post-auth": after SASL, beside resource binding.
 */
export type StreamFeatureStage = "pre-auth" | "post-auth";

/** What a client says of itself in a SASL2 <user-agent/> (XEP-0388 §2.3.1): unverified. */
export interface UserAgent {
  id?: string;
  software?: string;
  device?: string;
}

/** What a feature riding inside a SASL2 <authenticate/> makes of its element. */
export interface Sasl2InlineOutcome {
  /** Goes into the SASL2 <success/>. */
  answer?: XmlElement;
  /** Authentication fails (not-authorized) with this text and, inside <failure/>, this element. */
  refused?: { text: string; element?: XmlElement };
}

/**
 * XEP-0388: a pre-auth feature that can also be negotiated inside <authenticate/>. Its
 * element there is handled before the SASL mechanism starts, so before the password is used;
 * closing the session with a stream error ends the attempt.
 */
export interface Sasl2Inline {
  /** Advertised inside <authentication/>'s <inline/>; nothing: not on this session. */
  offer?(session: ClientSession): XmlElement | undefined | Promise<XmlElement | undefined>;
  /** Before the mechanism starts (the password is not checked yet). */
  authenticate?(
    session: ClientSession,
    element: XmlElement,
  ): Sasl2InlineOutcome | undefined | Promise<Sasl2InlineOutcome | undefined>;
  /**
   * Mechanisms the feature brings to this <authenticate/> only (XEP-0484 FAST's token
   * mechanisms), beside the configured ones. They are not listed among <authentication/>'s
   * mechanisms: the feature's own `offer` names them. Called once per <authenticate/>, with
   * the whole request, before any inline element is handled.
   */
  mechanisms?(session: ClientSession, request: XmlElement): SaslMechanism[];
  /**
   * After the mechanism succeeded, before <success/> is written and before any Bind 2 request
   * (XEP-0198 inline resumption). `resumed`: the stream took over an existing session, so
   * there is nothing to bind and no features follow; `afterSuccess` runs once <success/> is written.
   */
  authenticated?(
    session: ClientSession,
    element: XmlElement,
  ): Sasl2AfterAuthOutcome | undefined | Promise<Sasl2AfterAuthOutcome | undefined>;
}

export interface Sasl2AfterAuthOutcome {
  /** Goes into the SASL2 <success/>. */
  answer?: XmlElement;
  resumed?: boolean;
  afterSuccess?: () => void;
}

/**
 * XEP-0386 Bind 2: a session feature a client may enable inside its <bind/> request, listed
 * as <feature var/> in the bind feature's <inline/>. `enable` runs on the freshly bound
 * session before <success/> is written; its answer goes into <bound/>.
 */
export interface Bind2Inline {
  /** The feature's disco name or namespace (the `var`). */
  var: string;
  /** The element names it takes (default: any in `var`'s namespace). */
  elements?: string[];
  enable(
    session: ClientSession,
    element: XmlElement,
  ): XmlElement | undefined | Promise<XmlElement | undefined>;
}

export interface StreamFeatureProvider {
  name: string;
  stage: StreamFeatureStage;
  /** The element(s) to advertise in <stream:features/>, or nothing for this session. */
  offer(
    session: ClientSession,
  ): XmlElement | XmlElement[] | undefined | Promise<XmlElement | XmlElement[] | undefined>;
  /** Top-level elements this feature handles during negotiation, by namespace. */
  namespaces?: string[];
  /** Handles one top-level element in one of `namespaces`. Throw a StreamError to refuse the stream. */
  handle?(session: ClientSession, element: XmlElement): void | Promise<void>;
  /** Pre-auth only: the same feature inside a SASL2 <authenticate/>, its element in one of `namespaces`. */
  sasl2?: Sasl2Inline;
  /** Post-auth only: the same feature enabled inside a Bind 2 request (XEP-0386). */
  bind2?: Bind2Inline;
  /**
   * The stream error for an element in one of `namespaces` sent where the feature is not
   * offered (before TLS, or after its stage), when the feature has a more telling one than the
   * engine's generic `policy-violation` / `not-authorized` / `unsupported-stanza-type`.
   */
  outOfStage?(session: ClientSession, element: XmlElement): StreamError | undefined;
}

export class StreamFeatureRegistry {
  private readonly providers: StreamFeatureProvider[] = [];

  add(provider: StreamFeatureProvider): () => void {
    this.providers.push(provider);
    return () => {
      const i = this.providers.indexOf(provider);
      if (i >= 0) this.providers.splice(i, 1);
    };
  }

  forStage(stage: StreamFeatureStage): StreamFeatureProvider[] {
    return this.providers.filter((p) => p.stage === stage);
  }

  /** A feature's own refusal of its element outside its stage (see StreamFeatureProvider.outOfStage). */
  outOfStageError(
    stage: StreamFeatureStage | "pre-tls",
    session: ClientSession,
    element: XmlElement,
  ): StreamError | undefined {
    const xmlns = element.attrs.xmlns;
    if (xmlns === undefined) return undefined;
    for (const p of this.providers) {
      if (p.stage === stage || !p.outOfStage || !p.namespaces?.includes(xmlns)) continue;
      const error = p.outOfStage(session, element);
      if (error) return error;
    }
    return undefined;
  }

  handlerFor(stage: StreamFeatureStage, xmlns: string | undefined): StreamFeatureProvider | undefined {
    if (xmlns === undefined) return undefined;
    return this.providers.find((p) => p.stage === stage && p.namespaces?.includes(xmlns) && p.handle);
  }
}
