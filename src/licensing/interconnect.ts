/**
 * Decisions for interconnection: whether a remote server's domain may federate (peering
 * licence) and whether a component may attach (gateway licence), now. The same schedule as
 * clients applies, rolled out by domain instead of by account: a domain's place in a partial
 * stage is a stable hash of the domain. A domain with a licence in force is admitted; a
 * domain whose licence was suspended, revoked or has expired is refused in every mode (as a
 * client presenting such a licence is); a domain that never had one follows its mode: open
 * admits it, warn admits it with a warning naming its cutoff, enforce refuses it.
 */
import type { Instant, InterconnectScope, PolicyMode } from "./model.js";
import { isoInstant, type Refusal } from "./protocol.js";
import { domainLicenceStanding, type LicensingSnapshot, modeFor } from "./registry.js";

const WHAT: Record<InterconnectScope, string> = { peering: "peering", gateway: "gateway" };

export type InterconnectDecision =
  | {
      admitted: true;
      /** The licence in force, or undefined when the domain is admitted without one. */
      licenceId: string | undefined;
      /** The domain's mode now (for an unlicensed domain: open or warn). */
      mode: PolicyMode;
      /** Warn: the instant from which an unlicensed domain is refused, when one is scheduled. */
      cutoff?: Instant;
    }
  | ({ admitted: false } & Refusal);

/** The mode a domain is in now: the policy's stages with the domain as the rollout key. */
export function domainMode(snapshot: LicensingSnapshot, domain: string, now: Instant): PolicyMode {
  // Exemptions name accounts, not domains: the rollout alone decides here.
  return modeFor({ ...snapshot.policy, exemptions: [] }, now, domain);
}

/** When enforcement reaches this domain (its rollout bucket included), if it is scheduled. */
export function domainCutoff(snapshot: LicensingSnapshot, domain: string, now: Instant): Instant | undefined {
  return snapshot.policy.stages
    .filter((s) => s.at > now)
    .sort((a, b) => a.at - b.at)
    .find((s) => domainMode(snapshot, domain, s.at) === "enforce")?.at;
}

/** May this domain use a link of this scope now? */
export function interconnectDecision(
  snapshot: LicensingSnapshot,
  scope: InterconnectScope,
  domain: string,
  now: Instant,
): InterconnectDecision {
  const what = WHAT[scope];
  const standing = domainLicenceStanding(snapshot, scope, domain, now);
  switch (standing?.status) {
    case "active":
      return { admitted: true, licenceId: standing.licence.id, mode: domainMode(snapshot, domain, now) };
    case "suspended":
      return {
        admitted: false,
        reason: "licence-suspended",
        text: `the ${what} licence of ${domain} is suspended`,
      };
    case "revoked":
      return {
        admitted: false,
        reason: "licence-revoked",
        text: `the ${what} licence of ${domain} has been revoked`,
      };
    case "expired":
      return {
        admitted: false,
        reason: "licence-expired",
        text: `the ${what} licence of ${domain} has expired`,
      };
  }
  const mode = domainMode(snapshot, domain, now);
  if (mode === "enforce") {
    const pending =
      standing?.status === "pending"
        ? ` (its licence is valid from ${isoInstant(standing.licence.validFrom)})`
        : "";
    const where = snapshot.policy.infoUrl === undefined ? "" : ` Licences: ${snapshot.policy.infoUrl}`;
    return {
      admitted: false,
      reason: scope === "peering" ? "unlicensed-peer" : "unlicensed-gateway",
      text:
        scope === "peering"
          ? `${domain} holds no peering licence with this network${pending}.${where}`
          : `the gateway ${domain} holds no gateway licence on this network${pending}.${where}`,
      details: { domain, "info-url": snapshot.policy.infoUrl },
    };
  }
  const cutoff = mode === "warn" ? domainCutoff(snapshot, domain, now) : undefined;
  return { admitted: true, licenceId: undefined, mode, ...(cutoff !== undefined ? { cutoff } : {}) };
}

/** The human text of a warning to an unlicensed link in warn mode ("this link stops on …"). */
export function interconnectWarningText(
  scope: InterconnectScope,
  domain: string,
  localDomain: string,
  cutoff: Instant | undefined,
  infoUrl: string | undefined,
): string {
  const link =
    scope === "peering"
      ? `The link between ${domain} and ${localDomain} has no peering licence.`
      : `The gateway ${domain} has no gateway licence on ${localDomain}.`;
  const when =
    cutoff === undefined
      ? " This link will stop when the network starts requiring a licence."
      : ` This link stops on ${isoInstant(cutoff)}.`;
  return `${link}${when}${infoUrl === undefined ? "" : ` Licences: ${infoUrl}`}`;
}
