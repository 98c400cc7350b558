import {
  type Attributes,
  type Context,
  type Counter,
  createNoopMeter,
  type Histogram,
  isSpanContextValid,
  type MeterProvider,
  metrics,
  type Span,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import type { Engine } from "../engines/engine.js";
import { NAME, VERSION } from "../internal/version.js";
import { Attr, connectionAttributes } from "./attributes.js";

/** How a process span relates to the producer's span. */
export type TraceProcessing = "child" | "link";

/** The conventions' advised buckets for messaging durations, in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** How often windshift looks again for an SDK while spans go nowhere. */
const RECHECK_MS = 1_000;
/** While spans go nowhere, how many calls of `tracing()` share one clock reading. */
const LOOK_EVERY = 16;

/** Tracer, instruments and settings shared by one events client. */
export interface Telemetry {
  readonly traceProcessing: TraceProcessing;
  readonly recordBodySize: boolean;
  readonly sent: Counter;
  readonly consumed: Counter;
  readonly operationDuration: Histogram;
  readonly processDuration: Histogram;
  /**
   * Whether metrics go anywhere: false only when the meter is the API's own
   * no-op meter (`createNoopMeter()`), which the global provider hands out
   * until an SDK is registered. Then windshift skips the clock readings and
   * attribute lookups that recording would need. Decided once: the metrics
   * API has no proxy, so a meter taken before an SDK is registered stays a
   * no-op.
   */
  readonly metering: boolean;
  /** `messaging.system`, `messaging.client.id`, `server.address` and `server.port`; the same object until they change. */
  connection(): Attributes;
  /**
   * Whether to build spans now. False while spans go nowhere (no SDK behind
   * the tracer): then windshift skips spans and their attributes, though it
   * still propagates a trace context it is given, and looks again, with the
   * next span it starts, once a second has passed (noticed within 16 calls).
   */
  tracing(): boolean;
  /** Starts a span (call only when {@link Telemetry.tracing} said yes). */
  startSpan(name: string, options: SpanOptions, parent: Context): Span;
  /** Metric attributes of a publish, cached per stream (and per error type). */
  publishAttributes(stream: string | undefined, errorType: string | undefined): Attributes;
}

/** What {@link createTelemetry} is given. */
export interface TelemetrySettings {
  readonly tracerProvider: TracerProvider | undefined;
  readonly meterProvider: MeterProvider | undefined;
  readonly traceProcessing: TraceProcessing;
  readonly recordBodySize: boolean;
}

/**
 * Creates the tracer and instruments. With no SDK registered they are the
 * API's no-ops, and windshift does no work for them: no metric recording
 * (see {@link Telemetry.metering}), no spans (see {@link Telemetry.tracing}).
 *
 * The metrics API has no proxy: instruments bind to the meter provider that
 * is global when the client is created, so register the SDK first.
 */
export function createTelemetry(engine: Engine, settings: TelemetrySettings): Telemetry {
  const tracer: Tracer = (settings.tracerProvider ?? trace.getTracerProvider()).getTracer(NAME, VERSION);
  const meter = (settings.meterProvider ?? metrics.getMeterProvider()).getMeter(NAME, VERSION);
  const metering = meter !== createNoopMeter();
  const histogram = (name: string, description: string) =>
    meter.createHistogram(name, { unit: "s", description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  // Whether spans go anywhere: unknown until the first span shows it. While
  // they go nowhere, every LOOK_EVERY-th call reads the engine's clock (not
  // every call: tracing() is asked several times per event; and no timer, so
  // nothing is left pending) to see whether it is time to look again.
  let spans: "unknown" | "on" | "off" = "unknown";
  let calls = 0;
  let lookAt = 0;
  let factsFor: object | undefined;
  let connection: Attributes = {};
  let publishCache = new Map<string, Attributes>();
  let publishCacheFor: Attributes | undefined;
  // Most clients publish to one stream: its attributes without a map lookup.
  let lastStream: string | undefined;
  let lastStreamAttributes: Attributes | undefined;
  return {
    traceProcessing: settings.traceProcessing,
    recordBodySize: settings.recordBodySize,
    metering,
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
      if (spans !== "off") return true;
      if (++calls % LOOK_EVERY !== 0) return false;
      return engine.clock.now() >= lookAt;
    },
    startSpan(name, options, parent) {
      const span = tracer.startSpan(name, options, parent);
      if (spans !== "on") {
        // The API's no-op tracer hands back a span that records nothing and
        // carries its parent's span context (or an invalid one); an SDK's
        // span always has a span id of its own, sampled or not.
        const own = span.spanContext();
        const inherited = !isSpanContextValid(own) || own.spanId === trace.getSpanContext(parent)?.spanId;
        spans = span.isRecording() || !inherited ? "on" : "off";
        if (spans === "off") lookAt = engine.clock.now() + RECHECK_MS;
      }
      return span;
    },
    publishAttributes(stream, error) {
      const base = this.connection();
      if (base !== publishCacheFor || publishCache.size > 1_000) {
        publishCacheFor = base;
        publishCache = new Map();
        lastStream = undefined;
      }
      if (error === undefined && stream === lastStream && lastStreamAttributes !== undefined)
        return lastStreamAttributes;
      const key = `${stream ?? ""}\u0000${error ?? ""}`;
      let attrs = publishCache.get(key);
      if (attrs === undefined) {
        const fresh: Attributes = { ...base, [Attr.OperationName]: "publish", [Attr.OperationType]: "send" };
        if (stream !== undefined) fresh[Attr.Stream] = stream;
        if (error !== undefined) fresh[Attr.ErrorType] = error;
        attrs = Object.freeze(fresh);
        publishCache.set(key, attrs);
      }
      if (error === undefined) {
        lastStream = stream;
        lastStreamAttributes = attrs;
      }
      return attrs;
    },
    connection() {
      const facts = engine.connection();
      if (facts !== factsFor) {
        factsFor = facts;
        connection = Object.freeze(connectionAttributes(facts));
      }
      return connection;
    },
  };
}
