/**
 * A network namespace of its own (Linux, root: `unshare --net`), with only a loopback
 * interface: a server started in it listens on the default ports (5222, 5223, 5280) without
 * meeting other servers of the machine, and processes entered into it (`nsenter`) reach it
 * at 127.0.0.1 and ::1 as a user's would.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export class NetworkNamespace {
  private constructor(private readonly holder: ChildProcess) {}

  /** A new namespace with its loopback up, or the reason there is none. */
  static async create(): Promise<NetworkNamespace | string> {
    const holder = spawn(
      "unshare",
      ["--net", "--", "sh", "-c", "ip link set lo up && echo up && exec sleep 86400"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    holder.stderr!.on("data", (d) => {
      stderr += d;
    });
    const up = await new Promise<boolean>((resolve) => {
      holder.once("error", () => resolve(false));
      holder.once("exit", () => resolve(false));
      createInterface({ input: holder.stdout! }).once("line", (l) => resolve(l === "up"));
    });
    if (!up) {
      holder.kill("SIGKILL");
      return `unshare --net failed (a network namespace needs root and util-linux): ${stderr.trim() || "no output"}`;
    }
    return new NetworkNamespace(holder);
  }

  /** Runs a command inside the namespace. */
  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess {
    return spawn("nsenter", [`--net=/proc/${this.holder.pid}/ns/net`, "--", command, ...args], options);
  }

  close(): void {
    this.holder.kill("SIGKILL");
  }
}
