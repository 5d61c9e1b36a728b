/** Server-side SASL: mechanisms, credentials, and channel-binding advertisement. */
export { CHANNEL_BINDING_TYPES, channelBindingFeature, NS_SASL_CB } from "./channel-binding.js";
export {
  type DeriveOptions,
  deriveCredentials,
  deriveCredentialsAsync,
  PasswordError,
  SALT_BYTES,
  verifyPassword,
  verifyPasswordAsync,
} from "./credentials.js";
export {
  mechanismsFor,
  type SaslContext,
  type SaslExchange,
  type SaslFailureCondition,
  type SaslMechanism,
  type SaslResult,
  SUPPORTED_MECHANISMS,
  selectMechanism,
} from "./mechanism.js";
