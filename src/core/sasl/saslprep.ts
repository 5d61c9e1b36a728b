/**
 * SASLprep (RFC 4013) for the strings SASL carries: authentication identities and passwords.
 */
import saslprepImpl from "@mongodb-js/saslprep";

/**
 * Prepares a string; undefined when it holds a prohibited character or fails the bidi rules.
 * Unassigned code points are allowed (RFC 4013 §2.5 "queries") even for stored passwords: the
 * tables are Unicode 3.2, so refusing them would refuse every emoji, and a client that prepares
 * the same password as a query gets the same string.
 */
export function saslprep(input: string): string | undefined {
  try {
    return saslprepImpl(input, { allowUnassigned: true });
  } catch {
    return undefined;
  }
}
