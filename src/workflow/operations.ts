import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { ErrorCode, validationError, WindshiftError } from "../errors.js";
import { throwIfAborted } from "../internal/abort.js";
import { encode } from "../internal/codec.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";
import { ensureConsumer } from "../streams/consumers.js";
import { ensureStream } from "../streams/streams.js";
import { loadRules } from "../validation/rules.js";
import { emitRequest } from "./context.js";
import type { Workflow } from "./definition.js";
import { taskOf, workflowTable } from "./definition.js";
import { describeRun, type WorkflowRun } from "./inspect.js";
import { bucketName, consumerName, streamName, streamSubject, taskSubject } from "./layout.js";
import {
  type EnsureWorkflowOptions,
  ensureWorkflowDefaults,
  type StartWorkflowOptions,
  startWorkflowDefaults,
} from "./options.js";
import { emitExternal, eventFirer, newRun, type RunState, START, scheduledBy } from "./run-state.js";
import { publishTasks } from "./schedule.js";
import { openRunStore, storeOf } from "./store.js";

/** What `ensureWorkflow` set up. */
export interface WorkflowDescription {
  /** The stream holding the task events. */
  readonly stream: string;
  /** The key-value bucket holding the runs. */
  readonly bucket: string;
  /** The durable consumers, one per task type, by full type name. */
  readonly consumers: Readonly<Record<string, string>>;
}

/** What `startWorkflow` did. */
export interface StartedWorkflow {
  /** The run's id: the one given, or a generated UUID. */
  readonly runId: string;
  /** A run with this id existed already: nothing new was started. */
  readonly duplicate: boolean;
}

/** What `emitWorkflowEvent` did. */
export interface EmittedWorkflowEvent {
  /** The run had this event already: the first one stands. */
  readonly duplicate: boolean;
  /** The ids of the join tasks this event fired. */
  readonly fired: readonly string[];
}

/** Options for `emitWorkflowEvent`. */
export interface EmitWorkflowEventOptions {
  /** Cancels the call. The event may still have been recorded. */
  readonly signal?: AbortSignal;
}

/** Options for `inspectWorkflow`. */
export interface InspectWorkflowOptions {
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** The defaults of `emitWorkflowEvent`'s and `inspectWorkflow`'s options: a signal, nothing else. */
const SIGNAL_ONLY: Defaults<{ readonly signal?: AbortSignal }> = Object.freeze({ signal: undefined });

const RUN_ID = /^[A-Za-z0-9_.:-]{1,255}$/;

function assertRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== "string" || !RUN_ID.test(runId)) {
    throw validationError(
      "runId",
      `${describe(runId)} is not a valid run id (1-255 characters of A-Z, a-z, 0-9, _ . : -)`,
    );
  }
}

/** Creates or updates a workflow's stream, task consumers and bucket; see `Events.ensureWorkflow`. */
export async function ensureWorkflow(
  rt: Runtime,
  flow: Workflow,
  options?: EnsureWorkflowOptions,
): Promise<WorkflowDescription> {
  const table = workflowTable(flow);
  if (table.tasks.size === 0) throw validationError("workflow", `workflow "${table.name}" has no tasks`);
  const o = mergeOptions<EnsureWorkflowOptions>("options", options, ensureWorkflowDefaults);
  const processingTimeoutMs = v.durationMs("processingTimeoutMs", o.processingTimeoutMs, 1) as number;
  const retainMs = v.durationMs("retainMs", o.retainMs, 1_000) as number;
  const maxUnsettledTasks = v.integer("maxUnsettledTasks", o.maxUnsettledTasks, 1, 1_000_000) as number;
  const replicas = v.integer("replicas", o.replicas, 1, 5) as number;
  const storage = v.oneOf("storage", o.storage, ["file", "memory"] as const) as "file" | "memory";
  const signal = v.signal("signal", o.signal);
  const stream = streamName(table.name);
  await ensureStream(rt, stream, {
    subjects: [streamSubject(table.name)],
    maxAgeMs: retainMs,
    replicas,
    storage,
    ...(signal === undefined ? {} : { signal }),
  });
  const consumers: Record<string, string> = {};
  for (const type of table.tasks.keys()) {
    const { name } = await ensureConsumer(rt, stream, {
      name: consumerName(type),
      subjects: [taskSubject(table.name, type)],
      from: { start: true },
      processingTimeoutMs,
      maxUnsettledEvents: maxUnsettledTasks,
      ...(signal === undefined ? {} : { signal }),
    });
    consumers[type] = name;
  }
  throwIfAborted(signal);
  const bucket = bucketName(table.name);
  await openRunStore(rt, bucket, { mode: "ensure", options: { ttlMs: retainMs, replicas } });
  return { stream, bucket, consumers };
}

