/** Account names as commands take them, and the error for an account that does not exist. */

import { type CommandContext, CommandError } from "../core/commands.js";
import { JidError, normalizeLocal } from "../core/jid.js";

/** The normalised localpart, or a 400 CommandError saying why the name is not valid. */
export function accountName(raw: string): string {
  try {
    return normalizeLocal(raw);
  } catch (err) {
    if (err instanceof JidError) throw new CommandError(`invalid account name "${raw}": ${err.message}`);
    throw err;
  }
}

/** The 404 for an account that does not exist. */
export function noAccount(ctx: CommandContext, name: string): CommandError {
  return new CommandError(`no account ${name}@${ctx.config.domain}`, 404);
}
