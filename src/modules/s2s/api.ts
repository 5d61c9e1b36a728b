/**
 * What other modules use of federation: the authorization step every link passes
 * (`s2s/authorize`), the live links, and tearing a domain's links down. The interconnection
 * licences plug in here: a handler of `s2s/authorize` decides under the `licensed` policy, and
 * `closeLinks` ends a domain's links when its licence goes.
 */
import type { XmlElement } from "../../core/xml/element.js";
import type { FederationPolicy } from "./config.js";

export type S2SDirection = "in" | "out";
/** How a link's remote domain was authenticated. */
export type S2SAuthMethod = "sasl-external" | "dialback";

/** Why a link was refused: the text and application condition of its policy-violation. */
export interface S2SRefusal {
  text: string;
  /** An element in an application namespace, sent inside the stream error (e.g. a licence condition). */
  condition?: XmlElement;
}

/**
 * Fired before a link is used: inbound, once the remote domain asked to authenticate (before
 * its dialback key is checked or its SASL EXTERNAL succeeds); outbound, before the connection is
 * made. A handler decides with `allow()` or `refuse()` and returns true to end the chain; the
 * federation module's own handler runs last (priority -100) and applies `open` and `allowlist`.
 * Under `licensed` a link nobody allowed is refused. Handlers may be async.
 */
export interface S2SAuthorizeEvent {
  /** The remote domain. */
  readonly domain: string;
  /** The served domain of ours the link is for. */
  readonly localDomain: string;
  readonly direction: S2SDirection;
  /** Inbound: how the peer authenticates; outbound: undefined (not negotiated yet). */
  readonly method: S2SAuthMethod | undefined;
  readonly policy: FederationPolicy;
  /** The decision so far (undefined: none yet). */
  readonly decision: { allowed: true } | { allowed: false; refusal: S2SRefusal } | undefined;
  allow(): void;
  refuse(refusal: S2SRefusal): void;
}

declare module "../../core/events.js" {
  interface ServerEvents {
    "s2s/authorize": S2SAuthorizeEvent;
  }
}

/** One live, authenticated server-to-server stream. */
export interface S2SLinkInfo {
  /** The remote domain. */
  domain: string;
  localDomain: string;
  direction: S2SDirection;
  method: S2SAuthMethod;
  /** When it was authenticated (ms since the epoch). */
  since: number;
  stanzasIn: number;
  stanzasOut: number;
  address: string;
  /** Outbound: the remote's certificate was valid for its domain. Inbound: the peer's certificate authenticated it. */
  certificateVerified: boolean;
}

export interface S2SApi {
  readonly policy: FederationPolicy;
  /** Live links, inbound and outbound. */
  links(): S2SLinkInfo[];
  /**
   * Closes every link with a remote domain at once (stream error policy-violation with the
   * refusal's text and condition) and bounces what was queued for it; returns how many closed.
   */
  closeLinks(domain: string, refusal: S2SRefusal): number;
}
