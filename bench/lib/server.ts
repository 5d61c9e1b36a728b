/** What the bench needs from a server under test. */
import type { ChildProcess } from "node:child_process";
import type { AccountSet } from "../loadgen/protocol.js";
import type { FeatureSet, Transport } from "./settings.js";

export interface ServerSetup {
  /** Private directory for config, data and logs (removed after the run). */
  dir: string;
  domain: string;
  host: string;
  accounts: AccountSet;
  /** The certificate both servers serve (PEM files; EC P-256, self-signed for the domain). */
  certFile: string;
  keyFile: string;
  /** Which optional features the server runs (see FeatureSet). */
  features: FeatureSet;
}

export interface BenchServer {
  readonly name: string;
  /** Why the server cannot be benchmarked on this machine, or undefined when it can. */
  unavailable(): string | undefined;
  version(): string;
  /** How passwords are stored, e.g. "SCRAM-SHA-1, 10000 iterations". */
  readonly passwordStorage: string;
  /** Writes the configuration and creates the accounts (not measured). */
  prepare(setup: ServerSetup): Promise<void>;
  /**
   * Starts the server pinned to `cpu` with clients on `port` over `transport` (TLS required on
   * the TLS transports, as in production); resolves once that port accepts connections.
   */
  start(cpu: number, port: number, transport: Transport): Promise<ChildProcess>;
  /** Last lines of the server's log, for error reports. */
  logTail(lines: number): string;
  /** The server's log files, to keep after the temp dir is gone. */
  logFiles(): string[];
}
