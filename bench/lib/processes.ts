/**
 * Child processes and temporary directories of a bench run, all released however the run ends
 * (normal exit, exception, Ctrl-C): every child is killed and every temp dir removed.
 * Also: CPU pinning, waiting for a port, and reading a process's RSS and CPU time from /proc.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

function releaseAllSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", releaseAllSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal}, stopping everything it started`);
      releaseAllSync();
      process.exit(130);
    });
  }
}

/** Counts `child` among the processes killed however the run ends (e.g. a long `user import`). */
export function trackChild(child: ChildProcess): void {
  installHooks();
  children.add(child);
  child.on("exit", () => children.delete(child));
}

export function makeTempDir(label: string): string {
  installHooks();
  const dir = mkdtempSync(path.join(os.tmpdir(), `switchboard-bench-${label}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export interface SpawnPinnedOptions {
  cpu: number;
  cwd?: string;
  /** File receiving stdout and stderr, or "inherit" (output is discarded when absent). */
  logFile?: string;
  ipc?: boolean;
  env?: NodeJS.ProcessEnv;
}

let niceness = 0;

/**
 * Scheduling niceness of every process spawnPinned starts from now on (0: unchanged). A
 * negative value (root only) keeps other work on a shared machine from taking the CPUs the
 * measured processes are pinned to.
 */
export function setNiceness(n: number): void {
  niceness = n;
}

/**
 * Starts `command args` on one CPU. nice and taskset exec the command, so the child's pid is
 * the command's own pid (what /proc is read for). With a niceness set, the child also gets a
 * session of its own and that session's autogroup gets the niceness: where the kernel groups
 * scheduling by session (sched_autogroup), a process's own nice value only ranks it against
 * its own session, not against other people's work.
 */
export function spawnPinned(command: string, args: string[], opts: SpawnPinnedOptions): ChildProcess {
  installHooks();
  const out = opts.logFile === "inherit" ? "inherit" : opts.logFile ? openSync(opts.logFile, "a") : "ignore";
  const stdio: ("ignore" | "inherit" | "ipc" | number)[] = ["ignore", out, out];
  if (opts.ipc) stdio.push("ipc");
  const pinned = ["taskset", "-c", String(opts.cpu), command, ...args];
  const argv = niceness !== 0 ? ["nice", "-n", String(niceness), ...pinned] : pinned;
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    stdio,
    env: opts.env ?? process.env,
    detached: niceness !== 0,
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  if (niceness !== 0 && child.pid !== undefined) setAutogroupNice(child.pid, niceness);
  return child;
}

function setAutogroupNice(pid: number, nice: number): void {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      console.error(`bench: cannot set the scheduling group niceness of ${pid}: ${(err as Error).message}`);
    }
  }
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<{ graceful: boolean }> {
  if (child.exitCode !== null || child.signalCode !== null) return { graceful: true };
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
  if ((await Promise.race([exited, timer])) === "timeout") {
    child.kill("SIGKILL");
    await exited;
    return { graceful: false };
  }
  return { graceful: true };
}

/** Pins every thread of this process to `cpus` (a taskset list such as "1" or "0-1"). */
export function pinSelf(cpus: string): void {
  spawnSync("taskset", ["-a", "-p", "-c", cpus, String(process.pid)], { stdio: "ignore" });
}

export function tasksetAvailable(): boolean {
  return spawnSync("taskset", ["-V"], { stdio: "ignore" }).status === 0;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Resolves once host:port accepts a TCP connection; rejects if the child exits or on timeout. */
export async function waitForPort(
  host: string,
  port: number,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`process exited (code ${child.exitCode}, signal ${child.signalCode}) before listening`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, host);
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resident set size in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** User + system CPU time of a process in milliseconds (from /proc/PID/stat). */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** CPU time (ms) of every process named `comm` (as /proc/PID/comm has it), by pid. */
export function processCpu(comm: string): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === comm)
        cpu.set(Number(entry), cpuTimeMs(Number(entry)));
    } catch {
      // the process ended meanwhile
    }
  }
  return cpu;
}

/**
 * CPU time the processes named like those in `before` used since it was read: of those still
 * there, and all of those started since. A process that ended meanwhile takes its share with it
 * (summing totals instead would count its whole life against the interval, negatively).
 */
export function processCpuSince(before: Map<number, number>, comm: string): number {
  let total = 0;
  for (const [pid, ms] of processCpu(comm)) total += ms - (before.get(pid) ?? 0);
  return total;
}

/**
 * Waits at least `minMs`, then until RSS stops moving (five samples 500 ms apart within 1 % of
 * each other), at most `maxMs` in all, and returns the last sample. The minimum leaves time for
 * deferred work after a burst (garbage collection, buffers released).
 */
export async function settledRss(pid: number, minMs = 5_000, maxMs = 20_000): Promise<number> {
  const t0 = Date.now();
  const samples: number[] = [rssBytes(pid)];
  while (Date.now() - t0 < maxMs) {
    await sleep(500);
    samples.push(rssBytes(pid));
    const last = samples.slice(-5);
    const stable = last.length === 5 && Math.max(...last) - Math.min(...last) <= 0.01 * Math.max(...last);
    if (stable && Date.now() - t0 >= minMs) break;
  }
  return samples[samples.length - 1]!;
}

/**
 * Waits until a process has stayed under `maxPct` % of one CPU for `quietMs` (sampled every
 * 100 ms), at most `maxMs`, and returns how long that took. After a flood a server may still be
 * working off what the flood left (commits, log checkpoints, garbage collection); a paced phase
 * that starts meanwhile measures that aftermath in its first messages, not the paced rate.
 */
export async function quietProcess(pid: number, maxPct = 5, quietMs = 500, maxMs = 15_000): Promise<number> {
  const t0 = performance.now();
  let quietSince = t0;
  let cpu = cpuTimeMs(pid);
  let at = t0;
  while (performance.now() - t0 < maxMs) {
    await sleep(100);
    const now = performance.now();
    const next = cpuTimeMs(pid);
    if (((next - cpu) / (now - at)) * 100 > maxPct) quietSince = now;
    cpu = next;
    at = now;
    if (now - quietSince >= quietMs) break;
  }
  return performance.now() - t0;
}

/**
 * Busy time of one CPU in milliseconds since boot (user, nice, system, irq, softirq, steal from
 * /proc/stat), whoever used it: minus the server's own CPU time it shows other load on that CPU.
 */
export function cpuBusyMs(cpu: number): number {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`no cpu${cpu} in /proc/stat`);
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
  return (busy * 1000) / CLOCK_TICKS;
}

/** Share (%) of each listed CPU that was busy over `ms` milliseconds. */
export async function cpuBusyShare(cpus: number[], ms: number): Promise<number[]> {
  const before = cpus.map(cpuBusyMs);
  const t0 = performance.now();
  await sleep(ms);
  const wall = performance.now() - t0;
  return cpus.map((c, i) => ((cpuBusyMs(c) - before[i]!) / wall) * 100);
}

/**
 * Time the main thread of a process spent runnable but waiting for a CPU, in milliseconds
 * (second field of /proc/PID/schedstat). The main thread only: a runtime's helper threads
 * pinned to the same CPU (garbage collection, say) would count the process against itself.
 */
export function runQueueWaitMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
}
