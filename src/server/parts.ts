/**
 * The standard parts of a Switchboard server, as lists the assembly (server.ts) and the
 * CLI receive: the modules, the HTTP faces, and every admin command (the core's, the
 * modules', the programme's), in the order `switchboard --help` lists them.
 */
import { clusterDrainCommand, clusterStatusCommand } from "../cluster/index.js";
import { accountCommands, adminCommands, storageCommands } from "../commands/index.js";
import type { CommandDefinition } from "../core/commands.js";
import type { ModuleDefinition } from "../core/module.js";
import { standardHttpPlugins } from "../http/index.js";
import { standardModules } from "../modules/index.js";
import { programmeCommands } from "../programme/index.js";

export { standardHttpPlugins, standardModules };

/** Every command of a server running `modules`. */
export function commandsOf(modules: readonly ModuleDefinition<unknown>[]): CommandDefinition<never>[] {
  return [
    ...accountCommands,
    ...modules.flatMap((m) => m.commands ?? []),
    ...(programmeCommands as CommandDefinition<never>[]),
    ...adminCommands,
    ...storageCommands,
    clusterStatusCommand as CommandDefinition<never>,
    clusterDrainCommand as CommandDefinition<never>,
  ];
}

export const allCommands: CommandDefinition<never>[] = commandsOf(standardModules);
