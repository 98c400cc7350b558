import type { DescMessage, Message, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { SubscribeOptions } from "../consume/options.js";
import type { Subscription } from "../consume/subscription.js";
import type { FallbackHandler, Router } from "../process/handlers.js";
import type { IdempotentOptions } from "../process/idempotent.js";
import type { Middleware, ProcessOptions } from "../process/options.js";
import type { Processor } from "../process/processor.js";
import type { ReplayOptions, ReplayResult } from "../process/replay.js";
import type { PublishedEvent, PublishOptions } from "../publish/options.js";
import type { ConsumerDescription, ConsumerOptions } from "../streams/consumers.js";
import type { StreamDescription, StreamOptions } from "../streams/streams.js";
import type { ApplyOptions, PlanOptions } from "../topology/apply.js";
import type { TopologyPlan } from "../topology/plan.js";
import type { Topology } from "../topology/topology.js";
import type { Workflow } from "../workflow/definition.js";
import type { WorkflowRun } from "../workflow/inspect.js";
import type {
  EmittedWorkflowEvent,
  EmitWorkflowEventOptions,
  InspectWorkflowOptions,
  StartedWorkflow,
  WorkflowDescription,
} from "../workflow/operations.js";
import type { EnsureWorkflowOptions, RunWorkflowOptions, StartWorkflowOptions } from "../workflow/options.js";
import type { WorkflowWorker } from "../workflow/worker.js";
import type {
  ConsumerInfo,
  GetEventOptions,
  OperationOptions,
  PurgeResult,
  PurgeStreamOptions,
  StreamInfo,
} from "./operations.js";
import type { StoredEvent } from "./stored-event.js";

// The published types must compile where `lib` lacks `esnext.disposable` and
// `@types/node` is not loaded (TypeScript 7's defaults: `es2025`, `types: []`).
// `Events`, `Subscription`, `Processor` and `WorkflowWorker` extend
// `AsyncDisposable`, and nats.js declares `[Symbol.asyncDispose]()`; without
// these, both fail with skipLibCheck off. They are `@types/node`'s polyfill,
// word for word, and merge with the lib's (or its) declarations where present.
// They state no more than is true where windshift runs: Node.js defines both
// symbols (since 20.4). They also let such projects write `await using`.
declare global {
  interface SymbolConstructor {
    /** The method `using` calls when a block ends. */
    readonly dispose: unique symbol;
    /** The method `await using` calls when a block ends. */
    readonly asyncDispose: unique symbol;
  }
  interface Disposable {
    /** Releases what the object holds; called by `using`. */
    [Symbol.dispose](): void;
  }
  interface AsyncDisposable {
    /** Releases what the object holds, as its `close()` does; called by `await using`. */
    [Symbol.asyncDispose](): PromiseLike<void>;
  }
}

/**
 * The typed events client: the same interface on every engine. Create it with
 * `createEvents(nc)` (NATS JetStream) or `createMemoryEvents()` (in memory,
 * from `windshift/testing`).
 */
export interface Events extends AsyncDisposable {
  /**
   * Creates the stream, or updates it to exactly these options (options left
   * out fall back to their defaults). Idempotent.
   *
   * @example
   * ```ts
   * await events.ensureStream("orders", { subjects: ["orders.>"], maxAgeMs: 7 * 86_400_000 });
   * ```
   */
  ensureStream(name: string, options?: StreamOptions): Promise<StreamDescription>;

  /**
   * Creates a consumer on `stream`; a durable one (with `name`) that exists is
   * updated instead and keeps its position. Without `name` the consumer is
   * ephemeral and its generated name is returned.
   *
   * @example
   * ```ts
   * const consumer = await events.ensureConsumer("orders", {
   *   name: "order-processor",
   *   subjects: ["orders.created"],
   *   from: { start: true },
   * });
   * ```
   */
  ensureConsumer(stream: string, options?: ConsumerOptions): Promise<ConsumerDescription>;

  /**
   * Publishes `data` as a message of `schema` to `subject` and waits for the
   * stream to store it. `data` is a message initializer or a message of
   * `schema`.
   *
   * @example
   * ```ts
   * const { id } = await events.publish("orders.created", OrderCreatedSchema, { orderId: "123" }, {
   *   idempotencyKey: "order-123-created",
   * });
   * ```
   */
  publish<Desc extends DescMessage>(
    subject: string,
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
    options?: PublishOptions,
  ): Promise<PublishedEvent>;

  /**
   * Subscribes to events delivered through `consumer` on `stream`.
   *
   * @example
   * ```ts
   * await using sub = await events.subscribe("orders", "order-processor", { schema: OrderCreatedSchema });
   * for await (const event of sub) {
   *   console.log(event.data.orderId);
   *   await event.ack();
   * }
   * ```
   */
  subscribe<Desc extends DescMessage>(
    stream: string,
    consumer: string,
    options: SubscribeOptions<Desc> & { readonly schema: Desc },
  ): Promise<Subscription<MessageShape<Desc>>>;
  /** Without a `schema`: events typed as any message, decoded by `registry` when one is given. */
  subscribe(stream: string, consumer: string, options?: SubscribeOptions): Promise<Subscription<Message>>;

  /**
   * Processes the events delivered through `consumer` on `stream` with
   * `handlers` until closed: a router of typed handlers ({@link router},
   * {@link handle}), or one function for every event. A handler that returns
   * has its event acked; one that throws has it retried after the backoff
   * delay, and dead-lettered (or rejected permanently) once `maxAttempts` is
   * reached, at once for a `PermanentError` or undecodable data.
   *
   * @example
   * ```ts
   * await using processor = await events.process(
   *   "orders",
   *   "order-processor",
   *   router()
   *     .on(OrderCreatedSchema, async (order) => reserve(order.orderId))
   *     .on(OrderShippedSchema, async (shipped) => notify(shipped.orderId)),
   *   { concurrency: 8, orderBy: "subject", maxAttempts: 5, deadLetter: { subject: "dlq.orders" } },
   * );
   * ```
   */
  process(
    stream: string,
    consumer: string,
    handlers: Router | FallbackHandler,
    options?: ProcessOptions,
  ): Promise<Processor>;

  /**
   * Publishes the dead letters stored in `stream` to their original subjects
   * again (oldest first, payload and headers as the event had them) and
   * deletes them from `stream`. Dead letters whose idempotency key the
   * original stream still remembers are left in place and reported.
   *
   * @example
   * ```ts
   * const { replayed } = await events.replayDeadLetters("orders-dlq");
   * ```
   */
  replayDeadLetters(stream: string, options?: ReplayOptions): Promise<ReplayResult>;

  /**
   * Creates (or opens) the key-value bucket `bucket` and returns processor
   * middleware that skips events whose idempotency key was already processed
   * (they are acked without running the handler) and records each key once
   * its handler returns.
   *
   * @example
   * ```ts
   * const once = await events.idempotent("order-processor-done");
   * await events.process("orders", "order-processor", handlers, { middleware: [once] });
   * ```
   */
  idempotent(bucket: string, options?: IdempotentOptions): Promise<Middleware>;

  /**
   * A stream's configuration and what it holds now (events, bytes, first and
   * last id and time, subjects, consumers). `NOT_FOUND` when it is missing.
   *
   * @example
   * ```ts
   * const { state } = await events.streamInfo("orders");
   * console.log(state.events, "events,", state.lastTime);
   * ```
   */
  streamInfo(name: string, options?: OperationOptions): Promise<StreamInfo>;

  /** Every stream, by name (the engine's own, such as key-value buckets' `KV_…`, included). */
  listStreams(options?: OperationOptions): Promise<StreamInfo[]>;

  /**
   * Deletes a stream with its events and consumers; their subscribers end
   * with `NOT_FOUND`. `NOT_FOUND` when it is missing.
   */
  deleteStream(name: string, options?: OperationOptions): Promise<void>;

  /**
   * Removes events from a stream: all of them, those on `subject`, those
   * below `upToId`, or all but the `keepLast` newest. Ids are not reused.
   *
   * @example
   * ```ts
   * const { purged } = await events.purgeStream("orders", { subject: "orders.test.>" });
   * ```
   */
  purgeStream(name: string, options?: PurgeStreamOptions): Promise<PurgeResult>;

  /**
   * A consumer's configuration and progress: its lag (`pending`), events
   * waiting to be acked, redelivered, last delivered and last acked ids.
   * `NOT_FOUND` when it (or its stream) is missing.
   *
   * @example
   * ```ts
   * const { state } = await events.consumerInfo("orders", "billing");
   * console.log("lag", state.pending, "unacked", state.unsettled);
   * ```
   */
  consumerInfo(stream: string, name: string, options?: OperationOptions): Promise<ConsumerInfo>;

  /** Every consumer of `stream`, by name. `NOT_FOUND` when the stream is missing. */
  listConsumers(stream: string, options?: OperationOptions): Promise<ConsumerInfo[]>;

  /** Deletes a consumer; its subscribers end with `NOT_FOUND`. `NOT_FOUND` when it is missing. */
  deleteConsumer(stream: string, name: string, options?: OperationOptions): Promise<void>;

  /**
   * Reads event `id` of `stream` back, decoded as `schema` (or by a
   * `registry`). `NOT_FOUND` when there is no such event.
   *
   * @example
   * ```ts
   * const event = await events.getEvent("orders", 42, { schema: OrderCreatedSchema });
   * console.log(event.data.orderId, event.storedAt);
   * ```
   */
  getEvent<Desc extends DescMessage>(
    stream: string,
    id: number,
    options: GetEventOptions<Desc> & { readonly schema: Desc },
  ): Promise<StoredEvent<MessageShape<Desc>>>;
  /** Without a `schema`: the event typed as any message, decoded by `registry` when one is given. */
  getEvent(stream: string, id: number, options?: GetEventOptions): Promise<StoredEvent<Message>>;

  /**
   * Reads back the last event on `subject` (no wildcards) in `stream`.
   * `NOT_FOUND` when there is none.
   */
  getLastEvent<Desc extends DescMessage>(
    stream: string,
    subject: string,
    options: GetEventOptions<Desc> & { readonly schema: Desc },
  ): Promise<StoredEvent<MessageShape<Desc>>>;
  /** Without a `schema`: the event typed as any message, decoded by `registry` when one is given. */
  getLastEvent(stream: string, subject: string, options?: GetEventOptions): Promise<StoredEvent<Message>>;

  /**
   * Compares a declared topology (streams and durable consumers, with the
   * options of `ensureStream` / `ensureConsumer`) with what the engine
   * holds, and returns the changes that would make it match — create,
   * update (field by field), unchanged, delete (with `prune`), or replace
   * (an update the engine cannot make in place) — touching nothing.
   *
   * @example
   * ```ts
   * const { changes } = await events.plan({ streams: [{ name: "orders", subjects: ["orders.>"] }] });
   * for (const c of changes) console.log(c.action, c.kind, c.name);
   * ```
   */
  plan(topology: Topology, options?: PlanOptions): Promise<TopologyPlan>;

  /**
   * Makes the engine match a declared topology and returns what it did (the
   * plan, carried out): streams, then consumers, then deletions. Applying
   * the same topology again changes nothing. A plan with a change the
   * engine cannot make in place is refused (`VALIDATION`) before anything
   * is changed; `dryRun` only plans.
   *
   * @example
   * ```ts
   * await events.apply({
   *   streams: [{ name: "orders", subjects: ["orders.>"], maxAgeMs: 604_800_000 }],
   *   consumers: [{ stream: "orders", name: "billing", from: { start: true } }],
   * });
   * ```
   */
  apply(topology: Topology, options?: ApplyOptions): Promise<TopologyPlan>;

  /**
   * Creates or updates what `flow` needs on the engine: its stream
   * (`WORKFLOW_<name>`), one durable consumer per task type, and the
   * key-value bucket holding its runs. Idempotent; call it at deploy or
   * start-up, from any service that shares the workflow.
   *
   * @example
   * ```ts
   * await events.ensureWorkflow(checkout, { retainMs: 86_400_000 });
   * ```
   */
  ensureWorkflow(flow: Workflow, options?: EnsureWorkflowOptions): Promise<WorkflowDescription>;

  /**
   * Starts a run of `flow` whose first task is `schema` with `data`.
   * Idempotent by `runId`: starting an existing run returns it
   * (`duplicate: true`) and starts nothing new.
   *
   * @example
   * ```ts
   * const { runId } = await events.startWorkflow(checkout, ChargeCardSchema, { orderId: "1" }, { runId: "order-1" });
   * ```
   */
  startWorkflow<Desc extends DescMessage>(
    flow: Workflow,
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
    options?: StartWorkflowOptions,
  ): Promise<StartedWorkflow>;

  /**
   * Runs the tasks of `flow` (or of the task types in `options.tasks`) as
   * they are scheduled, until closed. What a task's handler asks for is
   * committed once per task, so every next task is stored once and every
   * join fires once, also when a task is redelivered; the handler itself may
   * run more than once (its side effects are at-least-once).
   *
   * @example
   * ```ts
   * await using worker = await events.runWorkflow(checkout, { concurrency: 8 });
   * ```
   */
  runWorkflow(flow: Workflow, options?: RunWorkflowOptions): Promise<WorkflowWorker>;

  /**
   * Emits the run-scoped event `name` into run `runId` from outside it (a
   * webhook, another service), firing the joins it completes. The first emit
   * of a name counts; a second reports `duplicate: true`. `NOT_FOUND` when
   * the run does not exist.
   *
   * @example
   * ```ts
   * await events.emitWorkflowEvent(checkout, "order-1", "payment-confirmed", PaymentSchema, { amount: 10 });
   * ```
   */
  emitWorkflowEvent(
    flow: Workflow,
    runId: string,
    name: string,
    schema?: undefined,
    data?: undefined,
    options?: EmitWorkflowEventOptions,
  ): Promise<EmittedWorkflowEvent>;
  /** With data: the event carries a message of `schema`, which join tasks read with `ctx.events.get`. */
  emitWorkflowEvent<Desc extends DescMessage>(
    flow: Workflow,
    runId: string,
    name: string,
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
    options?: EmitWorkflowEventOptions,
  ): Promise<EmittedWorkflowEvent>;

  /**
   * The state of run `runId`: its status, tasks, events and joins.
   * `NOT_FOUND` when it does not exist (or expired). Render it with
   * {@link toMermaid}.
   *
   * @example
   * ```ts
   * const run = await events.inspectWorkflow(checkout, "order-1");
   * console.log(run.status, toMermaid(run));
   * ```
   */
  inspectWorkflow(flow: Workflow, runId: string, options?: InspectWorkflowOptions): Promise<WorkflowRun>;

  /**
   * Releases what the client holds (its inboxes and timers; the memory
   * engine's events). Close subscriptions and processors first. A NATS
   * connection stays yours to close.
   */
  close(): Promise<void>;
}
