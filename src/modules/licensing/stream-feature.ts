/**
 * The carriers of a licence proof: a <licence/> stream feature with a fresh nonce for
 * each stream (a restart after STARTTLS gets a new one), and the client's <proof/>,
 * either on its own before SASL — answered with <success/> — or inside a SASL2
 * <authenticate/> — answered inside the SASL2 <success/>. A refusal is a stream error
 * either way. One proof per nonce: a second one on the same stream is refused as bad-proof.
 */

import { randomBytes } from "node:crypto";
import type { StreamFeatureProvider } from "../../core/features.js";
import type { ClientSession } from "../../core/session.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import {
  licenceFeature,
  NONCE_BYTES,
  NS_LICENCE,
  networkMode,
  nextEnforceAt,
  parseProof,
  proofBindingTypes,
  type Refusal,
  refusalError,
  successElement,
  ticketRefusedElement,
} from "../../licensing/index.js";
import type { Enforcement } from "./enforcement.js";
import { setClientInfo } from "./session-info.js";

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

/** What became of one <proof/>, whichever element carried it. */
type Judgement =
  | { kind: "refused"; refusal: Refusal }
  /** An old ticket: one signed proof may follow on the same nonce. */
  | { kind: "ticket-refused"; text: string }
  | { kind: "accepted"; answer: XmlElement };

/** The stream feature, and `forget` for a bound session: its nonce can no longer be used (a proof then is out of stage). */
export function licenceStreamFeature(
  enforcement: Enforcement,
  domain: string,
): StreamFeatureProvider & { forget(session: ClientSession): void } {
  const offered = new WeakMap<ClientSession, Offered>();

  const refuse = (session: ClientSession, refusal: Refusal) => session.close(refusalError(refusal));

  /** The verifier's verdict on a proof, the nonce bookkeeping and the answer; carrier-independent. */
  function judge(session: ClientSession, el: XmlElement): Judgement {
    const limited = enforcement.rateLimited(session.remoteAddress);
    if (limited) return { kind: "refused", refusal: limited };
    const state = offered.get(session);
    if (!state || state.used || state.streamId !== session.streamId) {
      const refusal: Refusal = {
        reason: "bad-proof",
        text: state?.used
          ? "this stream's nonce has been used: one proof per stream"
          : "no licence nonce was offered on this stream",
      };
      enforcement.proofFailed(session.remoteAddress, refusal);
      return { kind: "refused", refusal };
    }
    state.used = true;
    const parsed = parseProof(el);
    if (!parsed.ok) {
      const refusal: Refusal = { reason: "bad-proof", text: parsed.text };
      enforcement.proofFailed(session.remoteAddress, refusal);
      return { kind: "refused", refusal };
    }
    // The client names the binding it used when it is not the first offered.
    const bindingType = parsed.claim.bindingType ?? state.bindingTypes[0];
    if (bindingType !== undefined && !state.bindingTypes.includes(bindingType)) {
      const refusal: Refusal = {
        reason: "bad-proof",
        text: `the ${bindingType} channel binding was not offered on this stream`,
      };
      enforcement.proofFailed(session.remoteAddress, refusal);
      return { kind: "refused", refusal };
    }
    const admission = enforcement.admitProof(session, {
      // A proof signs the served domain the client's stream is for.
      domain: session.domain ?? domain,
      streamId: state.streamId,
      nonce: state.nonce,
      bindingType,
      bindingData: bindingType === undefined ? undefined : session.channelBinding(bindingType),
      proof: parsed.claim,
    });
    if (!admission.ok) {
      if ("refusal" in admission) return { kind: "refused", refusal: admission.refusal };
      if (state.ticketRefused || parsed.claim.ticket === undefined) {
        return { kind: "refused", refusal: { reason: "bad-proof", text: admission.ticketRefused } };
      }
      // Not an attack, just an old ticket: the same nonce may carry one signed proof.
      state.used = false;
      state.ticketRefused = true;
      return { kind: "ticket-refused", text: admission.ticketRefused };
    }
    setClientInfo(session, admission.info);
    return {
      kind: "accepted",
      answer: successElement(admission.recommended, enforcement.issueTicket(session, admission)),
    };
  }

  return {
    forget(session) {
      offered.delete(session);
    },
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
      const judgement = judge(session, el);
      if (judgement.kind === "refused") return refuse(session, judgement.refusal);
      session.send(judgement.kind === "accepted" ? judgement.answer : ticketRefusedElement(judgement.text));
    },
    // A <proof/> where no nonce is offered — before TLS, or once authenticated — is a refused
    // proof like any other (protocol §2.4), so the client sees the licensing condition.
    outOfStage(session, el) {
      if (el.name !== "proof") return undefined;
      const refusal: Refusal = {
        reason: "bad-proof",
        text: session.authenticated
          ? "no licence nonce was offered on this stream: the proof comes after TLS and before authentication"
          : "no licence nonce was offered on this stream: the proof comes after TLS (use STARTTLS first)",
      };
      enforcement.proofFailed(session.remoteAddress, refusal);
      return refusalError(refusal);
    },
    // The second carrier (protocol §2.6): the same <proof/> inside a SASL2 <authenticate/>,
    // judged before the mechanism starts; the answer rides in the SASL2 <success/>.
    sasl2: {
      // The <licence/> feature (and its nonce) is offered beside SASL2 on every pre-auth stream.
      offer: () => x("licence", { xmlns: NS_LICENCE }),
      authenticate(session, el) {
        if (el.name !== "proof") return undefined;
        const judgement = judge(session, el);
        if (judgement.kind === "refused") {
          refuse(session, judgement.refusal);
          return undefined;
        }
        if (judgement.kind === "ticket-refused") {
          return { refused: { text: judgement.text, element: ticketRefusedElement(judgement.text) } };
        }
        return { answer: judgement.answer };
      },
    },
  };
}
