/**
 * Load generator process: started by the bench orchestrator with an IPC channel, it runs one
 * command at a time and replies with its result and its own CPU cost.
 */
import type { ConnectionTarget } from "./connection.js";
import { federatedThroughput, openLinks } from "./federated.js";
import { latency, throughput } from "./messages.js";
import type { AccountSet, LoadCommand, LoadReply, PhaseCost } from "./protocol.js";
import { ScramKeyCache } from "./scram.js";
import { SessionPool } from "./sessions.js";

if (!process.send) {
  console.error("the load generator is started by bench/run.js (it needs an IPC channel)");
  process.exit(2);
}

const cache = new ScramKeyCache();
let pool: SessionPool | undefined;
/** What `pool` was configured with (the links phase logs in to other domains of that server). */
let configured: { target: ConnectionTarget; accounts: AccountSet } | undefined;
/** The recipients' pool of the federated phases. */
let peer: SessionPool | undefined;

function requirePool(): SessionPool {
  if (!pool) throw new Error("not configured");
  return pool;
}

function requirePeer(): SessionPool {
  if (!peer) throw new Error("no peer configured");
  return peer;
}

async function releaseAll(): Promise<void> {
  await Promise.all([pool?.release(), peer?.release()]);
}

async function measured<T extends object>(work: () => Promise<T>): Promise<T & PhaseCost> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await work();
  const cpu = process.cpuUsage(cpu0);
  return { ...result, wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function handle(cmd: LoadCommand): Promise<LoadReply> {
  switch (cmd.op) {
    case "configure":
      if (pool) await pool.release();
      pool = new SessionPool(cmd.target, cmd.accounts, cache, cmd.second);
      configured = { target: cmd.target, accounts: cmd.accounts };
      return { ok: true, result: null };
    case "configure-peer":
      if (peer) await peer.release();
      peer = new SessionPool(cmd.target, cmd.accounts, cache);
      return { ok: true, result: null };
    case "hold-peer": {
      const p = requirePeer();
      return { ok: true, result: await measured(() => p.hold(cmd.count, cmd.concurrency)) };
    }
    case "federated": {
      const [p, q] = [requirePool(), requirePeer()];
      return { ok: true, result: await measured(() => federatedThroughput(p, q, cmd.messages, cmd.window)) };
    }
    case "links": {
      const q = requirePeer();
      const c = configured;
      if (!c) throw new Error("not configured");
      return {
        ok: true,
        result: await measured(() => openLinks(c.target, c.accounts, cmd.domains, cmd.concurrency, q, cache)),
      };
    }
    case "hold": {
      const p = requirePool();
      return { ok: true, result: await measured(() => p.hold(cmd.count, cmd.concurrency)) };
    }
    case "release":
      requirePool();
      await releaseAll();
      return { ok: true, result: null };
    case "logins": {
      const p = requirePool();
      return { ok: true, result: await measured(() => p.logins(cmd.count, cmd.concurrency, cmd.accounts)) };
    }
    case "throughput": {
      const p = requirePool();
      return {
        ok: true,
        result: await measured(() => throughput(p, cmd.messages, cmd.window, cmd.recipientsFrom)),
      };
    }
    case "latency": {
      const p = requirePool();
      return { ok: true, result: await measured(() => latency(p, cmd.rate, cmd.durationMs)) };
    }
    case "licence":
      requirePool().setLicence(cmd.credentials);
      return { ok: true, result: null };
    case "exit":
      await releaseAll();
      return { ok: true, result: null };
  }
}

// Commands are handled strictly one after the other.
let queue: Promise<void> = Promise.resolve();
process.on("message", (cmd: LoadCommand) => {
  queue = queue.then(async () => {
    let reply: LoadReply;
    try {
      reply = await handle(cmd);
    } catch (err) {
      reply = { ok: false, error: (err as Error).stack ?? String(err) };
    }
    process.send?.(reply);
    if (cmd.op === "exit") process.disconnect();
  });
});
// The orchestrator going away ends the generator (and with it every client socket).
process.on("disconnect", () => process.exit(0));
