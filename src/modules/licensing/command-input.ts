/** What the licensing admin commands share: the registry for a command's storage. */
import type { CommandContext } from "../../core/commands.js";
import { LicensingRegistry } from "../../licensing/index.js";

export { actorOf, flagInput, iso, listInput, parseInstant, table } from "../../commands/input.js";

export function registryOf(ctx: CommandContext): LicensingRegistry {
  return new LicensingRegistry(ctx.storage, ctx.clock);
}
