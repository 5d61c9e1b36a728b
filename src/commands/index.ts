/** Every admin command, in the order `switchboard --help` lists them. */
import { licensingCommands } from "../modules/licensing/commands.js";
import { statsCommands } from "../modules/licensing/stats-commands.js";
import { programmeCommands } from "../programme/commands.js";
import { adminCommands } from "./admin.js";
import type { CommandDefinition } from "./command.js";
import { storageCommands } from "./storage.js";
import { userSessionCommands } from "./user-sessions.js";
import { userCommands } from "./users.js";

export const allCommands: CommandDefinition<never>[] = [
  ...userCommands,
  ...userSessionCommands,
  ...licensingCommands,
  ...statsCommands,
  ...programmeCommands,
  ...adminCommands,
  ...storageCommands,
] as CommandDefinition<never>[];
