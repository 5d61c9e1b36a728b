/**
 * The licensing domain's one public entry: the model (publishers, apps, keys, licences,
 * the access policy and its schedule), the registry that stores them with their audit
 * trail, the policy decisions, licence proofs and tickets, client versions, and the client
 * statistics. It knows nothing of streams, commands or pages: the XMPP module
 * (src/modules/licensing) speaks the protocol on top of it, and the programme, the admin
 * commands and the web faces use it only through this file.
 */

export * from "./client-info.js";
export * from "./ed25519.js";
export * from "./errors.js";
export * from "./interconnect.js";
export * from "./key-addresses.js";
export * from "./keys.js";
export * from "./model.js";
export * from "./policy.js";
export * from "./proof.js";
export * from "./protocol.js";
export * from "./registry.js";
export * from "./stats-daily.js";
export * from "./stats-evaluate.js";
export * from "./stats-format.js";
export * from "./stats-live.js";
export * from "./stats-model.js";
export * from "./stats-report.js";
export * from "./tickets.js";
export * from "./version.js";
