/** Server-side SCRAM-SHA-1 keys from a salted password (RFC 5802 §3). */
import { createHash, createHmac } from "node:crypto";

export function scramServerKeys(saltedPassword: Buffer): { storedKey: Buffer; serverKey: Buffer } {
  const clientKey = createHmac("sha1", saltedPassword).update("Client Key").digest();
  return {
    storedKey: createHash("sha1").update(clientKey).digest(),
    serverKey: createHmac("sha1", saltedPassword).update("Server Key").digest(),
  };
}
