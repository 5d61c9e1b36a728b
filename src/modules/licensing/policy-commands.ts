/** `policy show` and `policy set`: the network access policy, its schedule and per-app version rules. */
import { z } from "zod";
import { CommandError, defineCommand } from "../../core/commands.js";
import type {
  AccessPolicy,
  AppVersionRules,
  Instant,
  PolicyMode,
  PolicyStage,
  VersionRange,
} from "../../licensing/index.js";
import {
  checkAccount,
  checkClientId,
  formatVersionRange,
  nextEnforceStage,
  nextStageAfter,
  POLICY_MODES,
  parseVersionRange,
  scheduleRelaxations,
  stageAt,
  VersionError,
} from "../../licensing/index.js";
import { actorOf, flagInput, iso, listInput, parseInstant, registryOf, table } from "./command-input.js";
import { policyOutput } from "./output-schemas.js";

const modeInput = z.enum(POLICY_MODES as [PolicyMode, ...PolicyMode[]]);

/** "2027-01-15T00:00:00Z=enforce@25" → { at, mode: "enforce", percentage: 25 }. */
export function parseStage(text: string): PolicyStage {
  const m = /^(.+)=(open|warn|enforce)(?:@(\d{1,3}(?:\.\d+)?))?$/.exec(text.trim());
  if (!m) {
    throw new CommandError(
      `invalid stage "${text}": expected INSTANT=MODE[@PERCENT], e.g. 2027-01-15T00:00:00Z=enforce@25`,
    );
  }
  const stage: PolicyStage = { at: parseInstant("stage", m[1]!), mode: m[2] as PolicyMode };
  if (m[3] !== undefined) {
    const percentage = Number(m[3]);
    if (percentage > 100) throw new CommandError(`invalid stage "${text}": the percentage is at most 100`);
    stage.percentage = percentage;
  }
  return stage;
}

function rangeInput(text: string): VersionRange {
  try {
    return parseVersionRange(text);
  } catch (err) {
    if (err instanceof VersionError) throw new CommandError(err.message);
    throw err;
  }
}

const stageText = (s: PolicyStage) =>
  `${s.mode} from ${iso(s.at)}${s.percentage === undefined ? "" : ` for ${s.percentage} % of accounts`}`;

function rulesText(r: AppVersionRules): string {
  const parts = [
    r.minVersion && `minimum ${r.minVersion}`,
    r.recommendedVersion && `recommended ${r.recommendedVersion}`,
    r.blocked?.length &&
      `blocked ${r.blocked.map((b) => formatVersionRange(b) + (b.reason ? ` (${b.reason})` : "")).join(", ")}`,
    r.upgradeUrl && `upgrade ${r.upgradeUrl}`,
  ];
  return parts.filter(Boolean).join(", ");
}

/** The policy as people read it, with what applies now and what happens next. */
export function describePolicy(policy: AccessPolicy, now: Instant): string {
  const effective = stageAt(policy, now);
  const next = nextStageAfter(policy, now);
  const cutoff = nextEnforceStage(policy, now);
  const inForce = effective.stage
    ? `${effective.mode} (stage of ${iso(effective.stage.at)}, ${effective.percentage} % of accounts)`
    : `${effective.mode} (base mode, no stage in force)`;
  const lines = [
    table([
      ["now", inForce],
      ["next", next ? stageText(next) : "nothing scheduled"],
      ["cutoff", cutoff ? iso(cutoff.at) : "none scheduled"],
      ["base mode", policy.mode],
      ["info URL", policy.infoUrl ?? "none"],
      ["upgrade URL", policy.upgradeUrl ?? "none"],
      ["exemptions", policy.exemptions.join(", ") || "none"],
    ]),
    "stages:",
    ...(policy.stages.length
      ? policy.stages.map((s) => `  ${s.at <= now ? "past" : "due "}  ${stageText(s)}`)
      : ["  (none)"]),
    "apps:",
    ...(Object.keys(policy.apps).length
      ? Object.entries(policy.apps).map(([id, r]) => `  ${id}: ${rulesText(r)}`)
      : ["  (no version rules)"]),
    ...scheduleRelaxations(policy).map((r) => `warning: ${r.text}`),
  ];
  return lines.join("\n");
}

function policyData(policy: AccessPolicy, now: Instant, revision: number) {
  const effective = stageAt(policy, now);
  return {
    policy,
    revision,
    now,
    effective: { mode: effective.mode, percentage: effective.percentage, stage: effective.stage ?? null },
    next: nextStageAfter(policy, now) ?? null,
    cutoff: nextEnforceStage(policy, now) ?? null,
    /** Stages that relax enforcement after an earlier one (allowed, but rarely meant). */
    warnings: scheduleRelaxations(policy).map((r) => r.text),
  };
}

export const policyShow = defineCommand({
  name: ["policy", "show"],
  description: "Show the access policy, the stage in force now and the next scheduled one",
  args: [],
  input: z.object({}),
  output: policyOutput,
  mutates: false,
  async run(ctx) {
    const s = await registryOf(ctx).snapshot();
    const now = ctx.clock.now();
    return { message: describePolicy(s.policy, now), data: policyData(s.policy, now, s.revision) };
  },
});

/** An optional value where "none" removes the setting. */
const clearable = z.string().min(1).optional();
const setting = (v: string) => (v === "none" ? undefined : v);

