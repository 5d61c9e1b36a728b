/**
 * Things one node of the cluster owns at a time (a group chat room): a claim in the JetStream
 * KV bucket `PREFIX_owners`, key `SCOPE.base64url(name)` → { node, incarnation }.
 *
 * - A node asking who owns a name reads the claim; without one it creates its own
 *   (create-if-absent: of two nodes racing, one wins and the other reads the winner).
 * - A claim names the owner's incarnation: a claim of a node that is not alive with that
 *   incarnation (dead past the node timeout, restarted, stopped) is taken over by an update
 *   at the revision read, so again one node wins.
 * - Answers are cached while the owner is alive; a node drops its cache of a dead owner's
 *   names with it, so the next stanza reads the bucket again and takes the name over.
 * - A node cut off from NATS may have had its names taken over meanwhile: `verify` reads its
 *   claims again and reports those it lost.
 * - A node taking a name over from a gone owner first lets the scope's module settle what the
 *   owner left (a temporary room's archive), before it serves the name. The first live node
 *   settles a dead node's claims: those the scope's module inherits it takes over at once,
 *   the others it deletes, for the next node that needs them.
 */
import type { KV } from "@nats-io/kv";
import type { TakeoverHandler } from "../core/nodes.js";
import { decodeJson, encodeJson } from "./entry.js";

/** A claim as stored. */
export interface OwnerClaim {
  node: string;
  inc: string;
  at: number;
}

/** What the registry needs to know of the cluster's nodes. */
export interface Liveness {
  readonly node: string;
  readonly inc: string;
  /** Is `node` alive in incarnation `inc` as far as this node already knows (no I/O)? */
  knownAlive(node: string, inc: string): boolean;
  /** The same, asking the nodes bucket when this node does not know (it started a moment ago). */
  alive(node: string, inc: string): Promise<boolean>;
}

function isWrongSequence(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence/i.test(err.message);
}

/** KV keys admit [-/_=.a-zA-Z0-9]: the name in base64url after its scope. */
export function ownerKey(scope: string, name: string): string {
  return `${scope}.${Buffer.from(name, "utf8").toString("base64url") || "_"}`;
}

export class OwnerRegistry {
  /** Claims as last read or made, by key; `revision` is the claim's KV revision. */
  private readonly known = new Map<string, { claim: OwnerClaim; revision: number }>();
  private readonly pending = new Map<string, Promise<string>>();
  readonly stats = { claimed: 0, takenOver: 0 };
  private readonly takeovers = new Map<string, TakeoverHandler>();

  constructor(
    private readonly kv: KV,
    private readonly nodes: Liveness,
    private readonly onError: (err: unknown, what: string) => void = () => undefined,
  ) {}

  /** Sets what this node does with the names of `scope` it takes over from a gone owner. */
  onTakeover(scope: string, handler: TakeoverHandler): () => void {
    this.takeovers.set(scope, handler);
    return () => {
      if (this.takeovers.get(scope) === handler) this.takeovers.delete(scope);
    };
  }

  /** The owner of `name` when this node knows it without asking (itself, or a node it knows alive). */
  ownerNow(scope: string, name: string): string | undefined {
    const k = this.known.get(ownerKey(scope, name));
    if (!k) return undefined;
    const { node, inc } = k.claim;
    if (node === this.nodes.node) return inc === this.nodes.inc ? node : undefined;
    return this.nodes.knownAlive(node, inc) ? node : undefined;
  }

  /** The live node holding `name`'s claim as the bucket has it now, without claiming it (undefined when none does). */
  async holder(scope: string, name: string): Promise<string | undefined> {
    const e = await this.kv.get(ownerKey(scope, name));
    const claim = e?.operation === "PUT" ? decodeJson<OwnerClaim>(e.value) : undefined;
    if (!claim) return undefined;
    const alive =
      claim.node === this.nodes.node
        ? claim.inc === this.nodes.inc
        : await this.nodes.alive(claim.node, claim.inc);
    return alive ? claim.node : undefined;
  }

