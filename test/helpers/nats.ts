/**
 * The NATS server (with JetStream) the cluster tests use: SWITCHBOARD_TEST_NATS_URL, or the local
 * one on 127.0.0.1:4222. Each test run uses a prefix of its own for the cluster's subjects and
 * buckets, and removes the buckets afterwards. Without a reachable server the tests skip
 * (requirePeer: a failure with SWITCHBOARD_REQUIRE_SERVICES=1).
 */
import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { clusterBuckets } from "../../src/cluster/node.js";
import { requirePeer } from "./services.js";

export const NATS_URL = process.env.SWITCHBOARD_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

const START_HINT =
  "start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- " +
  "-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log " +
  "(or point SWITCHBOARD_TEST_NATS_URL at a server)";

/** False when NATS with JetStream answers, else the skip message (throws with SWITCHBOARD_REQUIRE_SERVICES=1). */
export function natsSkip(): Promise<false | string> {
  return requirePeer(`NATS with JetStream at ${NATS_URL}`, async () => {
    const problem = await jetStreamProblem(NATS_URL);
    return problem === undefined ? true : `${problem}; ${START_HINT}`;
  });
}

/** Undefined when NATS with JetStream answers at `url`, else why not. */
export async function jetStreamProblem(url: string): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: url, timeout: 3_000, maxReconnectAttempts: 0 });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
      return undefined;
    } finally {
      await nc.close();
    }
  } catch (error) {
    return (error as Error).message;
  }
}

/** A prefix for one test run's subjects and buckets. */
export function clusterPrefix(label: string): string {
  return `sbtest_${label}_${randomBytes(4).toString("hex")}`;
}

/** Removes the buckets a cluster with this prefix made. */
export async function removeClusterBuckets(prefix: string, url = NATS_URL): Promise<void> {
  const nc = await connect({ servers: url, timeout: 3_000, maxReconnectAttempts: 0 });
  try {
    const kvm = new Kvm(nc);
    for (const name of clusterBuckets(prefix)) {
      await kvm
        .open(name)
        .then((kv) => kv.destroy())
        .catch(() => undefined);
    }
  } finally {
    await nc.close();
  }
}

/** Waits until `count` nodes of the cluster under `prefix` have a live heartbeat (10 s at most). */
export async function waitForNodes(prefix: string, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await readClusterBuckets(prefix)).nodes.length < count) {
    if (Date.now() > deadline) throw new Error(`the ${count} nodes did not all join`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What a cluster's buckets hold now: the nodes with a live heartbeat, and the session entries per node. */
export async function readClusterBuckets(
  prefix: string,
  url = NATS_URL,
): Promise<{ nodes: string[]; sessions: Record<string, number> }> {
  const nc = await connect({ servers: url, timeout: 3_000, maxReconnectAttempts: 0 });
  try {
    const kvm = new Kvm(nc);
    const read = async (bucket: string) => {
      const kv = await kvm.open(bucket);
      const values: Record<string, unknown>[] = [];
      for await (const key of await kv.keys()) {
        const e = await kv.get(key);
        if (e?.operation === "PUT") values.push(e.json<Record<string, unknown>>());
      }
      return values;
    };
    const nodes = (await read(`${prefix}_nodes`)).map((n) => String(n.node)).sort();
    const sessions: Record<string, number> = {};
    for (const s of await read(`${prefix}_sessions`))
      sessions[String(s.node)] = (sessions[String(s.node)] ?? 0) + 1;
    return { nodes, sessions };
  } finally {
    await nc.close();
  }
}

/** The claims of a cluster's owners bucket in one scope: name → owning node. */
export async function readOwners(
  prefix: string,
  scope: string,
  url = NATS_URL,
): Promise<Record<string, string>> {
  const nc = await connect({ servers: url, timeout: 3_000, maxReconnectAttempts: 0 });
  try {
    const kv = await new Kvm(nc).open(`${prefix}_owners`);
    const out: Record<string, string> = {};
    for await (const key of await kv.keys(`${scope}.>`)) {
      const e = await kv.get(key);
      if (e?.operation !== "PUT") continue;
      const name = Buffer.from(key.slice(scope.length + 1), "base64url").toString("utf8");
      out[name] = String(e.json<{ node: string }>().node);
    }
    return out;
  } finally {
    await nc.close();
  }
}
