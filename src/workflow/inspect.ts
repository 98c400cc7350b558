import type { RunState, RunStatus, TaskStatus } from "./run-state.js";

/** One task of a run, as `inspectWorkflow` reports it. */
export interface WorkflowTaskInfo {
  /** The task's id within the run. */
  readonly id: string;
  /** Its full Protobuf type name. */
  readonly type: string;
  /** The task whose handler scheduled it (`undefined` for the first task and join tasks). */
  readonly parent: string | undefined;
  /** The join that fired it (see {@link WorkflowRun.joins}), if one did. */
  readonly join: number | undefined;
  /** Where the task is: scheduled, running, completed or failed. */
  readonly status: TaskStatus;
  /** Attempts started so far. */
  readonly attempts: number;
  /** When it was scheduled. */
  readonly scheduledAt: Date;
  /** A delayed task does not run before this. */
  readonly notBefore: Date | undefined;
  /** When its last attempt started. */
  readonly startedAt: Date | undefined;
  /** When it completed or failed. */
  readonly finishedAt: Date | undefined;
  /** The last failure's message. */
  readonly error: string | undefined;
}

/** An event emitted in a run. */
export interface WorkflowEventInfo {
  /** The event's name. */
  readonly name: string;
  /** The type of its data; `undefined` without data. */
  readonly type: string | undefined;
  /** When it was emitted. */
  readonly emittedAt: Date;
  /** The id of the task that emitted it, or `"external"`. */
  readonly emittedBy: string;
}

/** A join of a run. */
export interface WorkflowJoinInfo {
  /** The join's number within the run, from 1. */
  readonly id: number;
  /** The events it waits for. */
  readonly names: readonly string[];
  /** The type of the task it runs. */
  readonly type: string;
  /** The task that declared it. */
  readonly declaredBy: string;
  /** Whether it still waits for events, or has run its task. */
  readonly status: "waiting" | "fired";
  /** The events not emitted yet (empty once fired). */
  readonly waitingFor: readonly string[];
  /** The id of the task it ran, once fired. */
  readonly taskId: string | undefined;
}

/** A run's state, as `inspectWorkflow` returns it. */
export interface WorkflowRun {
  /** The workflow's name. */
  readonly workflow: string;
  /** The run's id. */
  readonly runId: string;
  /** `completed` once no task is scheduled or running and no join waits; `failed` once a task failed. */
  readonly status: RunStatus;
  /** Why the run failed. */
  readonly error: string | undefined;
  /** When it was started. */
  readonly createdAt: Date;
  /** When its state last changed. */
  readonly updatedAt: Date;
  /** When it completed or failed. */
  readonly finishedAt: Date | undefined;
  /** The tasks, by id. */
  readonly tasks: readonly WorkflowTaskInfo[];
  /** The events emitted, in the order they were emitted. */
  readonly events: readonly WorkflowEventInfo[];
  /** The joins declared, by id. */
  readonly joins: readonly WorkflowJoinInfo[];
}

const date = (ms: number | undefined): Date | undefined => (ms === undefined ? undefined : new Date(ms));

/** The public view of a stored run. */
export function describeRun(run: RunState): WorkflowRun {
  return {
    workflow: run.workflow,
    runId: run.runId,
    status: run.status,
    error: run.error,
    createdAt: new Date(run.createdAt),
    updatedAt: new Date(run.updatedAt),
    finishedAt: date(run.finishedAt),
    tasks: Object.entries(run.tasks)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([id, t]) => ({
        id,
        type: t.type,
        parent: t.parent,
        join: t.join,
        status: t.status,
        attempts: t.attempts,
        scheduledAt: new Date(t.scheduledAt),
        notBefore: date(t.notBefore),
        startedAt: date(t.startedAt),
        finishedAt: date(t.finishedAt),
        error: t.error,
      })),
    events: Object.entries(run.events)
      .sort(([, a], [, b]) => a.at - b.at)
      .map(([name, e]) => ({ name, type: e.type, emittedAt: new Date(e.at), emittedBy: e.by })),
    joins: run.joins.map((j) => ({
      id: j.id,
      names: [...j.names],
      type: j.type,
      declaredBy: j.by,
      status: j.task === undefined ? "waiting" : "fired",
      waitingFor: j.task === undefined ? j.names.filter((n) => run.events[n] === undefined) : [],
      taskId: j.task,
    })),
  };
}

/** The short name of a Protobuf type: `shop.v1.ChargeCard` → `ChargeCard`. */
function shortType(type: string): string {
  return type.slice(type.lastIndexOf(".") + 1);
}

/** Text safe inside a quoted Mermaid label. */
function label(text: string): string {
  return text.replace(/["<>]/g, (c) => `#${c.charCodeAt(0)};`);
}

/**
 * Renders a run (from `inspectWorkflow`) as a Mermaid flowchart: one node per
 * task with its type and status, arrows from each task to the tasks it
 * scheduled, and arrows labelled with event names from the tasks (or
 * external events) that emitted them to the join tasks they fired, or to a
 * waiting join.
 *
 * @example
 * ```ts
 * console.log(toMermaid(await events.inspectWorkflow(checkout, runId)));
 * ```
 */
export function toMermaid(run: WorkflowRun): string {
  const lines = ["flowchart TD"];
  for (const t of run.tasks) {
    const attempts = t.attempts > 1 ? `, ${t.attempts} attempts` : "";
    lines.push(`  t${t.id}["${label(`${t.id}. ${shortType(t.type)}`)}<br/>${t.status}${attempts}"]:::${t.status}`);
  }
  const external = new Set<string>();
  for (const e of run.events) {
    if (e.emittedBy === "external") {
      external.add(e.name);
      lines.push(`  e_${nodeId(e.name)}(["${label(e.name)}<br/>external"]):::external`);
    }
  }
  for (const t of run.tasks) {
    if (t.parent !== undefined) lines.push(`  t${t.parent} --> t${t.id}`);
  }
  for (const j of run.joins) {
    const target = j.taskId === undefined ? `j${j.id}` : `t${j.taskId}`;
    if (j.taskId === undefined) {
      const waiting = j.waitingFor.map(label).join(", ");
      lines.push(`  j${j.id}{{"${label(shortType(j.type))}<br/>waiting for ${waiting}"}}:::waiting`);
    }
    lines.push(`  t${j.declaredBy} -. join .-> ${target}`);
    for (const name of j.names) {
      const event = run.events.find((e) => e.name === name);
      if (event === undefined) continue;
      const source = external.has(name) ? `e_${nodeId(name)}` : `t${event.emittedBy}`;
      lines.push(`  ${source} -- "${label(name)}" --> ${target}`);
    }
  }
  const used = new Set(lines.flatMap((line) => line.match(/:::(\w+)$/)?.[1] ?? []));
  for (const [name, style] of Object.entries(CLASS_STYLES)) {
    if (used.has(name)) lines.push(`  classDef ${name} ${style}`);
  }
  return lines.join("\n");
}

/** The colours of the node classes. */
const CLASS_STYLES: Readonly<Record<string, string>> = {
  completed: "fill:#d3f9d8,stroke:#2b8a3e",
  running: "fill:#d0ebff,stroke:#1864ab",
  scheduled: "fill:#f1f3f5,stroke:#868e96",
  failed: "fill:#ffe3e3,stroke:#c92a2a",
  waiting: "fill:#fff3bf,stroke:#e67700",
  external: "fill:#f3d9fa,stroke:#862e9c",
};

/** A Mermaid node id for an event name (names may hold `.`, `:` and `-`). */
function nodeId(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, (c) => `_${c.charCodeAt(0)}_`);
}
