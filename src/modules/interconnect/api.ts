/** What the interconnect module offers the admin faces: the live links with their licence standing. */
import type { InterconnectScope, LicenceState, PolicyMode } from "../../licensing/index.js";

export type LinkKind = "component" | "s2s";

/** How a link's licence stands now. */
export interface LinkLicence {
  /** gateway (components) or peering (server-to-server). */
  scope: InterconnectScope;
  /**
   * Whether licences decide for this link: always for components; for federation only under
   * the `licensed` policy (under `open` and `allowlist` the configuration decides).
   */
  applies: boolean;
  /** The standing of the domain's licence of that scope ("none": it never had one). */
  status: LicenceState | "none";
  licenceId?: string;
  /** The domain's mode under the schedule now. */
  mode: PolicyMode;
  /** Warn: when the link stops unless a licence is granted. */
  cutoff?: number;
}

/** One live link: an attached component or an authenticated server-to-server stream. */
export interface LinkView {
  kind: LinkKind;
  /** The component's or the remote server's domain. */
  domain: string;
  /** The served domain of ours (server-to-server), or this server's domain (components). */
  localDomain: string;
  /** Who opened the stream: "in" (the component or the remote server) or "out" (we did). */
  direction: "in" | "out";
  /** "secret" (XEP-0114 handshake), "sasl-external" or "dialback". */
  method: string;
  /** When it was authenticated (ms since the epoch). */
  since: number;
  /** Stanzas received on the link, and sent on it. */
  stanzasIn: number;
  stanzasOut: number;
  address: string;
  licence: LinkLicence;
}

export interface InterconnectApi {
  links(): LinkView[];
}
