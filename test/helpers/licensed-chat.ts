/**
 * The example chat client (sdk/examples/licensed-chat.ts) and the Python proof
 * example (docs/examples/licence_proof.py) as child processes: what they print,
 * line by line, what they are told on stdin, and how they exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { Inbox, WAIT_MS } from "./inbox.js";
import type { AppCredentials } from "./licensed-setup.js";
import { REPO_ROOT, type TestServer } from "./server.js";
import { PYTHON } from "./slix-client.js";

export const CHAT_EXAMPLE = path.join(REPO_ROOT, "dist/sdk/examples/licensed-chat.js");
export const PYTHON_EXAMPLE = path.join(REPO_ROOT, "docs/examples/licence_proof.py");

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export class ExampleProcess {
  /** Lines printed on stdout, in order. */
  readonly lines: Inbox<string>;
  readonly exited: Promise<number | null>;
  private stderr = "";

  constructor(
    readonly proc: ChildProcess,
    readonly label: string,
    logFile: string,
  ) {
    running.add(proc);
    this.lines = new Inbox<string>(label, (l) => l);
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      appendFileSync(logFile, `[${label}] ${line}\n`);
      this.lines.push(line);
    });
    proc.stderr!.on("data", (d: Buffer) => {
      this.stderr += d.toString();
      appendFileSync(logFile, `[${label} stderr] ${d}`);
    });
    proc.stdin!.on("error", () => undefined);
    // "close", not "exit": by then everything it printed has been read.
    this.exited = new Promise((resolve) => {
      proc.once("close", (code) => {
        running.delete(proc);
        this.lines.close(`exited with code ${code}`);
        resolve(code);
      });
    });
  }

  /** The next printed line matching `re`. */
  line(re: RegExp, what: string, timeoutMs = WAIT_MS): Promise<string> {
    return this.lines.next((l) => re.test(l), what, timeoutMs);
  }

  write(line: string): void {
    this.proc.stdin!.write(line + "\n");
  }

  /** Ends its input (what Ctrl-D does in a terminal, or the end of a piped script). */
  endInput(): void {
    this.proc.stdin!.end();
  }

  /** The exit code, waiting at most `timeoutMs`. */
  async exitCode(timeoutMs = WAIT_MS): Promise<number | null> {
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs).unref());
    const code = await Promise.race([this.exited, timeout]);
    if (code === "timeout") {
      this.proc.kill("SIGKILL");
      throw new Error(`${this.label} did not exit within ${timeoutMs / 1000} s; stderr: ${this.stderr}`);
    }
    return code;
  }

  kill(): void {
    this.proc.kill("SIGKILL");
  }

  get errors(): string {
    return this.stderr;
  }
}

function passwordFile(server: TestServer, user: string, password: string): string {
  const file = path.join(server.dataDir, `${user}.password`);
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return file;
}

/** Starts the example chat client, logged in as `user` with the app's key. */
export function startChatExample(
  server: TestServer,
  opts: {
    user: string;
    password: string;
    app: AppCredentials;
    version: string;
    resource?: string;
    to?: string;
    /** Default true: the test server's certificate is self-signed. */
    insecure?: boolean;
    /** Default: the server's STARTTLS port. */
    service?: string;
  },
): ExampleProcess {
  const args = [
    CHAT_EXAMPLE,
    "--jid",
    `${opts.user}@${server.domain}`,
    "--password-file",
    passwordFile(server, opts.user, opts.password),
    "--key",
    opts.app.keyFile,
    "--client-id",
    opts.app.clientId,
    "--key-id",
    opts.app.keyId,
    "--version",
    opts.version,
    "--platform",
    "linux",
    "--service",
    opts.service ?? `xmpp://${server.host}:${server.c2sPort}`,
    "--resource",
    opts.resource ?? "cli",
  ];
  if (opts.insecure ?? true) args.push("--insecure");
  if (opts.to) args.push("--to", opts.to);
  const proc = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
  return new ExampleProcess(proc, `licensed-chat ${opts.user} ${opts.version}`, server.logFile);
}

/** Runs the Python example once (it logs in, prints the outcome and disconnects). */
export function runPythonExample(
  server: TestServer,
  opts: { user: string; password: string; app: AppCredentials; version: string },
): ExampleProcess {
  const args = [
    PYTHON_EXAMPLE,
    "--jid",
    `${opts.user}@${server.domain}/py`,
    "--password-file",
    passwordFile(server, opts.user, opts.password),
    "--key",
    opts.app.keyFile,
    "--client-id",
    opts.app.clientId,
    "--key-id",
    opts.app.keyId,
    "--version",
    opts.version,
    "--host",
    server.host,
    "--port",
    String(server.c2sPort),
    "--insecure",
  ];
  const proc = spawn(PYTHON, args, {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" },
  });
  return new ExampleProcess(proc, `licence_proof.py ${opts.user} ${opts.version}`, server.logFile);
}