export const policySet = defineCommand({
  name: ["policy", "set"],
  description: "Change the access policy (mode, schedule, per-app version rules, URLs, exemptions)",
  args: [
    { name: "mode", description: "base mode: open, warn or enforce" },
    {
      name: "stage",
      description:
        "scheduled stage INSTANT=MODE[@PERCENT] (repeatable or comma-separated; same instant replaces)",
      repeatable: true,
    },
    {
      name: "cutoff",
      description: "shorthand for --stage INSTANT=enforce: every unlicensed client refused from then on",
    },
    {
      name: "clearStages",
      description: "remove every stage first (keeps the base mode, exemptions, version rules and URLs)",
      flag: true,
    },
    { name: "app", description: "client id the version options below apply to" },
    { name: "minVersion", description: "with --app: minimum version (none removes it)" },
    { name: "recommended", description: "with --app: recommended version (none removes it)" },
    {
      name: "block",
      description: "with --app: block versions FROM-TO or one version (repeatable)",
      repeatable: true,
    },
    { name: "blockReason", description: "with --block: why (quoted in refusals)" },
    {
      name: "unblock",
      description: "with --app: remove the blocked range FROM-TO (repeatable)",
      repeatable: true,
    },
    { name: "upgradeUrl", description: "upgrade URL, for --app or else the default (none removes it)" },
    { name: "infoUrl", description: "where users find licensed clients (none removes it)" },
    { name: "exempt", description: "account allowed whatever its client (repeatable)", repeatable: true },
    { name: "unexempt", description: "remove an exemption (repeatable)", repeatable: true },
  ],
  input: z.object({
    mode: modeInput.optional(),
    stage: listInput,
    cutoff: z.string().optional(),
    clearStages: flagInput,
    app: z.string().optional(),
    minVersion: clearable,
    recommended: clearable,
    block: listInput,
    blockReason: z.string().optional(),
    unblock: listInput,
    upgradeUrl: clearable,
    infoUrl: clearable,
    exempt: listInput,
    unexempt: listInput,
  }),
  output: policyOutput,
  mutates: true,
  async run(ctx, input) {
    const appOptions = [input.minVersion, input.recommended, input.blockReason].some((v) => v !== undefined);
    if (input.app === undefined && (appOptions || input.block.length > 0 || input.unblock.length > 0)) {
      throw new CommandError(
        "--min-version, --recommended, --block, --block-reason and --unblock need --app",
      );
    }
    if (input.blockReason !== undefined && input.block.length === 0) {
      throw new CommandError("--block-reason needs --block");
    }
    const changes =
      input.mode !== undefined ||
      input.clearStages ||
      input.cutoff !== undefined ||
      input.stage.length + input.exempt.length + input.unexempt.length > 0 ||
      input.upgradeUrl !== undefined ||
      input.infoUrl !== undefined ||
      appOptions ||
      input.block.length + input.unblock.length > 0;
    if (!changes)
      throw new CommandError("nothing to change: give at least one option (see policy set --help)");
    if (input.app !== undefined) checkClientId(input.app);
    const stages = input.stage.map(parseStage);
    if (input.cutoff !== undefined)
      stages.push({ at: parseInstant("cutoff", input.cutoff), mode: "enforce" });
    if (new Set(stages.map((s) => s.at)).size < stages.length) {
      throw new CommandError("two of the given stages are at the same instant");
    }
    const block = input.block.map(rangeInput);
    const unblock = input.unblock.map(rangeInput);
    const exempt = input.exempt.map(checkAccount);
    const unexempt = input.unexempt.map(checkAccount);

    const registry = registryOf(ctx);
    const policy = await registry.setPolicy(actorOf(ctx), (p) => {
      if (input.mode !== undefined) p.mode = input.mode;
      if (input.clearStages) p.stages = [];
      for (const stage of stages) p.stages = [...p.stages.filter((s) => s.at !== stage.at), stage];
      if (input.app !== undefined) {
        const rules = { ...(p.apps[input.app] ?? {}) };
        if (input.minVersion !== undefined) rules.minVersion = setting(input.minVersion);
        if (input.recommended !== undefined) rules.recommendedVersion = setting(input.recommended);
        if (input.upgradeUrl !== undefined) rules.upgradeUrl = setting(input.upgradeUrl);
        let blocked = rules.blocked ?? [];
        for (const r of unblock) {
          const kept = blocked.filter((b) => b.from !== r.from || b.to !== r.to);
          if (kept.length === blocked.length) {
            throw new CommandError(`${input.app} has no blocked range ${formatVersionRange(r)}`, 404);
          }
          blocked = kept;
        }
        for (const r of block) {
          blocked = blocked.filter((b) => b.from !== r.from || b.to !== r.to);
          blocked.push(input.blockReason === undefined ? r : { ...r, reason: input.blockReason });
        }
        rules.blocked = blocked;
        p.apps[input.app] = dropUndefined(rules);
      } else if (input.upgradeUrl !== undefined) {
        p.upgradeUrl = setting(input.upgradeUrl);
      }
      if (input.infoUrl !== undefined) p.infoUrl = setting(input.infoUrl);
      const exemptBefore = p.exemptions.join(", ") || "none";
      for (const name of unexempt) {
        if (!p.exemptions.includes(name)) {
          const exempt = exemptBefore;
          throw new CommandError(
            `--unexempt ${name}: ${name} is not exempt, so nothing was changed (exempt accounts: ${exempt})`,
            404,
          );
        }
        p.exemptions = p.exemptions.filter((e) => e !== name);
      }
      p.exemptions = [...p.exemptions, ...exempt];
      return dropUndefined(p);
    });
    const now = ctx.clock.now();
    return {
      message: `policy updated\n${describePolicy(policy, now)}`,
      data: policyData(policy, now, await registry.revision()),
    };
  },
});

/** JSON keeps no undefined values; removing them here keeps "none" from leaving an empty key behind. */
function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export const policyCommands = [policyShow, policySet];
