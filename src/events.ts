import type { DescMessage, Message, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/nats-core";
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import { type ConsumerDescription, type ConsumerOptions, ensureConsumer } from "./consumers.js";
import { type ReplayOptions, type ReplayResult, replayDeadLetters } from "./dead-letter.js";
import { validationError } from "./errors.js";
import type { FallbackHandler, Router } from "./handlers.js";
import { type IdempotentOptions, idempotent } from "./idempotent.js";
import { type Logger, silentLogger } from "./logger.js";
import { describe } from "./names.js";
import { type Middleware, type ProcessOptions, type Processor, startProcessor } from "./processor.js";
import { type PublishedEvent, type PublishOptions, publish } from "./publish.js";
import { createRuntime } from "./runtime.js";
import { ensureStream, type StreamDescription, type StreamOptions } from "./streams.js";
import { type SubscribeOptions, type Subscription, subscribe } from "./subscription.js";
import { createTelemetry } from "./telemetry.js";
import * as v from "./validate.js";

/** Options for {@link createEvents}. */
export interface EventsOptions {
  /**
   * Where windshift logs what it does (stream and consumer changes, retries,
   * subscription trouble).
   * @default a logger that says nothing
   */
  readonly logger?: Logger;
  /**
   * Tracer provider for spans.
   * @default the global provider from `@opentelemetry/api`
   */
  readonly tracerProvider?: TracerProvider;
  /**
   * Meter provider for metrics.
   * @default the global provider from `@opentelemetry/api`
   */
  readonly meterProvider?: MeterProvider;
  /**
   * How the span that processes an event relates to the span that published
   * it. `"child"`: the process span is the producer span's child (and links to
   * it), so publish and processing form one trace. `"link"`: every processing
   * starts a new trace that links to the producer span, as the messaging
   * conventions prefer for batch work.
   * @default "child"
   */
  readonly traceProcessing?: "child" | "link";
  /**
   * Record `messaging.message.body.size` on publish and process spans (opt-in
   * in the conventions).
   * @default false
   */
  readonly recordBodySize?: boolean;
  /**
   * How many publishes may await the stream's acknowledgement at once. A
   * publish beyond that waits for room, so memory stays bounded however many
   * are started.
   * @default 4_096
   */
  readonly maxPublishesInFlight?: number;
}

/**
 * The typed events client for one NATS connection. Create it with
 * {@link createEvents}.
 */
export interface Events {
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
}

const KNOWN = new Set([
  "logger",
  "tracerProvider",
  "meterProvider",
  "traceProcessing",
  "recordBodySize",
  "maxPublishesInFlight",
]);

/**
 * Creates the events client over a NATS connection you own (from
 * `@nats-io/transport-node` or any nats.js v3 transport). Closing the
 * connection remains your job.
 *
 * @example
 * ```ts
 * import { connect } from "@nats-io/transport-node";
 * import { createEvents } from "windshift";
 *
 * const nc = await connect({ servers: "127.0.0.1:4222" });
 * const events = createEvents(nc);
 * ```
 */
export function createEvents(nc: NatsConnection, options?: EventsOptions): Events {
  const conn = nc as Partial<NatsConnection> | null | undefined;
  if (typeof conn !== "object" || conn === null || typeof conn.request !== "function") {
    throw validationError("nc", `${describe(nc)} is not a NATS connection`);
  }
  const o = v.optionsObject("options", options);
  v.rejectUnknown(o, KNOWN);
  const logger = (o.logger as Logger | undefined) ?? silentLogger;
  for (const level of ["debug", "info", "warn", "error"] as const) {
    if (typeof logger[level] !== "function") throw validationError("logger", `has no ${level}() method`);
  }
  for (const [field, method] of [
    ["tracerProvider", "getTracer"],
    ["meterProvider", "getMeter"],
  ] as const) {
    const provider = o[field] as Record<string, unknown> | undefined;
    if (provider !== undefined && (typeof provider !== "object" || typeof provider?.[method] !== "function")) {
      throw validationError(field, `${describe(provider)} has no ${method}() method`);
    }
  }
  const telemetry = createTelemetry(nc, {
    tracerProvider: o.tracerProvider as TracerProvider | undefined,
    meterProvider: o.meterProvider as MeterProvider | undefined,
    traceProcessing: v.oneOf("traceProcessing", o.traceProcessing, ["child", "link"] as const) ?? "child",
    recordBodySize: v.boolean("recordBodySize", o.recordBodySize) ?? false,
  });
  const maxPublishesInFlight = v.integer("maxPublishesInFlight", o.maxPublishesInFlight, 1, 1_000_000) ?? 4_096;
  const rt = createRuntime(nc, logger, telemetry, maxPublishesInFlight);
  return {
    ensureStream: (name, opts) => ensureStream(rt, name, opts),
    ensureConsumer: (stream, opts) => ensureConsumer(rt, stream, opts),
    publish: (subject, schema, data, opts) => publish(rt, subject, schema, data, opts),
    subscribe: (stream: string, consumer: string, opts?: SubscribeOptions) => subscribe(rt, stream, consumer, opts),
    process: (stream, consumer, handlers, opts) => startProcessor(rt, stream, consumer, handlers, opts),
    replayDeadLetters: (stream, opts) => replayDeadLetters(rt, stream, opts),
    idempotent: (bucket, opts) => idempotent(rt, bucket, opts),
  } as Events;
}
