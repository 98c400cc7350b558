import { toMermaid, type WorkflowRun, workflow } from "../../index.js";
import type { CommandContext } from "../command.js";
import { table, time, toJsonValue } from "../format.js";

/** The run as text: its status, its tasks, joins and events. */
export function runLines(run: WorkflowRun): string[] {
  const lines = [
    `workflow ${run.workflow}, run ${run.runId}: ${run.status}${run.error === undefined ? "" : ` (${run.error})`}`,
    `created ${time(run.createdAt)}, updated ${time(run.updatedAt)}, finished ${time(run.finishedAt)}`,
    "",
  ];
  const columns = [
    { heading: "TASK", right: true },
    { heading: "TYPE" },
    { heading: "STATUS" },
    { heading: "ATTEMPTS", right: true },
    { heading: "FROM" },
    { heading: "SCHEDULED" },
    { heading: "FINISHED" },
    { heading: "ERROR" },
  ];
  const rows = run.tasks.map((t) => [
    t.id,
    t.type,
    t.status,
    String(t.attempts),
    t.parent ?? (t.join === undefined ? "-" : `join ${t.join}`),
    time(t.scheduledAt),
    time(t.finishedAt),
    t.error ?? "",
  ]);
  lines.push(...table(columns, rows).map((line) => line.trimEnd()));
  for (const j of run.joins) {
    const state = j.status === "fired" ? `fired task ${j.taskId}` : `waiting for ${j.waitingFor.join(", ")}`;
    lines.push(`join ${j.id} (from task ${j.declaredBy}) on ${j.names.join(" + ")} → ${j.type}: ${state}`);
  }
  for (const e of run.events) {
    lines.push(
      `event ${e.name} from ${e.emittedBy === "external" ? "outside" : `task ${e.emittedBy}`} at ${time(e.emittedAt)}`,
    );
  }
  return lines;
}

/** `windshift workflow show NAME RUN_ID`. */
export async function showWorkflow(ctx: CommandContext): Promise<void> {
  const [name, runId] = ctx.args as [string, string];
  // Inspecting needs only the workflow's name: its runs' bucket is named after it.
  const run = await (await ctx.events()).inspectWorkflow(workflow(name), runId);
  const mermaid = toMermaid(run);
  if (ctx.json) {
    ctx.out.json({ ...(toJsonValue(run) as object), mermaid });
    return;
  }
  for (const line of runLines(run)) ctx.out.line(line);
  ctx.out.line();
  ctx.out.line(mermaid);
}
