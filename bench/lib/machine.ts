/** Facts about the machine a run was made on, stored with the results. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  prosody: string;
  /** 1-minute load average when the run started (other work on the machine skews figures). */
  loadAverage: number;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match) return match[1]!.trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown";
}

function prosodyPackage(prosodyVersion: string): string {
  const q = spawnSync("dpkg-query", ["-W", `-f=\${Version}`, "prosody"], { encoding: "utf8" });
  const pkg = q.status === 0 ? q.stdout.trim() : "";
  return pkg ? `${prosodyVersion} (Debian ${pkg})` : prosodyVersion;
}

export function machineFacts(prosodyVersion: string | undefined): MachineFacts {
  return {
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    prosody: prosodyVersion ? prosodyPackage(prosodyVersion) : "not installed",
    loadAverage: os.loadavg()[0]!,
  };
}
