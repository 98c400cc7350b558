/**
 * A real OpenTelemetry SDK whose exporters drop everything: the cost of
 * recording, batching and collecting, without the cost of shipping.
 *
 * @module
 */
import type { MeterProvider as ApiMeterProvider, TracerProvider as ApiTracerProvider } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";

/** How often the metric reader collects; short, so collection happens during every round. */
const METRIC_EXPORT_INTERVAL_MS = 1_000;

/** Accepts every batch of spans and forgets it. */
class DroppingSpanExporter implements SpanExporter {
  exported = 0;
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.exported += spans.length;
    resultCallback({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** Accepts every collection of metrics and forgets it. */
class DroppingMetricExporter implements PushMetricExporter {
  exports = 0;
  export(_metrics: unknown, resultCallback: (result: ExportResult) => void): void {
    this.exports++;
    resultCallback({ code: ExportResultCode.SUCCESS });
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** The providers to hand to `createEvents`, and how to flush and stop them. */
export interface OtelSdk {
  readonly tracerProvider: ApiTracerProvider;
  readonly meterProvider: ApiMeterProvider;
  /** Spans handed to the exporter so far (proves the SDK really records). */
  spansExported(): number;
  /** Metric collections handed to the exporter so far. */
  metricExports(): number;
  /** Exports what is queued, so that one round's backlog does not spill into the next. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * A `BasicTracerProvider` with a default-sized `BatchSpanProcessor` (and the
 * default always-on sampler) and a `MeterProvider` with a periodic reader, both
 * over exporters that drop. Nothing is registered globally.
 */
export function createOtelSdk(): OtelSdk {
  const spanExporter = new DroppingSpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spanExporter)] });
  const metricExporter = new DroppingMetricExporter();
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: metricExporter,
        exportIntervalMillis: METRIC_EXPORT_INTERVAL_MS,
        exportTimeoutMillis: METRIC_EXPORT_INTERVAL_MS,
      }),
    ],
  });
  return {
    tracerProvider,
    meterProvider,
    spansExported: () => spanExporter.exported,
    metricExports: () => metricExporter.exports,
    async flush() {
      await tracerProvider.forceFlush();
      await meterProvider.forceFlush();
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
