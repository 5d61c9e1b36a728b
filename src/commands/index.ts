/** Every admin command, in the order `switchboard --help` lists them. */
import type { CommandDefinition } from "./command.js";
import { userCommands } from "./users.js";

export const allCommands: CommandDefinition<never>[] = [...userCommands] as CommandDefinition<never>[];
