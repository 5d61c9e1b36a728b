/** Account names as commands take them, and the error for an account that does not exist. */

import { type CommandContext, CommandError } from "../core/commands.js";
import type { ServerConfig } from "../core/config.js";
import { accountJid, accountKey, JidError, normalizeDomain, normalizeLocal } from "../core/jid.js";

/**
 * The account key (core/jid.ts accountKey()) of a name a command was given: "alice" (on the
 * primary domain) or "alice@domain" on any served domain; a 400 CommandError says why a name
 * is not valid or names no served domain.
 */
export function accountName(raw: string, config: Pick<ServerConfig, "domain" | "hosts">): string {
  const at = raw.lastIndexOf("@");
  try {
    const local = normalizeLocal(at < 0 ? raw : raw.slice(0, at));
    const domain = at < 0 ? config.domain : normalizeDomain(raw.slice(at + 1));
    if (domain !== config.domain && !config.hosts.some((h) => h.domain === domain))
      throw new CommandError(`invalid account name "${raw}": ${domain} is not a domain served here`);
    return accountKey(local, domain, config.domain);
  } catch (err) {
    if (err instanceof JidError) throw new CommandError(`invalid account name "${raw}": ${err.message}`);
    throw err;
  }
}

/** The bare JID of an account key, as commands show it. */
export function accountAddress(name: string, config: Pick<ServerConfig, "domain">): string {
  return accountJid(name, config.domain).toString();
}

/** The 404 for an account that does not exist. */
export function noAccount(ctx: CommandContext, name: string): CommandError {
  return new CommandError(`no account ${accountAddress(name, ctx.config)}`, 404);
}
