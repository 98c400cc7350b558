import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import { type CloudEventsOptions, type CloudEventsSettings, resolveCloudEvents } from "../cloudevents/options.js";
import { validationError } from "../errors.js";
import { type Logger, silentLogger } from "../internal/logger.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { TelemetrySettings, TraceProcessing } from "../telemetry/telemetry.js";
import { readValidate } from "../validation/rules.js";

/** Options every events client takes, whatever its engine. */
export interface ClientOptions {
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
   * @default the global provider from `@opentelemetry/api` when the client is created
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
  readonly traceProcessing?: TraceProcessing;
  /**
   * Record `messaging.message.body.size` on publish and process spans (opt-in
   * in the conventions).
   * @default false
   */
  readonly recordBodySize?: boolean;
  /**
   * Makes every published event a CloudEvent in binary mode as well:
   * `ce-specversion`, `ce-id`, `ce-source`, `ce-type`, `ce-time`,
   * `ce-datacontenttype` and `ce-dataschema` headers beside windshift's own
   * (docs/cloudevents.md).
   * Reading CloudEvents needs no option.
   * @default off
   */
  readonly cloudEvents?: CloudEventsOptions;
  /**
   * Check messages against their schema's `buf.validate` rules: every publish
   * before anything is sent (`INVALID_MESSAGE` when one breaks them), and every
   * event a processor with typed handlers takes (given up on with reason
   * `invalid`). Per call, `publish` and `process` take `validate` too. Needs
   * the optional peer `@bufbuild/protovalidate`; without it, creating the
   * client fails with what to install (docs/validation.md).
   * @default false
   */
  readonly validate?: boolean;
}

/** Options for `createEvents`: the client over a NATS connection. */
export interface EventsOptions extends ClientOptions {
  /**
   * How many publishes may await the stream's acknowledgement at once. A
   * publish beyond that waits for room, so memory stays bounded however many
   * are started.
   * @default 4_096
   */
  readonly maxPublishesInFlight?: number;
}

/** The defaults of {@link ClientOptions}. */
export const clientDefaults: Defaults<ClientOptions> = Object.freeze({
  logger: silentLogger,
  tracerProvider: undefined,
  meterProvider: undefined,
  traceProcessing: "child",
  recordBodySize: false,
  cloudEvents: undefined,
  validate: false,
});

/** The defaults of {@link EventsOptions}. */
export const eventsDefaults: Defaults<EventsOptions> = Object.freeze({
  ...clientDefaults,
  maxPublishesInFlight: 4_096,
});

/** Validated client options. */
export interface ClientSettings {
  readonly logger: Logger;
  readonly telemetry: TelemetrySettings;
  /** The `cloudEvents` option, validated; `undefined` when off. */
  readonly cloudEvents: CloudEventsSettings | undefined;
  /** Whether publishes and processors check messages against their rules unless told otherwise. */
  readonly validate: boolean;
}

/** Validates the options every client takes (from options merged over their defaults). */
export function readClientOptions(o: { readonly [K in keyof Required<ClientOptions>]: unknown }): ClientSettings {
  const logger = o.logger as Logger;
  for (const level of ["debug", "info", "warn", "error"] as const) {
    if (typeof logger !== "object" || logger === null || typeof logger[level] !== "function") {
      throw validationError("logger", `has no ${level}() method`);
    }
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
  return {
    logger,
    telemetry: {
      tracerProvider: o.tracerProvider as TracerProvider | undefined,
      meterProvider: o.meterProvider as MeterProvider | undefined,
      traceProcessing: v.oneOf("traceProcessing", o.traceProcessing, ["child", "link"] as const) as TraceProcessing,
      recordBodySize: v.boolean("recordBodySize", o.recordBodySize) as boolean,
    },
    cloudEvents: resolveCloudEvents(o.cloudEvents),
    validate: readValidate("validate", o.validate) ?? false,
  };
}

/** Validates {@link EventsOptions}. */
export function resolveEventsOptions(options: unknown): ClientSettings & { readonly maxPublishesInFlight: number } {
  const o = mergeOptions<EventsOptions>("options", options, eventsDefaults);
  return {
    ...readClientOptions(o),
    maxPublishesInFlight: v.integer("maxPublishesInFlight", o.maxPublishesInFlight, 1, 1_000_000) as number,
  };
}
