/**
 * Switchboard client SDK: prove a client's licence to a Switchboard network.
 * `licensedClient` wraps @xmpp/client; `licenceProof` and the binding helpers
 * are for clients built on other XMPP libraries.
 */
export { certificateSignatureOid, channelBindingData, serverEndPoint, tlsExporter } from "./binding.js";
export {
  type LicenceAccepted,
  type LicenceOffer,
  type LicenceOptions,
  type LicenceState,
  type LicenceTicket,
  type LicensedClient,
  type LicensedClientOptions,
  licensedClient,
  type TicketStore,
} from "./licensed-client.js";
export {
  type BindingType,
  canonicalProofString,
  LICENCE_NS,
  licenceProof,
  loadPrivateKey,
  PROOF_CONTEXT,
  type ProofInput,
  proofPayload,
  type SignedProofInput,
  ticketProof,
} from "./proof.js";
export {
  LicenceRefusedError,
  licenceRefusal,
  type RefusalCondition,
  refusalFromSaslFailure,
  refusalFromStreamError,
} from "./refusal.js";
export { startOnline } from "./start-online.js";
