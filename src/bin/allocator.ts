/**
 * Which malloc the server process runs on, for its start log. The `bin/switchboard` launcher
 * preloads jemalloc for `start` when it is installed and says why in SWITCHBOARD_ALLOCATOR_NOTE
 * when it did not; what is mapped into the process is the truth either way (a library the
 * dynamic loader could not preload is ignored, with a warning of its own).
 */
import { readFileSync } from "node:fs";

export interface AllocatorInUse {
  /** "jemalloc", or "system" for the C library's own malloc. */
  allocator: "jemalloc" | "system";
  /** The jemalloc library mapped into the process. */
  library?: string;
  /** Why the system's malloc is in use. */
  reason?: string;
}

/** Reads the answer from a process's memory map (the text of /proc/PID/maps) and the launcher's note. */
export function allocatorFrom(maps: string, note: string | undefined): AllocatorInUse {
  for (const line of maps.split("\n")) {
    const path = line.slice(line.indexOf("/"));
    if (line.includes("/") && /\/libjemalloc[^/]*\.so/.test(path))
      return { allocator: "jemalloc", library: path };
  }
  return {
    allocator: "system",
    reason:
      note && !note.startsWith("preloaded ")
        ? note
        : note
          ? `${note} but not loaded`
          : "not started by the switchboard launcher",
  };
}

/** This process's allocator; undefined where /proc is not there to tell. */
export function allocatorInUse(env: NodeJS.ProcessEnv = process.env): AllocatorInUse | undefined {
  let maps: string;
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
  } catch {
    return undefined;
  }
  return allocatorFrom(maps, env.SWITCHBOARD_ALLOCATOR_NOTE);
}

/** The start log's line. */
export function allocatorLogLine(a: AllocatorInUse): string {
  return a.allocator === "jemalloc"
    ? `memory allocator: jemalloc (${a.library})`
    : `memory allocator: the system's malloc (${a.reason})`;
}
