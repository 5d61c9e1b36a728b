/** What the stream engine needs from the server, besides the transport it runs on. */

import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { ServerConfig } from "../config.js";
import type { ServerEvents } from "../events.js";
import type { StreamFeatureRegistry } from "../features.js";
import type { HookBus } from "../hooks.js";
import type { LoginGuard } from "../login-guard.js";
import type { Router } from "../router.js";
import type { SessionDirectory } from "../session-directory.js";
import type { StanzaFilters } from "../stanza-filters.js";
import type { Storage } from "../storage/types.js";
import type { StreamCounters } from "./counters.js";

export interface StreamServices {
  readonly config: ServerConfig;
  /** The primary served domain. */
  readonly domain: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly storage: Storage;
  readonly hooks: HookBus<ServerEvents>;
  readonly sessions: SessionDirectory;
  readonly router: Router;
  readonly streamFeatures: StreamFeatureRegistry;
  readonly filters: StanzaFilters;
  /** Failed-login limits per address and per account. */
  readonly loginGuard: LoginGuard;
  /** Stanza and login-failure counters (metrics). */
  readonly counters: StreamCounters;
  /** Stable secret for the fake SCRAM salts of unknown accounts (kept in dataDir across restarts). */
  readonly saslDecoySecret: Buffer;
}
