/**
 * What windshift's instrumentation costs per event when no OpenTelemetry SDK is
 * registered. There is no uninstrumented build to race against, so this
 * replays, against the no-op API, the telemetry work the hot paths do, call for
 * call and object for object:
 *
 * - publish: `publish()` in src/publish.ts (span attributes, `context.active()`,
 *   the PRODUCER span, `injectTraceContext` of src/trace-context.ts, the metric
 *   attributes, `setAttribute` on the ack, `span.end`, `sent.add`,
 *   `operationDuration.record`);
 * - process: `#toEvent` in src/subscription.ts (span attributes, the data-type
 *   header, `extractTraceContext`, `startProcessSpan` of src/telemetry.ts,
 *   `consumed.add`) plus the `performance.now()` EventImpl takes for
 *   `messaging.process.duration`;
 * - settle: `ack()` in src/event.ts (`#startSettleSpan`, `span.end`,
 *   `operationDuration.record`) plus `endProcessing()` (`span.end`,
 *   `processDuration.record`).
 *
 * Keep it in step with those files when they change.
 *
 * @module
 */
import { type MsgHdrs, type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { Headers } from "windshift";
import { median } from "./stats.js";

// The attribute names and values of src/telemetry.ts.
const Attr = {
  System: "messaging.system",
  OperationType: "messaging.operation.type",
  OperationName: "messaging.operation.name",
  Destination: "messaging.destination.name",
  DestinationTemplate: "messaging.destination.template",
  Subscription: "messaging.destination.subscription.name",
  ClientId: "messaging.client.id",
  MessageId: "messaging.message.id",
  ServerAddress: "server.address",
  ServerPort: "server.port",
  Stream: "messaging.nats.stream",
  DeliveryAttempt: "messaging.nats.delivery_attempt",
  DataType: "windshift.data_type",
} as const;
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Per-operation cost of the no-op telemetry, in nanoseconds. */
export interface TelemetryCost {
  /** One `publish`. */
  readonly publishNs: number;
  /** One event handed out by a subscription. */
  readonly processNs: number;
  /** One `ack` (settle span, metrics) and the end of processing. */
  readonly settleNs: number;
  /** process + settle: one consumed and acked event. */
  readonly consumeNs: number;
  readonly iterations: number;
  readonly batches: number;
}

/** Fails unless no tracer or meter provider is registered globally, which is what this measures. */
export function assertNoSdkRegistered(): void {
  const span = trace.getTracer("windshift-bench-probe").startSpan("probe");
  const recording = span.isRecording();
  span.end();
  if (recording) throw new Error("a global OpenTelemetry tracer provider is registered; the no-SDK figures are void");
}

/** Measures the three paths; `nc` is a live connection, as `connection()` asks it for the server on every call. */
export function measureTelemetryCost(nc: NatsConnection, iterations: number, batches: number): TelemetryCost {
  assertNoSdkRegistered();
  const t = createNoopTelemetry(nc);
  const subject = "bench.created";
  const typeName = "windshift.test.v1.TestEvent";
  // The headers a plain windshift event arrives with (no trace context: the
  // producer had no SDK either).
  const h = natsHeaders();
  h.set(Headers.DataType, typeName);
  h.set(Headers.PublishedTime, new Date().toISOString());

  const publishPath = (i: number): unknown => {
    const connection = t.connection();
    const attributes: Attributes = {
      ...connection,
      [Attr.OperationType]: "send",
      [Attr.OperationName]: "publish",
      [Attr.Destination]: subject,
      [Attr.DataType]: typeName,
    };
    const parent = context.active();
    const span = t.tracer.startSpan(`send ${subject}`, { kind: SpanKind.PRODUCER, attributes }, parent);
    injectTraceContext(trace.setSpan(parent, span), h);
    const started = performance.now();
    const metricAttributes: Attributes = {
      ...connection,
      [Attr.OperationName]: "publish",
      [Attr.OperationType]: "send",
    };
    span.setAttribute(Attr.MessageId, String(i));
    span.setAttribute(Attr.Stream, "bench");
    metricAttributes[Attr.Stream] = "bench";
    span.end();
    t.sent.add(1, metricAttributes);
    t.operationDuration.record((performance.now() - started) / 1000, metricAttributes);
    return span;
  };

  const processPath = (i: number): { span: Span; context: Context; handedOutAt: number } => {
    const attributes: Attributes = {
      ...t.connection(),
      [Attr.OperationType]: "process",
      [Attr.OperationName]: "process",
      [Attr.Destination]: subject,
      [Attr.Subscription]: "worker",
      [Attr.Stream]: "bench",
      [Attr.MessageId]: String(i),
      [Attr.DeliveryAttempt]: 1,
    };
    const type = h.get(Headers.DataType);
    if (type) attributes[Attr.DataType] = type;
    const producer = extractTraceContext(h);
    // startProcessSpan, traceProcessing "child"
    const producerSpan = trace.getSpanContext(producer);
    const links = producerSpan ? [{ context: producerSpan }] : undefined;
    const span = t.tracer.startSpan(
      `process ${subject}`,
      links === undefined ? { kind: SpanKind.CONSUMER, attributes } : { kind: SpanKind.CONSUMER, attributes, links },
      producer,
    );
    const ctx = trace.setSpan(producer, span);
    const handedOutAt = performance.now();
    t.consumed.add(1, t.metricAttributes());
    return { span, context: ctx, handedOutAt };
  };

  const settlePath = (i: number, event: { span: Span; context: Context; handedOutAt: number }): void => {
    const span = t.tracer.startSpan(
      `ack ${subject}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          ...t.connection(),
          [Attr.OperationType]: "settle",
          [Attr.OperationName]: "ack",
          [Attr.Destination]: subject,
          [Attr.Subscription]: "worker",
          [Attr.Stream]: "bench",
          [Attr.MessageId]: String(i),
        },
      },
      event.context,
    );
    const started = performance.now();
    span.end();
    const attributes: Attributes = {
      ...t.metricAttributes(),
      [Attr.OperationType]: "settle",
      [Attr.OperationName]: "ack",
    };
    t.operationDuration.record((performance.now() - started) / 1000, attributes);
    event.span.end();
    t.processDuration.record((performance.now() - event.handedOutAt) / 1000, t.metricAttributes());
  };

  // Events are processed ahead of time so that the settle loop times settling alone.
  const events = Array.from({ length: Math.min(iterations, 10_000) }, (_, i) => processPath(i));
  const time = (loop: () => void): number => {
    const start = process.hrtime.bigint();
    loop();
    return Number(process.hrtime.bigint() - start) / iterations;
  };
  let kept: unknown;
  const runPublish = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) kept = publishPath(i);
    });
  const runProcess = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) kept = processPath(i);
    });
  const runSettle = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) settlePath(i, events[i % events.length] as (typeof events)[number]);
    });
  const runConsume = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) settlePath(i, processPath(i));
    });

  // Warm up (JIT), then take the median of the batches, interleaved.
  runPublish();
  runProcess();
  runSettle();
  runConsume();
  const samples = { publish: [] as number[], process: [] as number[], settle: [] as number[], consume: [] as number[] };
  for (let b = 0; b < batches; b++) {
    samples.publish.push(runPublish());
    samples.process.push(runProcess());
    samples.settle.push(runSettle());
    samples.consume.push(runConsume());
  }
  if (kept === undefined) throw new Error("unreachable");
  return {
    publishNs: median(samples.publish),
    processNs: median(samples.process),
    settleNs: median(samples.settle),
    consumeNs: median(samples.consume),
    iterations,
    batches,
  };
}

interface NoopTelemetry {
  readonly tracer: ReturnType<typeof trace.getTracer>;
  readonly sent: ReturnType<ReturnType<typeof metrics.getMeter>["createCounter"]>;
  readonly consumed: ReturnType<ReturnType<typeof metrics.getMeter>["createCounter"]>;
  readonly operationDuration: ReturnType<ReturnType<typeof metrics.getMeter>["createHistogram"]>;
  readonly processDuration: ReturnType<ReturnType<typeof metrics.getMeter>["createHistogram"]>;
  connection(): Attributes;
  /** SubscriptionImpl.metricAttributes(). */
  metricAttributes(): Attributes;
}

/** createTelemetry (src/telemetry.ts) with the global, unregistered providers. */
function createNoopTelemetry(nc: NatsConnection): NoopTelemetry {
  const tracer = trace.getTracer("windshift", "0.1.0");
  const meter = metrics.getMeter("windshift", "0.1.0");
  const histogram = (name: string, description: string) =>
    meter.createHistogram(name, { unit: "s", description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  let cachedServer = "";
  let cached: Attributes = {};
  const connection = (): Attributes => {
    let server = "";
    try {
      server = nc.getServer();
    } catch {
      server = "";
    }
    if (server !== cachedServer || cached[Attr.ClientId] === undefined) {
      cachedServer = server;
      const attrs: Attributes = { [Attr.System]: "nats" };
      const clientId = nc.info?.client_id;
      if (clientId !== undefined) attrs[Attr.ClientId] = String(clientId);
      const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(server);
      if (m) {
        attrs[Attr.ServerAddress] = m[1] as string;
        attrs[Attr.ServerPort] = Number(m[2]);
      }
      cached = Object.freeze(attrs);
    }
    return cached;
  };
  let metricConnection: Attributes | undefined;
  let metricAttributes: Attributes = {};
  return {
    tracer,
    sent: meter.createCounter("messaging.client.sent.messages", { unit: "{message}" }),
    consumed: meter.createCounter("messaging.client.consumed.messages", { unit: "{message}" }),
    operationDuration: histogram("messaging.client.operation.duration", "Duration of messaging operation."),
    processDuration: histogram("messaging.process.duration", "Duration of processing operation."),
    connection,
    metricAttributes() {
      const c = connection();
      if (c !== metricConnection) {
        metricConnection = c;
        metricAttributes = Object.freeze({
          ...c,
          [Attr.OperationType]: "process",
          [Attr.OperationName]: "process",
          [Attr.Subscription]: "worker",
          [Attr.Stream]: "bench",
          [Attr.DestinationTemplate]: "bench.>",
        });
      }
      return metricAttributes;
    },
  };
}

// src/trace-context.ts, as far as the no-SDK path reaches.

function readHeader(headers: MsgHdrs | undefined, key: string): string | undefined {
  if (headers === undefined) return undefined;
  const exact = headers.get(key);
  if (exact !== "") return exact;
  const lower = key.toLowerCase();
  for (const k of headers.keys()) {
    if (k.toLowerCase() === lower) return headers.get(k) || undefined;
  }
  return undefined;
}

const getter: TextMapGetter<MsgHdrs> = {
  keys(carrier) {
    return carrier.keys();
  },
  get(carrier, key) {
    const value = readHeader(carrier, key);
    if (value !== undefined) return value;
    if (key === "traceparent") return readHeader(carrier, Headers.TraceParent);
    if (key === "tracestate") return readHeader(carrier, Headers.TraceState);
    return undefined;
  },
};

function injectTraceContext(ctx: Context, headers: MsgHdrs): void {
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !isSpanContextValid(sc)) return;
  // Not reached without an SDK: a no-op span's context is invalid.
  propagation.inject(ctx, headers);
}

function extractTraceContext(headers: MsgHdrs | undefined): Context {
  if (headers === undefined) return ROOT_CONTEXT;
  const ctx = propagation.extract(ROOT_CONTEXT, headers, getter);
  if (trace.getSpanContext(ctx) !== undefined) return ctx;
  const parent = getter.get(headers, "traceparent");
  // A plain event carries no trace context: nothing to parse.
  if (typeof parent === "string") throw new Error("the bench event unexpectedly carries a traceparent");
  return ctx;
}