/** Starts a run with its first task; see `Events.startWorkflow`. */
export async function startWorkflow<Desc extends DescMessage>(
  rt: Runtime,
  flow: Workflow,
  schema: Desc,
  data: MessageInitShape<Desc> | MessageShape<Desc>,
  options?: StartWorkflowOptions,
): Promise<StartedWorkflow> {
  const table = workflowTable(flow);
  const task = taskOf(table, "schema", schema);
  const o = mergeOptions<StartWorkflowOptions>("options", options, startWorkflowDefaults);
  const runId = o.runId ?? crypto.randomUUID();
  assertRunId(runId);
  const signal = v.signal("signal", o.signal);
  const payload = encode(schema, data, rt.validate === true ? await loadRules("validate") : undefined);
  const store = await storeOf(rt, table);
  const created = newRun(table.name, runId, task.schema.typeName, payload, rt.clock.now());
  let run: RunState = created;
  const duplicate = !(await store.create(created, signal));
  if (duplicate) {
    const stored = await store.read(runId, signal);
    // Expired between the two calls: start it again.
    if (stored === undefined) return startWorkflow(rt, flow, schema, data, options);
    run = stored.state;
  }
  await publishTasks(rt, table, run, scheduledBy(run, START), signal);
  return { runId, duplicate };
}

/** Emits a run-scoped event from outside the run; see `Events.emitWorkflowEvent`. */
export async function emitWorkflowEvent(
  rt: Runtime,
  flow: Workflow,
  runId: string,
  name: string,
  schema?: DescMessage,
  data?: unknown,
  options?: EmitWorkflowEventOptions,
): Promise<EmittedWorkflowEvent> {
  const table = workflowTable(flow);
  assertRunId(runId);
  const emit = emitRequest(name, schema, data, rt.validate === true ? await loadRules("validate") : undefined);
  const o = mergeOptions<{ readonly signal?: AbortSignal }>("options", options, SIGNAL_ONLY);
  const signal = v.signal("signal", o.signal);
  const store = await storeOf(rt, table);
  let duplicate = false;
  const { state: run } = await store.update(
    runId,
    (r) => {
      duplicate = !emitExternal(r, emit, rt.clock.now());
      return !duplicate;
    },
    signal === undefined ? {} : { signal },
  );
  // Also after a duplicate: the first emit may have failed before it published what it fired.
  const fired = scheduledBy(run, eventFirer(name));
  await publishTasks(rt, table, run, fired, signal);
  return { duplicate, fired };
}

/** The state of a run; see `Events.inspectWorkflow`. */
export async function inspectWorkflow(
  rt: Runtime,
  flow: Workflow,
  runId: string,
  options?: InspectWorkflowOptions,
): Promise<WorkflowRun> {
  const table = workflowTable(flow);
  assertRunId(runId);
  const o = mergeOptions<{ readonly signal?: AbortSignal }>("options", options, SIGNAL_ONLY);
  const store = await storeOf(rt, table);
  const stored = await store.read(runId, v.signal("signal", o.signal));
  if (stored === undefined) {
    throw new WindshiftError(
      ErrorCode.NotFound,
      `workflow "${table.name}" has no run "${runId}" (never started, or expired after retainMs)`,
      { details: { workflow: table.name, runId } },
    );
  }
  return describeRun(stored.state);
}
