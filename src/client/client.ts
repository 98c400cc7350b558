import type { DescMessage } from "@bufbuild/protobuf";
import { subscribe } from "../consume/open-subscription.js";
import type { SubscribeOptions } from "../consume/options.js";
import type { Engine } from "../engines/engine.js";
import { idempotent } from "../process/idempotent.js";
import { replayDeadLetters } from "../process/replay.js";
import { startProcessor } from "../process/running-processor.js";
import { publish } from "../publish/publish.js";
import type { Runtime } from "../runtime.js";
import { ensureConsumer } from "../streams/consumers.js";
import { ensureStream } from "../streams/streams.js";
import { createTelemetry } from "../telemetry/telemetry.js";
import { apply, plan } from "../topology/apply.js";
import type { Workflow } from "../workflow/definition.js";
import type { EmitWorkflowEventOptions } from "../workflow/operations.js";
import { emitWorkflowEvent, ensureWorkflow, inspectWorkflow, startWorkflow } from "../workflow/operations.js";
import { runWorkflow } from "../workflow/worker.js";
import type { Events } from "./events.js";
import {
  consumerInfo,
  deleteConsumer,
  deleteStream,
  type GetEventOptions,
  getEvent,
  getLastEvent,
  listConsumers,
  listStreams,
  purgeStream,
  streamInfo,
} from "./operations.js";
import type { ClientSettings } from "./options.js";

/**
 * The events client over `engine`: every operation is written once, above
 * the engine seam, and runs on whichever engine it is given. `release` is
 * what the client's `close()` does: close the engine, unless the engine is
 * shared (a memory store several clients use).
 */
export function createClient(
  engine: Engine,
  settings: ClientSettings,
  release: () => Promise<void> = () => engine.close(),
): Events {
  const rt: Runtime = {
    engine,
    clock: engine.clock,
    logger: settings.logger,
    telemetry: createTelemetry(engine, settings.telemetry),
    cloudEvents: settings.cloudEvents,
    validate: settings.validate,
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= release();
    return closing;
  };
  return {
    ensureStream: (name, opts) => ensureStream(rt, name, opts),
    ensureConsumer: (stream, opts) => ensureConsumer(rt, stream, opts),
    publish: (subject, schema, data, opts) => publish(rt, subject, schema, data, opts),
    subscribe: (stream: string, consumer: string, opts?: SubscribeOptions) => subscribe(rt, stream, consumer, opts),
    process: (stream, consumer, handlers, opts) => startProcessor(rt, stream, consumer, handlers, opts),
    replayDeadLetters: (stream, opts) => replayDeadLetters(rt, stream, opts),
    idempotent: (bucket, opts) => idempotent(rt, bucket, opts),
    streamInfo: (name, opts) => streamInfo(rt, name, opts),
    listStreams: (opts) => listStreams(rt, opts),
    deleteStream: (name, opts) => deleteStream(rt, name, opts),
    purgeStream: (name, opts) => purgeStream(rt, name, opts),
    consumerInfo: (stream, name, opts) => consumerInfo(rt, stream, name, opts),
    listConsumers: (stream, opts) => listConsumers(rt, stream, opts),
    deleteConsumer: (stream, name, opts) => deleteConsumer(rt, stream, name, opts),
    getEvent: (stream: string, id: number, opts?: GetEventOptions) => getEvent(rt, stream, id, opts),
    getLastEvent: (stream: string, subject: string, opts?: GetEventOptions) => getLastEvent(rt, stream, subject, opts),
    plan: (topology, opts) => plan(rt, topology, opts),
    apply: (topology, opts) => apply(rt, topology, opts),
    ensureWorkflow: (flow, opts) => ensureWorkflow(rt, flow, opts),
    startWorkflow: (flow, schema, data, opts) => startWorkflow(rt, flow, schema, data, opts),
    runWorkflow: (flow, opts) => runWorkflow(rt, flow, opts),
    emitWorkflowEvent: (
      flow: Workflow,
      runId: string,
      name: string,
      schema?: DescMessage,
      data?: unknown,
      opts?: EmitWorkflowEventOptions,
    ) => emitWorkflowEvent(rt, flow, runId, name, schema, data, opts),
    inspectWorkflow: (flow, runId, opts) => inspectWorkflow(rt, flow, runId, opts),
    close,
    [Symbol.asyncDispose]: close,
  } as Events;
}
