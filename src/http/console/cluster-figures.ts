/**
 * The cluster's figures on the dashboard: every node's sessions and messages per minute and
 * their sums, from `cluster status --quick` (the nodes' heartbeats, the same source as the
 * CLI's `cluster status`). A node's figures are those of its last heartbeat; one that missed
 * two is shown as not answering. The page waits at most CLUSTER_FIGURES_TIMEOUT_MS for NATS,
 * then shows this node's own figures and says why the cluster's are missing.
 */

import type { FastifyRequest } from "fastify";
import type { ClusterStatus } from "../../cluster/commands.js";
import { badge, table } from "../assets/components.js";
import { html, type SafeHtml } from "../html.js";
import type { ConsoleEnv } from "./env.js";

/** How long the dashboard waits for the cluster's figures. */
export const CLUSTER_FIGURES_TIMEOUT_MS = 2_000;

/** The cluster's figures, or why there are none; undefined on a single server. */
export type ClusterFigures = { status: ClusterStatus } | { unavailable: string } | undefined;

export async function clusterFigures(env: ConsoleEnv, request: FastifyRequest): Promise<ClusterFigures> {
  if (env.deps.config.cluster.url === undefined) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ unavailable: string }>((resolve) => {
    timer = setTimeout(
      () => resolve({ unavailable: `NATS did not answer within ${CLUSTER_FIGURES_TIMEOUT_MS / 1000} s` }),
      CLUSTER_FIGURES_TIMEOUT_MS,
    );
  });
  const read = env
    .data<ClusterStatus>(request, "cluster status", { quick: true })
    .then((status) =>
      status.nats.ok ? { status } : { unavailable: `NATS unreachable: ${status.nats.error ?? "no answer"}` },
    )
    .catch((err: unknown) => ({ unavailable: (err as Error).message }));
  try {
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function state(n: ClusterStatus["nodes"][number]): SafeHtml {
  if (!n.answering) return badge(`not answering (last heard ${seconds(n.heartbeatAgeMs)} ago)`, "bad");
  if (n.draining) return badge("draining", "warn");
  return badge("answering", "ok");
}

/** The per-node breakdown with its total. */
export function nodesSection(figures: ClusterFigures): SafeHtml {
  if (figures === undefined) return html``;
  if ("unavailable" in figures)
    return html`<section aria-labelledby="nodes-heading" data-testid="cluster-nodes">
      <h2 id="nodes-heading">Nodes</h2>
      <div class="flash flash-warning" role="status" data-testid="cluster-unavailable"><p>The cluster's figures are unavailable (${figures.unavailable}): the messages per minute above are this node's only.</p></div>
    </section>`;
  const { status } = figures;
  const rate = (n: number | undefined) => (n === undefined ? "—" : Math.round(n));
  return html`<section aria-labelledby="nodes-heading" data-testid="cluster-nodes">
    <h2 id="nodes-heading">Nodes</h2>
    ${table({
      caption: "Sessions and messages per minute of each node of the cluster, as its last heartbeat said",
      captionHidden: true,
      head: ["Node", "Sessions", "Messages per minute", "State"],
      numeric: [1, 2],
      rows: [
        ...status.nodes.map((n) => [n.name, n.sessions, rate(n.messagesPerMinute), state(n)]),
        [html`<strong>All nodes</strong>`, status.sessions, rate(status.messagesPerMinute), ""],
      ],
      empty: "No node has a live heartbeat.",
      testid: "cluster-nodes-table",
    })}
  </section>`;
}
