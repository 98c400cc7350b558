import type { DescMessage, Message, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/nats-core";
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import { type ConsumerDescription, type ConsumerOptions, ensureConsumer } from "./consumers.js";
import { validationError } from "./errors.js";
import { type Logger, silentLogger } from "./logger.js";
import { describe } from "./names.js";
import { type PublishedEvent, type PublishOptions, publish } from "./publish.js";
import { createRuntime } from "./runtime.js";
import { ensureStream, type StreamDescription, type StreamOptions } from "./streams.js";
import { type SubscribeOptions, type Subscription, subscribe } from "./subscription.js";
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
}

const KNOWN = new Set(["logger", "tracerProvider", "meterProvider"]);

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
  const rt = createRuntime(nc, logger);
  return {
    ensureStream: (name, opts) => ensureStream(rt, name, opts),
    ensureConsumer: (stream, opts) => ensureConsumer(rt, stream, opts),
    publish: (subject, schema, data, opts) => publish(rt, subject, schema, data, opts),
    subscribe: (stream: string, consumer: string, opts?: SubscribeOptions) => subscribe(rt, stream, consumer, opts),
  } as Events;
}
