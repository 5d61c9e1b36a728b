/**
 * profanity (Debian's console XMPP client, libstrophe underneath) as a test peer, driven
 * in a tmux session of its own: the test reads what its screen shows (`tmux capture-pane`)
 * and types into it. Each instance has its own home directory (accounts file, logs) and
 * its own tmux server (`tmux -L`), so nothing of the user's or another test's is touched.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestServer } from "./server.js";
import { commandSucceeds, requirePeer } from "./services.js";

/** false when profanity and tmux can be used, else why the tests needing them are skipped. */
export const profanitySkip = await requirePeer("profanity in tmux", () => {
  const tmux = commandSucceeds("tmux", ["-V"]);
  if (tmux !== true) return `install the Debian package tmux (${tmux})`;
  const profanity = commandSucceeds("profanity", ["--version"]);
  if (profanity !== true) return `install the Debian package profanity (${profanity})`;
  return true;
});

let seq = 0;
/** tmux servers started and not yet stopped: ended with the test process whatever happens. */
const running = new Set<string>();
process.once("exit", () => {
  for (const socket of running) tmux(socket, ["kill-server"]);
});

export class ProfanityScreen {
  private constructor(
    readonly label: string,
    private readonly socket: string,
    private readonly home: string,
  ) {}

  /**
   * Starts profanity on an account of `server` (auto-connect with `-a`). `tls.policy=trust`:
   * the test server's certificate is self-signed.
   */
  static start(server: TestServer, login: { user: string; password: string; resource: string }) {
    const home = mkdtempSync(path.join(os.tmpdir(), "switchboard-profanity-"));
    mkdirSync(path.join(home, "config/profanity"), { recursive: true });
    mkdirSync(path.join(home, "data/profanity"), { recursive: true });
    writeFileSync(
      path.join(home, "data/profanity/accounts"),
      [
        `[${login.user}]`,
        "enabled=true",
        `jid=${login.user}@${server.domain}`,
        `server=${server.host}`,
        `port=${server.c2sPort}`,
        `resource=${login.resource}`,
        `password=${login.password}`,
        "tls.policy=trust",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const socket = `switchboard-test-${process.pid}-${++seq}`;
    const env = `HOME=${home} XDG_CONFIG_HOME=${home}/config XDG_DATA_HOME=${home}/data TERM=xterm-256color`;
    // Wide, so that a line of text stays one line on the screen.
    const started = tmux(socket, [
      "new-session",
      "-d",
      "-s",
      "profanity",
      "-x",
      "400",
      "-y",
      "60",
      `env ${env} profanity -a ${login.user}`,
    ]);
    if (started.status !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`);
    running.add(socket);
    return new ProfanityScreen(`${login.user}/${login.resource} (profanity)`, socket, home);
  }

  /** The screen's text now, wrapped lines joined. */
  screen(): string {
    const r = tmux(this.socket, ["capture-pane", "-p", "-J", "-t", "profanity"]);
    return r.status === 0 ? r.stdout : "";
  }

  /** Waits until the screen matches; returns the match. */
  async waitFor(pattern: RegExp, what: string, ms = 20_000): Promise<RegExpMatchArray> {
    const until = Date.now() + ms;
    for (;;) {
      const m = this.screen().match(pattern);
      if (m) return m;
      if (Date.now() > until) {
        throw new Error(`${this.label}: ${what} not on the screen within ${ms / 1000} s:\n${this.screen()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Types a line (a command or a message) and Enter. */
  type(line: string): void {
    tmux(this.socket, ["send-keys", "-t", "profanity", "-l", line]);
    tmux(this.socket, ["send-keys", "-t", "profanity", "Enter"]);
  }

  /** Quits profanity and removes its tmux server and home directory. */
  async stop(): Promise<void> {
    this.type("/quit");
    await new Promise((r) => setTimeout(r, 500));
    tmux(this.socket, ["kill-server"]);
    running.delete(this.socket);
    rmSync(this.home, { recursive: true, force: true });
  }
}

function tmux(socket: string, args: string[]) {
  return spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8", timeout: 10_000 });
}
