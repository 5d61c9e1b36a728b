/** A SaslContext over an in-memory account table, for the SASL tests. */
import type { SaslContext } from "../../src/core/sasl/mechanism.js";
import type { ScramCredential, ScramHash } from "../../src/core/storage/types.js";

export interface FakeContextOptions {
  secure?: boolean;
  /** Channel-binding data by type; its keys are the types offered. */
  bindings?: Record<string, Buffer>;
  domain?: string;
  decoySecret?: Buffer;
  iterations?: number;
}

export interface FakeContext extends SaslContext {
  /** Usernames looked up, in order. */
  lookups: string[];
}

export function fakeContext(
  accounts: Record<string, ScramCredential[]>,
  opts: FakeContextOptions = {},
): FakeContext {
  const bindings = opts.bindings ?? {};
  const lookups: string[] = [];
  return {
    lookups,
    secure: opts.secure ?? true,
    domain: opts.domain ?? "example.com",
    decoySecret: opts.decoySecret,
    iterations: opts.iterations,
    accountKey: (local) => local,
    async getCredential(username: string, hash: ScramHash) {
      lookups.push(username);
      return accounts[username]?.find((c) => c.hash === hash);
    },
    channelBinding: (type) => bindings[type],
    channelBindingTypes: () => Object.keys(bindings),
  };
}
