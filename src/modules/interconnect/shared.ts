/** What the gateway and peering halves of the interconnect module share: decisions, warnings, counters. */
import type { Logger } from "pino";
import type { Clock } from "../../core/clock.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import type { InterconnectDecision, InterconnectScope, Refusal } from "../../licensing/index.js";
import {
  domainLicenceStanding,
  interconnectDecision,
  interconnectWarningElement,
  interconnectWarningText,
  NS_LICENCE,
} from "../../licensing/index.js";
import type { LicensingApi } from "../licensing/index.js";
import type { LinkLicence } from "./api.js";
import type { WarningLedger } from "./warnings.js";

/** A refusal as the components and s2s seams take it: the text and the condition in the licensing namespace. */
export function refusalCondition(r: Refusal): { text: string; condition: XmlElement } {
  return { text: r.text, condition: x(r.reason, { xmlns: NS_LICENCE, ...r.details }) };
}

export type Admitted = InterconnectDecision & { admitted: true };

export interface Counters {
  /** "scope\nreason" → links refused when they tried to start. */
  refused: Map<string, number>;
  /** "scope\nreason" → live links closed. */
  detached: Map<string, number>;
  warnings: Map<InterconnectScope, number>;
}

export function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export class Interconnect {
  readonly counters: Counters = { refused: new Map(), detached: new Map(), warnings: new Map() };

  constructor(
    readonly licensing: LicensingApi,
    readonly ledger: WarningLedger,
    readonly clock: Clock,
    readonly log: Logger,
  ) {}

  decide(scope: InterconnectScope, domain: string): InterconnectDecision {
    return interconnectDecision(this.licensing.snapshot(), scope, domain, this.clock.now());
  }

  /** An unlicensed link admitted in warn mode: the decision, else undefined. */
  warned(scope: InterconnectScope, domain: string): Admitted | undefined {
    const d = this.decide(scope, domain);
    return d.admitted && d.licenceId === undefined && d.mode === "warn" ? d : undefined;
  }

  /** How a domain's licence of a scope stands now, for link listings. */
  standing(scope: InterconnectScope, domain: string, applies: boolean): LinkLicence {
    const now = this.clock.now();
    const s = domainLicenceStanding(this.licensing.snapshot(), scope, domain, now);
    const d = this.decide(scope, domain);
    return {
      scope,
      applies,
      status: s?.status ?? "none",
      ...(s ? { licenceId: s.licence.id } : {}),
      mode: d.admitted ? d.mode : "enforce",
      ...(d.admitted && d.cutoff !== undefined ? { cutoff: d.cutoff } : {}),
    };
  }

  /** The "this link stops on …" headline from `from` (ours) to `to` (the other side). */
  warning(scope: InterconnectScope, domain: string, from: string, to: string, d: Admitted): XmlElement {
    const infoUrl = this.licensing.snapshot().policy.infoUrl;
    return x(
      "message",
      { type: "headline", from, to, id: `interconnect-warning-${this.clock.now().toString(36)}` },
      x(
        "subject",
        null,
        scope === "peering" ? "This federation link is not licensed" : "This gateway is not licensed",
      ),
      x("body", null, interconnectWarningText(scope, domain, from, d.cutoff, infoUrl)),
      interconnectWarningElement({
        reason: scope === "peering" ? "unlicensed-peer" : "unlicensed-gateway",
        domain,
        cutoff: d.cutoff,
        infoUrl,
      }),
    );
  }
}
