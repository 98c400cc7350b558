/**
 * What windshift's instrumentation costs per event when no OpenTelemetry SDK is
 * registered. There is no uninstrumented build to race against, so this runs,
 * against the no-op API, the telemetry calls the hot paths make, in their
 * order, using windshift's own telemetry and trace-context modules from
 * `dist/` (so the helpers are the real ones; the sequence is copied):
 *
 * - publish: `publish()` in src/publish/publish.ts: the `tracing()` check,
 *   `context.active()`, `injectTraceContext`, the start time, and the metrics;
 * - process: `#handOut` in src/consume/open-subscription.ts and `Settler.track`:
 *   `extractTraceContext` over the header map, the `tracing()` check, the
 *   hand-out time and the consumed counter;
 * - settle: the fire-and-forget `ack()` in src/consume/event.ts
 *   (`Settler.sendNow`) and `endProcessing()`: the metrics.
 *
 * With no SDK, no span objects, span attributes or metric calls are made
 * (`metering` is false for the API's no-op meter). Keep this in step with
 * those files when they change.
 *
 * @module
 */
import { type Attributes, type Context, context, trace } from "@opentelemetry/api";
import { Headers } from "windshift";
import type * as AttributesModule from "../src/telemetry/attributes.js";
import type * as TelemetryModule from "../src/telemetry/telemetry.js";
import type * as TraceContextModule from "../src/telemetry/trace-context.js";
import { median } from "./stats.js";

// windshift's internal modules, from the build the bench runs against.
const dist = new URL("../../dist/telemetry/", import.meta.url);
const { createTelemetry } = (await import(new URL("telemetry.js", dist).href)) as typeof TelemetryModule;
const { Attr } = (await import(new URL("attributes.js", dist).href)) as typeof AttributesModule;
const { extractTraceContext, injectTraceContext } = (await import(
  new URL("trace-context.js", dist).href
)) as typeof TraceContextModule;

/** The connection facts the JetStream engine reports. */
const FACTS = Object.freeze({ system: "nats", clientId: "7", serverAddress: "127.0.0.1", serverPort: 4222 });

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

/** Measures the three paths. */
export function measureTelemetryCost(iterations: number, batches: number): TelemetryCost {
  assertNoSdkRegistered();
  // What the telemetry reads of an engine: its connection facts and its clock.
  const clock = {
    now: () => Date.now(),
    setTimeout: (callback: () => void, ms: number) => setTimeout(callback, ms).unref(),
    clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
  const engine = { connection: () => FACTS, clock } as unknown as Parameters<typeof createTelemetry>[0];
  const t = createTelemetry(engine, {
    tracerProvider: undefined,
    meterProvider: undefined,
    traceProcessing: "child",
    recordBodySize: false,
  });
  // The first span shows whether an SDK is there; with none, tracing is off from then on.
  if (t.tracing()) t.startSpan("probe", {}, context.active()).end();
  if (t.tracing()) throw new Error("telemetry reports an SDK; the no-SDK figures are void");
  const typeName = "windshift.test.v1.TestEvent";
  // The headers a plain windshift event arrives with (no trace context: the
  // producer had no SDK either), as the lookup map a delivery has anyway.
  const published = new Date().toISOString();
  const lookup = new Map([
    [Headers.DataType.toLowerCase(), typeName],
    [Headers.PublishedTime.toLowerCase(), published],
  ]);
  const settleBase = Object.freeze({ ...t.connection(), [Attr.Subscription]: "worker", [Attr.Stream]: "bench" });
  const settleAttributes = new Map<string, Attributes>();
  const settleAttrs = (operation: string): Attributes => {
    let a = settleAttributes.get(operation);
    if (a === undefined) {
      a = Object.freeze({ ...settleBase, [Attr.OperationType]: "settle", [Attr.OperationName]: operation });
      settleAttributes.set(operation, a);
    }
    return a;
  };

  // With no SDK, tracing() says yes once a second, and the next span started
  // (a no-op one) tells it there is still none: the product does the same.
  const probe = (): void => {
    if (t.tracing()) t.startSpan("probe", {}, context.active()).end();
  };

  const publishPath = (): unknown => {
    const parent = context.active();
    probe();
    const headers: [string, string][] = [
      [Headers.DataType, typeName],
      [Headers.PublishedTime, published],
    ];
    injectTraceContext(parent, headers);
    if (t.metering) {
      const started = performance.now();
      const metricAttributes = t.publishAttributes("bench", undefined);
      t.sent.add(1, metricAttributes);
      t.operationDuration.record((performance.now() - started) / 1000, metricAttributes);
    }
    return headers;
  };

  const processPath = (): { context: Context; handedOutAt: number } => {
    const producer = extractTraceContext(lookup);
    probe();
    const handedOutAt = t.metering ? performance.now() : 0;
    if (t.metering) t.consumed.add(1, settleBase);
    return { context: producer, handedOutAt };
  };

  const settlePath = (event: { context: Context; handedOutAt: number }): void => {
    probe();
    if (t.metering) {
      t.operationDuration.record(0, settleAttrs("ack"));
      t.processDuration.record((performance.now() - event.handedOutAt) / 1000, settleBase);
    }
  };

  // Events are processed ahead of time so that the settle loop times settling alone.
  const events = Array.from({ length: Math.min(iterations, 10_000) }, () => processPath());
  const time = (loop: () => void): number => {
    const start = process.hrtime.bigint();
    loop();
    return Number(process.hrtime.bigint() - start) / iterations;
  };
  let kept: unknown;
  const runPublish = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) kept = publishPath();
    });
  const runProcess = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) kept = processPath();
    });
  const runSettle = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) settlePath(events[i % events.length] as (typeof events)[number]);
    });
  const runConsume = () =>
    time(() => {
      for (let i = 0; i < iterations; i++) settlePath(processPath());
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
