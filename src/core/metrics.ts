/**
 * Metrics as data: a module or a core part declares a counter or gauge with a function
 * that reads its values at scrape time (from counters it keeps anyway), so hot paths pay
 * nothing for them. The HTTP layer exports them in the Prometheus format.
 */

export interface MetricDefinition {
  /** e.g. "switchboard_licence_proofs_total" */
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly labelNames?: readonly string[];
  /** The current values: one per label set (a bare number for a metric without labels). */
  collect(): number | Iterable<readonly [Readonly<Record<string, string>>, number]>;
}

export class MetricRegistry {
  private readonly defs: MetricDefinition[] = [];

  /** Adds a metric; returns the function that removes it. A name is declared once. */
  add(def: MetricDefinition): () => void {
    if (this.defs.some((d) => d.name === def.name)) throw new Error(`metric ${def.name} is declared twice`);
    this.defs.push(def);
    return () => {
      const i = this.defs.indexOf(def);
      if (i >= 0) this.defs.splice(i, 1);
    };
  }

  list(): readonly MetricDefinition[] {
    return this.defs;
  }
}
