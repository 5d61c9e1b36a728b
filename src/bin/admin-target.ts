/**
 * The options that make an admin command act on the server the start banner describes:
 * its configuration file, its domain when that came from elsewhere, and its storage. The
 * banner's commands are meant to run as printed, so a storage URL whose password the
 * banner hides is not printed: the file names it, or the command reads it from
 * SWITCHBOARD_STORAGE_URL.
 */
import path from "node:path";
import type { ServerConfig } from "../core/config.js";

/** How the server was started. */
export interface StartedWith {
  /** The --config file, as given. */
  configFile: string | undefined;
  /** The domain came from --domain or SWITCHBOARD_DOMAIN rather than the file or the default. */
  domainGiven: boolean;
  /** The storage came from --storage or SWITCHBOARD_STORAGE_URL rather than the file. */
  storageGiven: boolean;
}

export type TargetConfig = Pick<ServerConfig, "domain" | "dataDir"> & {
  storage: { url?: string | undefined };
};

/** A path as the banner prints it: relative to the current directory when under it. */
export function shownPath(file: string, cwd = process.cwd()): string {
  const absolute = path.resolve(cwd, file);
  const relative = path.relative(cwd, absolute);
  return relative === "" ? "." : relative.startsWith("..") ? absolute : relative;
}

function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== "";
  } catch {
    return false;
  }
}

/** The options, e.g. `--config switchboard.yaml --data-dir data`. */
export function adminTarget(config: TargetConfig, started: StartedWith, cwd = process.cwd()): string {
  const parts: string[] = [];
  if (started.configFile !== undefined) parts.push(`--config ${shownPath(started.configFile, cwd)}`);
  if ((started.configFile === undefined || started.domainGiven) && config.domain !== "localhost")
    parts.push(`--domain ${config.domain}`);
  const url = config.storage.url;
  if (url === undefined) parts.push(`--data-dir ${shownPath(config.dataDir, cwd)}`);
  else if (started.configFile !== undefined && !started.storageGiven) {
    // The file names the storage (a relative sqlite: path is relative to the file).
  } else if (hasPassword(url)) parts.push(`--storage "$SWITCHBOARD_STORAGE_URL"`);
  else parts.push(`--storage '${url}'`);
  return parts.join(" ");
}
