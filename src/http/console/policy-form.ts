/**
 * The policy editor's three forms (mode and schedule, version rules of one app,
 * exemptions) turned into the input of the `policy set` command. Only what the admin
 * changed is sent: a field left as it was is not an instruction, a field emptied
 * removes the setting ("none"), as on the command line.
 */
import type { AccessPolicy, PolicyStage } from "../../licensing/index.js";
import { type FormBody, field, fields } from "../assets/respond.js";
import { utcInstant } from "./env.js";

export type PolicySection = "schedule" | "app" | "exemptions";

export const POLICY_SECTIONS: readonly PolicySection[] = ["schedule", "app", "exemptions"];

/** A stage as `policy set --stage` writes it: INSTANT=MODE[@PERCENT]. */
export function stageText(s: PolicyStage): string {
  return `${new Date(s.at).toISOString()}=${s.mode}${s.percentage === undefined ? "" : `@${s.percentage}`}`;
}

/**
 * A changed optional text: the new value, "none" to remove it, or undefined when unchanged
 * or when the form did not carry the field at all.
 */
function changed(body: FormBody, name: string, current: string | undefined): string | undefined {
  if (body[name] === undefined) return undefined;
  const value = field(body, name);
  if (value === (current ?? "")) return undefined;
  return value === "" ? "none" : value;
}

function put(raw: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) raw[key] = value;
}

/** Which form field shows an error about each `policy set` argument. */
export const FORM_FIELD_OF: Record<string, string> = {
  stage: "stageAt",
  cutoff: "stageAt",
  clearStages: "removeStage",
  block: "block",
};

export function policyInput(
  section: PolicySection,
  body: FormBody,
  current: AccessPolicy,
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  switch (section) {
    case "schedule": {
      const mode = field(body, "mode");
      if (mode !== "" && mode !== current.mode) raw.mode = mode;
      const removed = new Set(fields(body, "removeStage"));
      const stages: string[] = [];
      if (removed.size > 0) {
        raw.clearStages = true;
        stages.push(...current.stages.filter((s) => !removed.has(String(s.at))).map(stageText));
      }
      const at = field(body, "stageAt");
      if (at !== "") {
        const percentage = field(body, "stagePercentage");
        stages.push(
          `${utcInstant(at)}=${field(body, "stageMode") || "enforce"}${percentage ? `@${percentage}` : ""}`,
        );
      }
      if (stages.length > 0) raw.stage = stages;
      put(raw, "infoUrl", changed(body, "infoUrl", current.infoUrl));
      put(raw, "upgradeUrl", changed(body, "upgradeUrl", current.upgradeUrl));
      break;
    }
    case "app": {
      const app = field(body, "app");
      raw.app = app;
      const rules = current.apps[app] ?? {};
      put(raw, "minVersion", changed(body, "minVersion", rules.minVersion));
      put(raw, "recommended", changed(body, "recommended", rules.recommendedVersion));
      put(raw, "upgradeUrl", changed(body, "upgradeUrl", rules.upgradeUrl));
      const block = field(body, "block");
      if (block !== "") {
        raw.block = [block];
        put(raw, "blockReason", field(body, "blockReason") || undefined);
      }
      const unblock = fields(body, "unblock");
      if (unblock.length > 0) raw.unblock = unblock;
      break;
    }
    case "exemptions": {
      const exempt = field(body, "exempt")
        .split(/[\s,]+/)
        .filter((s) => s !== "");
      if (exempt.length > 0) raw.exempt = exempt;
      const unexempt = fields(body, "unexempt");
      if (unexempt.length > 0) raw.unexempt = unexempt;
      break;
    }
  }
  return raw;
}
