import type { TopologyChange, TopologyPlan } from "../../index.js";
import { loadTopology } from "../../topology/load.js";
import type { CommandContext } from "../command.js";
import { optionValue, table, toJsonValue } from "../format.js";

/** A change's name: `orders`, or `orders/billing` for a consumer. */
function target(change: TopologyChange): string {
  return change.kind === "consumer" ? `${change.stream}/${change.name}` : change.name;
}

/** The field diffs of a change: `maxAgeMs: 3600000 → 7200000; replicas: 1 → 3`. */
function diffText(change: TopologyChange): string {
  const fields = (change.diff ?? []).map((d) => `${d.field}: ${optionValue(d.from)} → ${optionValue(d.to)}`);
  const reason = change.reason === undefined ? [] : [`refused: ${change.reason}`];
  return [...fields, ...reason].join("; ");
}

/** The plan, one line per change: action, kind, name, and the field diffs of an update. */
export function planLines(plan: TopologyPlan): string[] {
  if (plan.changes.length === 0) return ["nothing declared, nothing to prune"];
  const columns = [{ heading: "" }, { heading: "" }, { heading: "" }, { heading: "" }];
  return table(
    columns,
    plan.changes.map((c) => [c.action, c.kind, target(c), diffText(c)]),
  ).map((line) => line.trimEnd());
}

/** `2 created, 1 updated, 3 unchanged`. */
export function summary(plan: TopologyPlan): string {
  const count = (action: TopologyChange["action"]) => plan.changes.filter((c) => c.action === action).length;
  const parts = [
    [count("create"), "created"],
    [count("update"), "updated"],
    [count("delete"), "deleted"],
    [count("unchanged"), "unchanged"],
  ] as const;
  const said = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  return said.length === 0 ? "nothing" : said.join(", ");
}

function planJson(plan: TopologyPlan): unknown {
  return {
    changes: plan.changes.map((c) => ({
      kind: c.kind,
      name: c.name,
      ...(c.stream === undefined ? {} : { stream: c.stream }),
      action: c.action,
      ...(c.diff === undefined ? {} : { diff: toJsonValue(c.diff) }),
      ...(c.reason === undefined ? {} : { reason: c.reason }),
    })),
  };
}

/** `windshift apply FILE`. */
export async function apply(ctx: CommandContext): Promise<void> {
  const [file] = ctx.args as [string];
  const topology = await loadTopology(file);
  const events = await ctx.events();
  const prune = ctx.values.prune === true;
  const dryRun = ctx.values["dry-run"] === true;
  const plan = await events.plan(topology, { prune });
  const refused = plan.changes.some((c) => c.action === "replace");
  if (ctx.json) {
    if (dryRun || refused) ctx.out.json(planJson(plan));
    // apply refuses a replace with an error that names it.
    if (!dryRun) ctx.out.json(planJson(await events.apply(topology, { prune })));
    return;
  }
  for (const line of planLines(plan)) ctx.out.line(line);
  if (dryRun) {
    ctx.out.line("dry run: nothing was changed");
    return;
  }
  const applied = await events.apply(topology, { prune });
  const changed = applied.changes.some((c) => c.action !== "unchanged");
  ctx.out.line(changed ? `applied: ${summary(applied)}` : `nothing to change: ${summary(applied)}`);
}
