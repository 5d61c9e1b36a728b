/** Every admin command, in the order `switchboard --help` lists them. */
import { licensingCommands } from "../modules/licensing/commands.js";
import { statsCommands } from "../modules/licensing/stats-commands.js";
import type { CommandDefinition } from "./command.js";
import { userCommands } from "./users.js";

export const allCommands: CommandDefinition<never>[] = [
  ...userCommands,
  ...licensingCommands,
  ...statsCommands,
] as CommandDefinition<never>[];
