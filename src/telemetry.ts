import type { NatsConnection } from "@nats-io/nats-core";
import {
  type Attributes,
  type Context,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Link,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { isWindshiftError } from "./errors.js";
import { NAME, VERSION } from "./version.js";

// Attribute names from the OpenTelemetry messaging semantic conventions (v1.44),
// plus a few of our own under messaging.nats.* and windshift.*.
export const Attr = {
  System: "messaging.system",
  OperationType: "messaging.operation.type",
  OperationName: "messaging.operation.name",
  Destination: "messaging.destination.name",
  DestinationTemplate: "messaging.destination.template",
  Subscription: "messaging.destination.subscription.name",
  ClientId: "messaging.client.id",
  MessageId: "messaging.message.id",
  BodySize: "messaging.message.body.size",
  ServerAddress: "server.address",
  ServerPort: "server.port",
  ErrorType: "error.type",
  Stream: "messaging.nats.stream",
  DeliveryAttempt: "messaging.nats.delivery_attempt",
  DataType: "windshift.data_type",
  Duplicate: "windshift.duplicate",
} as const;

/** The `messaging.system` value: not registered in the conventions, but what NATS instrumentations use. */
const SYSTEM = "nats";

/** The conventions' advised buckets for messaging durations, in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** How a process span relates to the producer's span. */
export type TraceProcessing = "child" | "link";

/** Tracer, instruments and settings shared by one events client. */
export interface Telemetry {
  readonly tracer: Tracer;
  readonly traceProcessing: TraceProcessing;
  readonly recordBodySize: boolean;
  readonly sent: Counter;
  readonly consumed: Counter;
  readonly operationDuration: Histogram;
  readonly processDuration: Histogram;
  /** `messaging.system`, `messaging.client.id`, `server.address` and `server.port`, for the current server. */
  connection(): Attributes;
  /**
   * Whether spans go anywhere. False while the global tracer provider has no
   * SDK behind it: then windshift skips building spans and their attributes
   * (it still propagates a trace context it is given). Checked at most once a
   * second until an SDK shows up.
   */
  tracing(): boolean;
  /**
   * Whether metrics go anywhere. The metrics API has no proxy: a meter taken
   * before an SDK is registered stays a no-op, so this is decided once, and
   * while it is false no metric work (attributes, clock readings) is done.
   */
  readonly metering: boolean;
  /** Metric attributes of a publish, cached per stream (and per error type). */
  publishAttributes(stream: string | undefined, errorType: string | undefined): Attributes;
}

/** Creates the tracer and instruments; with no SDK registered they are no-ops. */
export function createTelemetry(
  nc: NatsConnection,
  options: {
    tracerProvider?: TracerProvider | undefined;
    meterProvider?: MeterProvider | undefined;
    traceProcessing: TraceProcessing;
    recordBodySize: boolean;
  },
): Telemetry {
  const provider = options.tracerProvider ?? trace.getTracerProvider();
  const tracer = provider.getTracer(NAME, VERSION);
  let tracing = !(provider instanceof ProxyTracerProvider);
  let checkedAt = Number.NEGATIVE_INFINITY;
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(NAME, VERSION);
  const metering = meter.constructor !== createNoopMeter().constructor;
  const histogram = (name: string, description: string) =>
    meter.createHistogram(name, { unit: "s", description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  let cachedServer = "";
  let cached: Attributes = {};
  let publishCache = new Map<string, Attributes>();
  let publishCacheFor: Attributes | undefined;
  return {
    tracer,
    metering,
    traceProcessing: options.traceProcessing,
    recordBodySize: options.recordBodySize,
    sent: meter.createCounter("messaging.client.sent.messages", {
      unit: "{message}",
      description: "Number of messages producers attempted to send to the broker.",
    }),
    consumed: meter.createCounter("messaging.client.consumed.messages", {
      unit: "{message}",
      description: "Number of messages that were delivered to the application.",
    }),
    operationDuration: histogram(
      "messaging.client.operation.duration",
      "Duration of messaging operation initiated by a producer or consumer client.",
    ),
    processDuration: histogram("messaging.process.duration", "Duration of processing operation."),
    tracing() {
      if (tracing) return true;
      const now = performance.now();
      if (now - checkedAt >= 1_000) {
        checkedAt = now;
        tracing = (provider as ProxyTracerProvider).getDelegateTracer(NAME, VERSION) !== undefined;
      }
      return tracing;
    },
    publishAttributes(stream, error) {
      const connection = this.connection();
      if (connection !== publishCacheFor || publishCache.size > 1_000) {
        publishCacheFor = connection;
        publishCache = new Map();
      }
      const key = `${stream ?? ""}\u0000${error ?? ""}`;
      let attrs = publishCache.get(key);
      if (attrs === undefined) {
        const fresh: Attributes = { ...connection, [Attr.OperationName]: "publish", [Attr.OperationType]: "send" };
        if (stream !== undefined) fresh[Attr.Stream] = stream;
        if (error !== undefined) fresh[Attr.ErrorType] = error;
        attrs = Object.freeze(fresh);
        publishCache.set(key, attrs);
      }
      return attrs;
    },
    connection() {
      const server = serverOf(nc);
      if (server !== cachedServer || cached[Attr.ClientId] === undefined) {
        cachedServer = server;
        cached = Object.freeze(connectionAttributes(nc, server));
      }
      return cached;
    },
  };
}

function serverOf(nc: NatsConnection): string {
  try {
    return nc.getServer();
  } catch {
    return "";
  }
}

function connectionAttributes(nc: NatsConnection, server: string): Attributes {
  const attrs: Attributes = { [Attr.System]: SYSTEM };
  const clientId = nc.info?.client_id;
  if (clientId !== undefined) attrs[Attr.ClientId] = String(clientId);
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(server);
  if (m) {
    attrs[Attr.ServerAddress] = m[1] as string;
    attrs[Attr.ServerPort] = Number(m[2]);
  }
  return attrs;
}

/** The low-cardinality `error.type` of a failure: the windshift code, else the error's name. */
export function errorType(err: unknown): string {
  if (isWindshiftError(err)) return err.code;
  if (err instanceof Error && err.name) return err.name;
  return "_OTHER";
}

/** Marks `span` failed with `err`, per the conventions. */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  span.setAttribute(Attr.ErrorType, errorType(err));
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/** Starts the CONSUMER `process` span of an event handed to the user. */
export function startProcessSpan(
  t: Telemetry,
  producer: Context,
  attributes: Attributes,
  subject: string,
): { span: Span; context: Context } {
  const producerSpan = trace.getSpanContext(producer);
  const links: Link[] | undefined = producerSpan ? [{ context: producerSpan }] : undefined;
  const parent = t.traceProcessing === "child" ? producer : trace.deleteSpan(producer);
  const span = t.tracer.startSpan(
    `process ${subject}`,
    links === undefined ? { kind: SpanKind.CONSUMER, attributes } : { kind: SpanKind.CONSUMER, attributes, links },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs a management call (ensureStream, ensureConsumer) inside a CLIENT span. */
export async function withManagementSpan<T>(
  t: Telemetry,
  operation: string,
  attributes: Attributes,
  work: () => Promise<T>,
): Promise<T> {
  if (!t.tracing()) return work();
  const span = t.tracer.startSpan(`${operation} ${String(attributes[Attr.Stream])}`, {
    kind: SpanKind.CLIENT,
    attributes: { ...t.connection(), [Attr.OperationName]: operation, ...attributes },
  });
  try {
    return await work();
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}
