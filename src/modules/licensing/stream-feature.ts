/**
 * The pre-authentication carrier of a licence proof: a <licence/> stream feature with
 * a fresh nonce for each stream (a restart after STARTTLS gets a new one), and the
 * client's <proof/> answered with <success/> or a refusal stream error. One proof per
 * nonce: a second one on the same stream is refused as bad-proof.
 */

import { randomBytes } from "node:crypto";
import type { StreamFeatureProvider } from "../../core/features.js";
import type { ClientSession } from "../../core/session.js";
import { setClientInfo } from "./client-info.js";
import type { Enforcement } from "./enforcement.js";
import { networkMode, nextEnforceAt } from "./policy.js";
import {
  licenceFeature,
  NONCE_BYTES,
  NS_LICENCE,
  parseProof,
  proofBindingTypes,
  type Refusal,
  refusalError,
  successElement,
  ticketRefusedElement,
} from "./protocol.js";

interface Offered {
  nonce: string;
  /** The stream the nonce was offered on; a proof on any other stream does not match it. */
  streamId: string;
  /** The binding types offered, best first (empty without TLS). */
  bindingTypes: string[];
  used: boolean;
  /** A ticket was refused on this stream: the one retry allowed is a signed proof. */
  ticketRefused: boolean;
}

export function licenceStreamFeature(enforcement: Enforcement, domain: string): StreamFeatureProvider {
  const offered = new WeakMap<ClientSession, Offered>();

  const refuse = (session: ClientSession, refusal: Refusal) => session.close(refusalError(refusal));

  return {
    name: "licence",
    stage: "pre-auth",
    namespaces: [NS_LICENCE],
    offer(session) {
      const nonce = randomBytes(NONCE_BYTES).toString("base64");
      const bindingTypes = proofBindingTypes(session.channelBindingTypes());
      offered.set(session, {
        nonce,
        streamId: session.streamId,
        bindingTypes,
        used: false,
        ticketRefused: false,
      });
      enforcement.counters.noncesIssued++;
      const { policy } = enforcement.snapshot();
      const now = enforcement.now();
      return licenceFeature({
        nonce,
        mode: networkMode(policy, now),
        cutoff: nextEnforceAt(policy, now),
        bindingTypes,
      });
    },
    handle(session, el) {
      const limited = enforcement.rateLimited(session.remoteAddress);
      if (limited) return refuse(session, limited);
      const state = offered.get(session);
      if (!state || state.used || state.streamId !== session.streamId) {
        const refusal: Refusal = {
          reason: "bad-proof",
          text: state?.used
            ? "this stream's nonce has been used: one proof per stream"
            : "no licence nonce was offered on this stream",
        };
        enforcement.proofFailed(session.remoteAddress, refusal);
        return refuse(session, refusal);
      }
      state.used = true;
      const parsed = parseProof(el);
      if (!parsed.ok) {
        const refusal: Refusal = { reason: "bad-proof", text: parsed.text };
        enforcement.proofFailed(session.remoteAddress, refusal);
        return refuse(session, refusal);
      }
      // The client names the binding it used when it is not the first offered.
      const bindingType = parsed.claim.bindingType ?? state.bindingTypes[0];
      if (bindingType !== undefined && !state.bindingTypes.includes(bindingType)) {
        const refusal: Refusal = {
          reason: "bad-proof",
          text: `the ${bindingType} channel binding was not offered on this stream`,
        };
        enforcement.proofFailed(session.remoteAddress, refusal);
        return refuse(session, refusal);
      }
      const admission = enforcement.admitProof(session, {
        domain,
        streamId: state.streamId,
        nonce: state.nonce,
        bindingType,
        bindingData: bindingType === undefined ? undefined : session.channelBinding(bindingType),
        proof: parsed.claim,
      });
      if (!admission.ok) {
        if ("refusal" in admission) return refuse(session, admission.refusal);
        if (state.ticketRefused || parsed.claim.ticket === undefined) {
          return refuse(session, { reason: "bad-proof", text: admission.ticketRefused });
        }
        // Not an attack, just an old ticket: the same nonce may carry one signed proof.
        state.used = false;
        state.ticketRefused = true;
        return session.send(ticketRefusedElement(admission.ticketRefused));
      }
      setClientInfo(session, admission.info);
      session.send(successElement(admission.recommended, enforcement.issueTicket(session, admission)));
    },
  };
}
