/**
 * windshift: strongly typed Protobuf event streams, on NATS JetStream (or in
 * memory for tests, from `windshift/testing`).
 *
 * @module
 */

export { createEvents } from "./client/create-events.js";
export type { Events } from "./client/events.js";
export type {
  ConsumerInfo,
  ConsumerInfoState,
  GetEventOptions,
  OperationOptions,
  PurgeResult,
  PurgeStreamOptions,
  StreamInfo,
  StreamInfoState,
} from "./client/operations.js";
export type { ClientOptions, EventsOptions } from "./client/options.js";
export type { StoredEvent } from "./client/stored-event.js";
export type { CloudEventAttributes } from "./cloudevents/attributes.js";
export type { CloudEventsOptions } from "./cloudevents/options.js";
export type { Event, EventHeaders, RejectOptions, SettleOptions } from "./consume/event.js";
export type { IdleOptions } from "./consume/idle.js";
export type { SubscribeOptions } from "./consume/options.js";
export type { SubscriptionStatus } from "./consume/status.js";
export type { Subscription } from "./consume/subscription.js";
export type { FeedStatus } from "./engines/engine.js";
export { ErrorCode, isWindshiftError, WindshiftError } from "./errors.js";
export type { BackoffOptions } from "./internal/backoff.js";
export type { Clock } from "./internal/clock.js";
export type { Logger } from "./internal/logger.js";
export type { SubjectRules } from "./internal/names.js";
export { isValidName, isValidSubject } from "./internal/names.js";
export type { RetryOptions } from "./internal/retry.js";
export type { BackoffDecider } from "./process/backoff.js";
export type { DeadLetterReason } from "./process/failure-policy.js";
export type { FallbackHandler, Handler, Router, UnknownTypePolicy } from "./process/handlers.js";
export { handle, isRouter, PermanentError, router } from "./process/handlers.js";
export type { IdempotentOptions } from "./process/idempotent.js";
export type { DeadLetterOptions, Middleware, ProcessOptions } from "./process/options.js";
export type { OutcomeCounts } from "./process/outcomes.js";
export type { Processor, ProcessorStats } from "./process/processor.js";
export type { ReplayOptions, ReplayResult } from "./process/replay.js";
export type { PublishedEvent, PublishOptions, Transaction } from "./publish/options.js";
export type { ConsumerDescription, ConsumerOptions } from "./streams/consumers.js";
export type { ConsumerStart, FromEnd, FromId, FromStart, FromTime, SourceStart } from "./streams/position.js";
export type { StreamDescription, StreamOptions, StreamSourceOptions } from "./streams/streams.js";
export type { TraceProcessing } from "./telemetry/telemetry.js";
export type { ApplyOptions, PlanOptions } from "./topology/apply.js";
export type { FieldChange, TopologyChange, TopologyPlan } from "./topology/plan.js";
export type { ConsumerDeclaration, StreamDeclaration, Topology } from "./topology/topology.js";
export type { Violation } from "./validation/rules.js";
export { violationsOf } from "./validation/rules.js";
export { Headers } from "./wire.js";
export type { NextOptions, TaskContext, WorkflowEvent, WorkflowEvents } from "./workflow/context.js";
export type { TaskHandler, Workflow } from "./workflow/definition.js";
export { workflow } from "./workflow/definition.js";
export type { WorkflowEventInfo, WorkflowJoinInfo, WorkflowRun, WorkflowTaskInfo } from "./workflow/inspect.js";
export { toMermaid } from "./workflow/inspect.js";
export type {
  EmittedWorkflowEvent,
  EmitWorkflowEventOptions,
  InspectWorkflowOptions,
  StartedWorkflow,
  WorkflowDescription,
} from "./workflow/operations.js";
export type { EnsureWorkflowOptions, RunWorkflowOptions, StartWorkflowOptions } from "./workflow/options.js";
export type { RunStatus, TaskStatus } from "./workflow/run-state.js";
export type { WorkflowWorker } from "./workflow/worker.js";
