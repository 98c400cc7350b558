import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { validationError } from "../errors.js";
import { assertSchema } from "../internal/codec.js";
import { assertName, describe } from "../internal/names.js";
import type { TaskContext } from "./context.js";

/**
 * Runs one task of a workflow: `data` is the task's message, typed by its
 * schema. Call `ctx.next`, `ctx.emit` and `ctx.join` to ask for what comes
 * after; the requests are committed once, when the handler returns. Throw to
 * have the task retried (a `PermanentError` fails it at once).
 *
 * @typeParam T - the task's message type.
 */
export type TaskHandler<T> = (data: T, ctx: TaskContext) => unknown;

/** One task type of a workflow. */
export interface TaskDefinition {
  readonly schema: DescMessage;
  /** `undefined` for a task type another service runs. */
  readonly handler: TaskHandler<never> | undefined;
}

/**
 * A workflow definition: its name and its task types, each a Protobuf
 * message schema with the handler that runs it. Build one with
 * {@link workflow}; every service that starts, runs or inspects the workflow
 * declares the same one (a service that does not run a task type declares it
 * without a handler).
 */
export interface Workflow {
  /** The workflow's name (its stream is `WORKFLOW_<name>`). */
  readonly name: string;
  /** The task types, by full Protobuf type name, in registration order. */
  readonly tasks: readonly string[];
  /**
   * Registers the task type `schema`, run by `handler`. Leave the handler out
   * for a task type that another service runs (`runWorkflow(flow, { tasks })`
   * there): this service may still schedule it. One registration per type.
   */
  task<Desc extends DescMessage>(schema: Desc, handler?: TaskHandler<MessageShape<Desc>>): Workflow;
}

/** Where a workflow keeps its task table; `Symbol.for`, so that copies of windshift agree. */
const TASKS = Symbol.for("windshift.workflow.tasks");

class WorkflowImpl implements Workflow {
  readonly name: string;
  readonly #tasks = new Map<string, TaskDefinition>();

  constructor(name: string) {
    this.name = name;
  }

  get tasks(): readonly string[] {
    return [...this.#tasks.keys()];
  }

  task<Desc extends DescMessage>(schema: Desc, handler?: TaskHandler<MessageShape<Desc>>): this {
    assertSchema("schema", schema);
    if (handler !== undefined && typeof handler !== "function") {
      throw validationError("handler", `${describe(handler)} is not a function`);
    }
    if (this.#tasks.has(schema.typeName)) {
      throw validationError("schema", `${schema.typeName} is already a task of workflow "${this.name}"`);
    }
    this.#tasks.set(schema.typeName, { schema, handler: handler as TaskHandler<never> | undefined });
    return this;
  }

  [TASKS](): ReadonlyMap<string, TaskDefinition> {
    return this.#tasks;
  }
}

/**
 * Starts a workflow definition named `name` (1-200 characters of `A-Z a-z
 * 0-9 _ -`); add its task types with {@link Workflow.task}.
 *
 * @example
 * ```ts
 * const checkout = workflow("checkout")
 *   .task(ChargeCardSchema, async (charge, ctx) => {
 *     ctx.next(ReserveStockSchema, { orderId: charge.orderId });
 *   })
 *   .task(ReserveStockSchema, async (reserve) => {
 *     await stock.reserve(reserve.orderId);
 *   });
 * ```
 */
export function workflow(name: string): Workflow {
  assertName("name", name);
  if (name.length > MAX_WORKFLOW_NAME) {
    throw validationError("name", `${describe(name)} is longer than ${MAX_WORKFLOW_NAME} characters`);
  }
  return new WorkflowImpl(name);
}

/** Leaves room for the `WORKFLOW_` / `KV_` prefixes within the server's 255-character names. */
const MAX_WORKFLOW_NAME = 200;

/** A workflow's name and task table, checked (from any loaded copy of windshift). */
export interface WorkflowTable {
  readonly name: string;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
}

/** The table of `flow`; a validation error when it is not a workflow. */
export function workflowTable(flow: unknown): WorkflowTable {
  const f = flow as { [TASKS]?: unknown; name?: unknown } | null | undefined;
  const table = typeof f === "object" && f !== null ? f[TASKS] : undefined;
  if (typeof table !== "function") {
    throw validationError("workflow", `${describe(flow)} is not a workflow (build one with workflow(name))`);
  }
  const tasks = table.call(f) as ReadonlyMap<string, TaskDefinition>;
  return { name: f?.name as string, tasks };
}

/** The task definition for `schema` in `table`; a validation error when the workflow has no such task. */
export function taskOf(table: WorkflowTable, field: string, schema: unknown): TaskDefinition {
  assertSchema(field, schema);
  const task = table.tasks.get(schema.typeName);
  if (task === undefined) {
    throw validationError(field, `${schema.typeName} is not a task of workflow "${table.name}"`);
  }
  return task;
}
