import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import type { Engine } from "../../src/engines/engine.js";
import { createTelemetry, type TelemetrySettings } from "../../src/telemetry/telemetry.js";
import { createTestClock, type TestClock } from "../../src/testing/test-clock.js";

/** What telemetry reads of an engine: its connection facts and its clock. */
function engineOn(clock: TestClock): Engine {
  return { connection: () => ({ system: "memory" }), clock } as unknown as Engine;
}

/** Asks `tracing()` n times and counts the answers. */
function askTimes(t: { tracing(): boolean }, n: number): { yes: number; no: number } {
  let yes = 0;
  for (let i = 0; i < n; i++) if (t.tracing()) yes++;
  return { yes, no: n - yes };
}

const NO_SDK: TelemetrySettings = {
  tracerProvider: undefined,
  meterProvider: undefined,
  traceProcessing: "child",
  recordBodySize: false,
};

describe("telemetry: is an SDK there?", () => {
  it("without an SDK: no metering; tracing says yes until the first span shows nothing records, then once a second", async () => {
    const clock = createTestClock();
    const t = createTelemetry(engineOn(clock), NO_SDK);
    expect(t.metering).toBe(false);
    expect(t.tracing()).toBe(true);
    t.startSpan("probe", {}, ROOT_CONTEXT).end();
    expect(t.tracing()).toBe(false);
    await clock.advance(999);
    expect(askTimes(t, 64)).toEqual({ yes: 0, no: 64 });
    await clock.advance(1);
    // The clock is read once in 16 calls: the next look comes within them.
    const first = Array.from({ length: 16 }, () => t.tracing()).indexOf(true);
    expect(first).toBeGreaterThanOrEqual(0);
    t.startSpan("probe", {}, ROOT_CONTEXT).end();
    expect(askTimes(t, 64)).toEqual({ yes: 0, no: 64 });
  });

  it("a span under a remote parent without an SDK still shows that nothing records", () => {
    const t = createTelemetry(engineOn(createTestClock()), NO_SDK);
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
      isRemote: true,
    });
    t.startSpan("probe", {}, parent).end();
    expect(t.tracing()).toBe(false);
  });

  it("with SDK providers: metering, and tracing stays on", () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const t = createTelemetry(engineOn(createTestClock()), {
      ...NO_SDK,
      tracerProvider,
      meterProvider: new MeterProvider(),
    });
    expect(t.metering).toBe(true);
    t.startSpan("real", {}, ROOT_CONTEXT).end();
    expect(t.tracing()).toBe(true);
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(["real"]);
  });
});
