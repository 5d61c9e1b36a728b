/**
 * Command-line options of the small storage benches, with node:util's parseArgs: named string
 * options, numbers checked here (a bad value or an unknown option prints the usage and exits 2).
 */
import { parseArgs } from "node:util";

/** What a number option takes: any number above 0, a whole number from 0, or one from 1. */
export type NumberKind = "positive" | "count" | "positive count";

const ACCEPTS: Record<NumberKind, { test: (n: number) => boolean; says: string }> = {
  positive: { test: (n) => n > 0, says: "a number above 0" },
  count: { test: (n) => Number.isInteger(n) && n >= 0, says: "a whole number" },
  "positive count": { test: (n) => Number.isInteger(n) && n > 0, says: "a whole number above 0" },
};

/** Parses `argv`: each name in `numbers` takes a number of its kind; `strings` are kept as given. */
export function benchOptions<N extends string, S extends string>(
  argv: string[],
  usage: string,
  spec: { numbers: Record<N, { default: number; kind: NumberKind }>; strings: readonly S[] },
): Record<N, number> & Partial<Record<S, string>> {
  const fail = (message: string): never => {
    console.error(`${message}\n${usage}`);
    process.exit(2);
  };
  const names = [...Object.keys(spec.numbers), ...spec.strings];
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(names.map((n) => [n, { type: "string" as const }])),
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    return fail((error as Error).message);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const out: Record<string, number | string> = {};
  for (const [name, rule] of Object.entries(spec.numbers) as [
    string,
    { default: number; kind: NumberKind },
  ][]) {
    const raw = values[name];
    if (raw === undefined) {
      out[name] = rule.default;
      continue;
    }
    const n = Number(raw);
    const accepts = ACCEPTS[rule.kind];
    if (!Number.isFinite(n) || !accepts.test(n)) fail(`--${name} takes ${accepts.says}, not ${String(raw)}`);
    out[name] = n;
  }
  for (const name of spec.strings) if (typeof values[name] === "string") out[name] = values[name];
  return out as Record<N, number> & Partial<Record<S, string>>;
}
