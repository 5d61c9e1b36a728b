/**
 * Orchestrator side of the load generator: starts bench/loadgen/main.js as its own node process
 * pinned to the load CPU and sends it commands, one at a time.
 */
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ConnectionTarget } from "../loadgen/connection.js";
import type { LicenceCredentials } from "../loadgen/licence-proof.js";
import type {
  AccountSet,
  HoldResult,
  LatencyResult,
  LinksResult,
  LoadCommand,
  LoadReply,
  LoginsResult,
  SecondTarget,
  ThroughputResult,
} from "../loadgen/protocol.js";
import { spawnPinned, stopProcess } from "./processes.js";

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "loadgen", "main.js");

export class LoadGenerator {
  private readonly child: ChildProcess;
  private pending: { resolve: (r: LoadReply) => void; reject: (e: Error) => void } | undefined;
  private exited = false;

  constructor(cpu: number) {
    this.child = spawnPinned(process.execPath, [MAIN], { cpu, ipc: true, logFile: "inherit" });
    this.child.on("message", (reply: LoadReply) => {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(reply);
    });
    this.child.on("exit", (code, signal) => {
      this.exited = true;
      const p = this.pending;
      this.pending = undefined;
      p?.reject(new Error(`load generator exited (code ${code}, signal ${signal})`));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private async call<T>(cmd: LoadCommand): Promise<T> {
    if (this.exited) throw new Error("load generator is not running");
    if (this.pending) throw new Error("load generator is busy");
    const reply = await new Promise<LoadReply>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(cmd);
    });
    if (!reply.ok) throw new Error(`load generator: ${reply.error}`);
    return reply.result as T;
  }

  /** Sessions of accounts from `second.from` on connect to `second.target` (another cluster node). */
  configure(target: ConnectionTarget, accounts: AccountSet, second?: SecondTarget): Promise<void> {
    return this.call({ op: "configure", target, accounts, ...(second ? { second } : {}) });
  }

  hold(count: number, concurrency: number): Promise<HoldResult> {
    return this.call({ op: "hold", count, concurrency });
  }

  /** The recipients' server of the federated phases. */
  configurePeer(target: ConnectionTarget, accounts: AccountSet): Promise<void> {
    return this.call({ op: "configure-peer", target, accounts });
  }

  holdPeer(count: number, concurrency: number): Promise<HoldResult> {
    return this.call({ op: "hold-peer", count, concurrency });
  }

  federated(messages: number, window: number): Promise<ThroughputResult> {
    return this.call({ op: "federated", messages, window });
  }

  links(domains: string[], concurrency: number): Promise<LinksResult> {
    return this.call({ op: "links", domains, concurrency });
  }

  release(): Promise<void> {
    return this.call({ op: "release" });
  }

  logins(count: number, concurrency: number, accounts: number): Promise<LoginsResult> {
    return this.call({ op: "logins", count, concurrency, accounts });
  }

  /** With `recipientsFrom`, held sessions below it send and those from it on receive. */
  throughput(messages: number, window: number, recipientsFrom?: number): Promise<ThroughputResult> {
    return this.call({ op: "throughput", messages, window, ...(recipientsFrom ? { recipientsFrom } : {}) });
  }

  latency(rate: number, durationMs: number): Promise<LatencyResult> {
    return this.call({ op: "latency", rate, durationMs });
  }

  /** The following logins prove this client licence (null: no proof). */
  licence(credentials: LicenceCredentials | null): Promise<void> {
    return this.call({ op: "licence", credentials });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    try {
      await Promise.race([this.call({ op: "exit" }), new Promise((r) => setTimeout(r, 15_000))]);
    } catch {
      // Exiting while answering is fine.
    }
    await stopProcess(this.child, 2_000);
  }
}
