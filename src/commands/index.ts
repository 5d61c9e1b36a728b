/** The core's own admin commands: accounts and their sessions, admin roles and API tokens. Modules declare theirs. */
import type { CommandDefinition } from "../core/commands.js";
import { adminCommands as admin } from "./admin.js";
import { storageCommands as storage } from "./storage.js";
import { userSessionCommands } from "./user-sessions.js";
import { userCommands } from "./users.js";

export const accountCommands = [...userCommands, ...userSessionCommands] as CommandDefinition<never>[];
export const adminCommands = admin as CommandDefinition<never>[];
export const storageCommands = storage as CommandDefinition<never>[];