  /**
   * The node owning `name`; this node claims it when no live node does. `fresh`: read the
   * bucket even when this node knows an owner (which may have given the name up since).
   */
  owner(scope: string, name: string, fresh = false): Promise<string> {
    const now = fresh ? undefined : this.ownerNow(scope, name);
    if (now !== undefined) return Promise.resolve(now);
    const key = ownerKey(scope, name);
    let p = this.pending.get(key);
    if (!p) {
      p = this.resolve(key).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async resolve(key: string): Promise<string> {
    const mine: OwnerClaim = { node: this.nodes.node, inc: this.nodes.inc, at: Date.now() };
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await this.kv.get(key);
      const current = e?.operation === "PUT" ? decodeJson<OwnerClaim>(e.value) : undefined;
      try {
        if (!e || !current) {
          const revision = e
            ? await this.kv.update(key, encodeJson(mine), e.revision)
            : await this.kv.create(key, encodeJson(mine));
          this.known.set(key, { claim: mine, revision });
          this.stats.claimed++;
          return mine.node;
        }
        const self = current.node === mine.node && current.inc === mine.inc;
        if (self || (current.node !== mine.node && (await this.nodes.alive(current.node, current.inc)))) {
          this.known.set(key, { claim: current, revision: e.revision });
          return current.node;
        }
        // Its owner is gone (dead, stopped, or this node's own previous run): taken over.
        const revision = await this.kv.update(key, encodeJson(mine), e.revision);
        this.stats.takenOver++;
        // Until it is known here, this node's stanzas for the name wait (pending); the other
        // nodes' come to this node, and wait too.
        await this.settle(key);
        this.known.set(key, { claim: mine, revision });
        return mine.node;
      } catch (err) {
        if (!isWrongSequence(err)) throw err;
      }
    }
    throw new Error("the claim kept changing under concurrent claims");
  }

  /** Gives up this node's claim of `name` (the thing ended here); the next node to need it claims it. */
  async disown(scope: string, name: string): Promise<void> {
    const key = ownerKey(scope, name);
    const k = this.known.get(key);
    this.known.delete(key);
    if (!k || k.claim.node !== this.nodes.node || k.claim.inc !== this.nodes.inc) return;
    try {
      await this.kv.delete(key, { previousSeq: k.revision });
    } catch (err) {
      if (!isWrongSequence(err)) throw err;
    }
  }

  /** Gives up every claim of this node (it stops or leaves the cluster). */
  async disownAll(): Promise<void> {
    const mine = [...this.known].filter(
      ([, k]) => k.claim.node === this.nodes.node && k.claim.inc === this.nodes.inc,
    );
    this.known.clear();
    for (const [key, k] of mine) {
      await this.kv.delete(key, { previousSeq: k.revision }).catch(() => undefined);
    }
  }

  /** Forgets what this node knew of `node`'s claims (it left): the next use reads the bucket. */
  forgetNode(node: string): void {
    for (const [key, k] of this.known) if (k.claim.node === node) this.known.delete(key);
  }

  /**
   * After this node was cut off: reads its claims again; returns the keys' [scope, name]s
   * another node holds now (it took them over while this node seemed dead).
   */
  async verify(): Promise<string[][]> {
    const lost: string[][] = [];
    for (const [key, k] of [...this.known]) {
      if (k.claim.node !== this.nodes.node) continue;
      const e = await this.kv.get(key);
      const current = e?.operation === "PUT" ? decodeJson<OwnerClaim>(e.value) : undefined;
      if (current?.node === this.nodes.node && current.inc === this.nodes.inc) continue;
      if (!current && e) {
        // Deleted (the first live node cleaned a node it took for dead): claimed again.
        try {
          const revision = await this.kv.update(key, encodeJson(k.claim), e.revision);
          this.known.set(key, { claim: k.claim, revision });
          continue;
        } catch (err) {
          if (!isWrongSequence(err)) throw err;
        }
      }
      this.known.delete(key);
      lost.push(splitKey(key));
    }
    return lost;
  }

  /** Names this node owns now, by scope. */
  owned(scope: string): string[] {
    const out: string[] = [];
    for (const [key, k] of this.known) {
      if (k.claim.node !== this.nodes.node || k.claim.inc !== this.nodes.inc) continue;
      const [s, name] = splitKey(key);
      if (s === scope) out.push(name!);
    }
    return out;
  }

  /** What the scope's module does with a name taken over from a gone owner. */
  private async settle(key: string): Promise<void> {
    const [scope, name] = splitKey(key);
    const handler = this.takeovers.get(scope!);
    if (!handler) return;
    try {
      await handler.takenOver(name!);
    } catch (err) {
      this.onError(err, `settling ${scope} ${name} after its owner left`);
    }
  }

  /**
   * Settles the claims of owners that are gone (`gone`: a dead node's, this node's previous
   * run's), as the bucket holds them (other nodes may have taken some over): a name the
   * scope's module inherits is taken over by this node now; the other claims are deleted, for
   * the next node that needs them.
   */
  async releaseClaims(gone: (claim: OwnerClaim) => boolean): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    for (const key of keys) {
      const e = await this.kv.get(key);
      if (e?.operation !== "PUT") continue;
      const claim = decodeJson<OwnerClaim>(e.value);
      if (!claim || !gone(claim)) continue;
      const [scope, name] = splitKey(key);
      const handler = this.takeovers.get(scope!);
      if (handler && (await handler.inherit(name!))) {
        await this.owner(scope!, name!).catch((err) => this.onError(err, `taking ${scope} ${name} over`));
        continue;
      }
      await this.kv.delete(key, { previousSeq: e.revision }).catch((err) => {
        if (!isWrongSequence(err)) throw err;
      });
    }
  }
}

function splitKey(key: string): string[] {
  const dot = key.indexOf(".");
  return [key.slice(0, dot), Buffer.from(key.slice(dot + 1), "base64url").toString("utf8")];
}
