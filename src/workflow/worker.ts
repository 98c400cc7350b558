import type { DescMessage } from "@bufbuild/protobuf";
import type { Event } from "../consume/event.js";
import { ErrorCode, isWindshiftError, validationError, WindshiftError } from "../errors.js";
import { raceAbort, throwIfAborted } from "../internal/abort.js";
import { decode } from "../internal/codec.js";
import { mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import { PermanentError } from "../process/handlers.js";
import { type ProcessOptions, resolveProcessOptions } from "../process/options.js";
import type { Processor, ProcessorStats } from "../process/processor.js";
import { startProcessor } from "../process/running-processor.js";
import type { Runtime } from "../runtime.js";
import { loadRules, type RuleCheck } from "../validation/rules.js";
import { joinEvents, NO_EVENTS, TaskContextImpl } from "./context.js";
import {
  type TaskDefinition,
  type TaskHandler,
  taskOf,
  type Workflow,
  type WorkflowTable,
  workflowTable,
} from "./definition.js";
import { consumerName, streamName, WorkflowHeaders } from "./layout.js";
import { type RunWorkflowOptions, runWorkflowDefaults } from "./options.js";
import {
  commitTask,
  failAttempt,
  joinOf,
  type Requests,
  type RunState,
  scheduledBy,
  startAttempt,
} from "./run-state.js";
import { publishTasks } from "./schedule.js";
import { Slots } from "./slots.js";
import { type RunStore, type StoredRun, storeOf } from "./store.js";

/**
 * A running workflow worker: it runs the tasks of its task types as they
 * are scheduled. Stop it with {@link WorkflowWorker.close} or `await using`.
 */
export interface WorkflowWorker extends AsyncDisposable {
  /** The workflow's name. */
  readonly workflow: string;
  /** The task types it runs, by full type name. */
  readonly tasks: readonly string[];
  /**
   * Resolves once the worker has stopped: with the error that stopped it
   * (say, a task consumer was deleted), or `undefined` after `close()`.
   * Never rejects.
   */
  readonly closed: Promise<WindshiftError | undefined>;
  /** What its task processors have done, summed over task types. */
  readonly stats: ProcessorStats;
  /** Stops taking tasks and lets running handlers finish, as a processor's `close()`. Never rejects. */
  close(): Promise<void>;
}

/** Starts a worker for `flow`; see `Events.runWorkflow`. */
export async function runWorkflow(rt: Runtime, flow: Workflow, options?: RunWorkflowOptions): Promise<WorkflowWorker> {
  const table = workflowTable(flow);
  const o = mergeOptions<RunWorkflowOptions>("options", options, runWorkflowDefaults);
  const maxAttempts = v.integer("maxAttempts", o.maxAttempts, 1) as number;
  const handled = chooseTasks(table, o.tasks);
  const concurrency = v.integer("concurrency", o.concurrency, 1, 10_000) as number;
  const signal = v.signal("signal", o.signal);
  // The processor's vocabulary, validated by the processor's own rules.
  const processOptions = {
    concurrency,
    maxAttempts: Number.POSITIVE_INFINITY,
    backoff: o.backoff,
    deadLetter: o.deadLetter,
    closeTimeoutMs: o.closeTimeoutMs,
  } as ProcessOptions;
  resolveProcessOptions(processOptions);
  throwIfAborted(signal);
  const store = await storeOf(rt, table);
  const check = rt.validate === true ? await raceAbort(loadRules("validate"), signal) : undefined;
  const runner = new TaskRunner(rt, table, store, { maxAttempts, slots: new Slots(concurrency), check });
  const processors: Processor[] = [];
  try {
    for (const task of handled) {
      const consumer = consumerName(task.schema.typeName);
      const processor = await startProcessor(
        rt,
        streamName(table.name),
        consumer,
        (event, abandoned) => runner.run(task, event, abandoned),
        processOptions,
      ).catch((err: unknown) => {
        if (!isWindshiftError(err, ErrorCode.NotFound)) throw err;
        throw new WindshiftError(
          ErrorCode.NotFound,
          `workflow "${table.name}" has no consumer for task ${task.schema.typeName}: call ensureWorkflow first`,
          { cause: err, details: { workflow: table.name, consumer } },
        );
      });
      processors.push(processor);
    }
  } catch (err) {
    await Promise.all(processors.map((p) => p.close()));
    throw err;
  }
  return new Worker(table.name, handled, processors, signal);
}

/** The task types a worker runs: those asked for, each with a handler. */
function chooseTasks(table: WorkflowTable, tasks: unknown): TaskDefinition[] {
  if (tasks === undefined) {
    const all = [...table.tasks.values()].filter((t) => t.handler !== undefined);
    if (all.length === 0) throw validationError("tasks", `workflow "${table.name}" has no task with a handler`);
    return all;
  }
  if (!Array.isArray(tasks) || tasks.length === 0)
    throw validationError("tasks", "must be a non-empty array of task schemas");
  const chosen = new Map<string, TaskDefinition>();
  tasks.forEach((schema: unknown, i) => {
    const type = (schema as DescMessage | undefined)?.typeName;
    const task = type === undefined ? undefined : table.tasks.get(type);
    if (task === undefined) {
      throw validationError(`tasks[${i}]`, `is not a task of workflow "${table.name}"`);
    }
    if (task.handler === undefined) {
      throw validationError(`tasks[${i}]`, `${task.schema.typeName} was registered without a handler`);
    }
    chosen.set(type as string, task);
  });
  return [...chosen.values()];
}

/** A failure that must not be retried: the task fails at once. */
function isFinal(err: unknown): boolean {
  return (
    err instanceof PermanentError ||
    isWindshiftError(err, ErrorCode.Validation) ||
    isWindshiftError(err, ErrorCode.InvalidData) ||
    isWindshiftError(err, ErrorCode.InvalidMessage)
  );
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs one delivered task event: the steps that make scheduling exactly-once. */
class TaskRunner {
  readonly #rt: Runtime;
  readonly #table: WorkflowTable;
  readonly #store: RunStore;
  readonly #maxAttempts: number;
  readonly #slots: Slots;
  /** Checks task data against its rules: what a task gets, and what it asks for (the client's `validate`). */
  readonly #check: RuleCheck | undefined;

  constructor(
    rt: Runtime,
    table: WorkflowTable,
    store: RunStore,
    limits: { maxAttempts: number; slots: Slots; check: RuleCheck | undefined },
  ) {
    this.#rt = rt;
    this.#table = table;
    this.#store = store;
    this.#maxAttempts = limits.maxAttempts;
    this.#slots = limits.slots;
    this.#check = limits.check;
  }

  /**
   * Starts an attempt in the run's state, unless the task has finished
   * already (then only what it scheduled is published again) or is delayed
   * (then its event is given back until its time); runs the handler, and
   * commits what it asked for (once per task) and publishes it.
   */
  async run(task: TaskDefinition, event: Event, abandoned: AbortSignal): Promise<void> {
    const runId = event.headers.get(WorkflowHeaders.Run);
    const taskId = event.headers.get(WorkflowHeaders.Task);
    if (runId === undefined || taskId === undefined) {
      throw new PermanentError(
        `not a workflow task event: it has no ${WorkflowHeaders.Run} / ${WorkflowHeaders.Task} header`,
      );
    }
    await this.#slots.acquire();
    try {
      // The worker closed while this task waited for a slot: its event was given back.
      if (abandoned.aborted) throw abandoned.reason;
      await this.#attempt(task, event, abandoned, runId, taskId);
    } finally {
      this.#slots.release();
    }
  }

  async #attempt(task: TaskDefinition, event: Event, abandoned: AbortSignal, runId: string, taskId: string) {
    const store = this.#store;
    const now = () => this.#rt.clock.now();
    let attempt = 0;
    let waitMs = 0;
    let stored: StoredRun;
    try {
      stored = await store.update(runId, (run) => {
        attempt = 0;
        const record = run.tasks[taskId];
        if (record === undefined) throw new PermanentError(`workflow run "${runId}" has no task ${taskId}`);
        if (record.status === "completed" || record.status === "failed") return false;
        waitMs = (record.notBefore ?? 0) - now();
        if (waitMs > 0) return false;
        attempt = startAttempt(run, taskId, now());
        return true;
      });
    } catch (err) {
      if (!isWindshiftError(err, ErrorCode.NotFound)) throw err;
      throw new PermanentError(`workflow run "${runId}" not found (it expired, or was never started)`, { cause: err });
    }
    const started = stored.state;
    if (waitMs > 0) {
      await event.reject({ delayMs: waitMs });
      return;
    }
    if (attempt === 0) {
      // Finished already (its ack was lost, or another worker ran it): publish what it scheduled, again.
      if (started.tasks[taskId]?.status === "completed") {
        await publishTasks(this.#rt, this.#table, started, scheduledBy(started, taskId));
      }
      return;
    }
    const join = joinOf(started, taskId);
    const table = this.#table;
    const ctx = new TaskContextImpl(
      table.name,
      (schema) => taskOf(table, "schema", schema).schema.typeName,
      {
        runId,
        taskId,
        attempt,
        signal: abandoned,
        event,
        events: join === undefined ? NO_EVENTS : joinEvents(join.names, started.events),
      },
      this.#check,
    );
    let requests: Requests;
    try {
      const data = decode(task.schema, event.payload);
      this.#check?.(task.schema, data);
      await (task.handler as TaskHandler<unknown>)(data, ctx);
      requests = ctx.finish();
    } catch (err) {
      ctx.finish();
      return this.#fail(runId, taskId, attempt, err);
    }
    let committed: RunState;
    try {
      // Starts from the run as the attempt's start wrote it: no read, unless another task wrote since.
      ({ state: committed } = await store.update(runId, (run) => commitTask(run, taskId, requests, now()), {
        known: stored,
      }));
    } catch (err) {
      // Requests too large to store can never be committed; anything else is retried.
      if (!isWindshiftError(err, ErrorCode.InvalidData)) throw err;
      return this.#fail(runId, taskId, attempt, err);
    }
    await publishTasks(this.#rt, this.#table, committed, scheduledBy(committed, taskId));
  }

  /**
   * Records a failed attempt (the handler threw, or its requests cannot be
   * stored) and rethrows: as it was, to have the task retried, or as a
   * `PermanentError` once the task has failed for good.
   */
  async #fail(runId: string, taskId: string, attempt: number, err: unknown): Promise<never> {
    const final = isFinal(err) || attempt >= this.#maxAttempts;
    await this.#store.update(runId, (run) => {
      failAttempt(run, taskId, message(err), final, this.#rt.clock.now());
      return true;
    });
    if (!final || err instanceof PermanentError) throw err;
    throw new PermanentError(
      attempt >= this.#maxAttempts && !isFinal(err)
        ? `task failed after ${attempt} attempts: ${message(err)}`
        : message(err),
      { cause: err },
    );
  }
}

/** The processors of one worker, seen as one. */
class Worker implements WorkflowWorker {
  readonly workflow: string;
  readonly tasks: readonly string[];
  readonly closed: Promise<WindshiftError | undefined>;
  readonly #processors: readonly Processor[];
  readonly #signal: AbortSignal | undefined;
  #closing: Promise<void> | undefined;
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(
    workflow: string,
    tasks: readonly TaskDefinition[],
    processors: Processor[],
    signal: AbortSignal | undefined,
  ) {
    this.workflow = workflow;
    this.tasks = tasks.map((t) => t.schema.typeName);
    this.#processors = processors;
    this.#signal = signal;
    // The first processor to stop by itself stops the others.
    this.closed = Promise.race(processors.map((p) => p.closed)).then(async (failure) => {
      await this.close();
      return failure;
    });
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    // Aborted while the processors started.
    if (signal?.aborted) void this.close();
  }

  get stats(): ProcessorStats {
    const sum: Record<string, number> = {};
    for (const p of this.#processors) {
      for (const [key, value] of Object.entries(p.stats)) sum[key] = (sum[key] ?? 0) + value;
    }
    return sum as unknown as ProcessorStats;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#signal?.removeEventListener("abort", this.#onAbort);
      await Promise.all(this.#processors.map((p) => p.close()));
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
