/**
 * What other modules use of the components module: the authorization step a component
 * passes after proving its secret (`component/authorize`), the live component links, and
 * detaching a component. Gateway licences plug in here.
 */
import type { XmlElement } from "../../core/xml/element.js";

/** Why a component is refused: the text and application condition of its policy-violation. */
export interface ComponentRefusal {
  text: string;
  /** An element in an application namespace sent inside the stream error (e.g. a licence condition). */
  condition?: XmlElement;
}

/**
 * Fired once a component proved its secret, before its domain is routed to it. A handler
 * refuses with `refuse()` (the component gets a policy-violation stream error) and may
 * return true to end the chain. Handlers may be async.
 */
export interface ComponentAuthorizeEvent {
  readonly domain: string;
  readonly address: string;
  /** The refusal so far (undefined: admitted so far). */
  readonly refusal: ComponentRefusal | undefined;
  refuse(refusal: ComponentRefusal): void;
}

declare module "../../core/events.js" {
  interface ServerEvents {
    "component/authorize": ComponentAuthorizeEvent;
    /** A component was attached: its domain is routed to it from now on. */
    "component/attached": { domain: string };
  }
}

/** One attached (authenticated) component. */
export interface ComponentLinkInfo {
  domain: string;
  address: string;
  /** When it completed its handshake (ms since the epoch). */
  since: number;
  /** Stanzas it sent us, and we sent it, on this connection. */
  stanzasIn: number;
  stanzasOut: number;
}

export interface ComponentsApi {
  links(): ComponentLinkInfo[];
  /**
   * Detaches the component of a domain at once (stream error policy-violation with the
   * refusal's text and condition); false when none is attached.
   */
  detach(domain: string, refusal: ComponentRefusal): boolean;
}
