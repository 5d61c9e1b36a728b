/**
 * Third-party peers the end-to-end tests drive (e.g. slixmpp). A missing peer
 * skips the tests that need it, with a message saying what to install; with
 * SWITCHBOARD_REQUIRE_SERVICES=1 (CI) a missing peer is a failure instead.
 */
import { spawnSync } from "node:child_process";

export const REQUIRE_SERVICES = process.env.SWITCHBOARD_REQUIRE_SERVICES === "1";

/**
 * Checks a peer. Returns false when it is available (so the result can be passed
 * as node:test's `skip` option), or the skip message when it is not. Throws when
 * it is missing and SWITCHBOARD_REQUIRE_SERVICES=1.
 *
 * `check` returns true when available, or false / a reason string when not.
 */
export async function requirePeer(
  name: string,
  check: () => boolean | string | Promise<boolean | string>,
): Promise<false | string> {
  let result: boolean | string;
  try {
    result = await check();
  } catch (err) {
    result = (err as Error).message;
  }
  if (result === true) return false;
  const why = typeof result === "string" ? `: ${result}` : "";
  const message = `${name} is not available${why}`;
  if (REQUIRE_SERVICES) {
    throw new Error(`${message} (required because SWITCHBOARD_REQUIRE_SERVICES=1)`);
  }
  return `${message} (set SWITCHBOARD_REQUIRE_SERVICES=1 to make this a failure)`;
}

/** True when `command args…` runs and exits 0; otherwise the reason. */
export function commandSucceeds(command: string, args: string[]): true | string {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 30_000 });
  if (r.error) return `${command}: ${r.error.message}`;
  if (r.status !== 0)
    return `${command} ${args.join(" ")} exited with ${r.status}: ${(r.stderr ?? "").trim().split("\n").at(-1)}`;
  return true;
}
