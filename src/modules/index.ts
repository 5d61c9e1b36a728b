/**
 * The standard module set, in load order. Adding a feature is adding a folder
 * under src/modules and one line here.
 */
import type { ModuleDefinition } from "../core/module.js";
import message from "./message/index.js";
import offline from "./offline/index.js";

export const standardModules: ModuleDefinition<unknown>[] = [message, offline] as ModuleDefinition<unknown>[];
