import { type Attributes, context } from "@opentelemetry/api";
import type { ConsumerConfig } from "../engines/engine.js";
import { throwIfAborted } from "../internal/abort.js";
import { assertName } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";
import { Attr } from "../telemetry/attributes.js";
import { withManagementSpan } from "../telemetry/spans.js";
import { type ConsumerStart, describePosition, parsePosition } from "./position.js";

/** The declared configuration of a consumer. */
export interface ConsumerOptions {
  /**
   * The durable consumer's name. Leave it out for an ephemeral consumer, which
   * the engine names and removes after `inactiveThresholdMs` without use.
   */
  readonly name?: string;
  /**
   * Receive only events on these subjects (wildcards allowed). More than one
   * needs nats-server 2.10 on JetStream.
   * @default every subject of the stream
   */
  readonly subjects?: readonly string[];
  /**
   * Where a new consumer starts. Ignored when the durable consumer already
   * exists: it keeps its position.
   * @default { end: true } (events published after the consumer is created)
   */
  readonly from?: ConsumerStart;
  /**
   * How long a handed-out event may stay unsettled before it is redelivered
   * (JetStream's ack wait). `ping` restarts the clock.
   * @default 30_000
   */
  readonly processingTimeoutMs?: number;
  /**
   * How many times an event is delivered at most.
   * @default unlimited
   */
  readonly maxDeliveryAttempts?: number;
  /**
   * Remove the consumer after this long without a subscriber. Durable
   * consumers with a threshold need nats-server 2.9 on JetStream.
   * @default 3_600_000 (1 hour) for ephemeral consumers; never for durable ones
   */
  readonly inactiveThresholdMs?: number;
  /**
   * How many events may be delivered but not yet settled, across all
   * subscribers (JetStream's max ack pending).
   * @default 1_000
   */
  readonly maxUnsettledEvents?: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** What `ensureConsumer` returns. */
export interface ConsumerDescription {
  /** The consumer's name; the engine's generated name for an ephemeral consumer. */
  readonly name: string;
  /** The stream the consumer reads. */
  readonly stream: string;
  /** Whether the consumer is durable. */
  readonly durable: boolean;
  /** Whether the call created the consumer (`false` when it existed). */
  readonly created: boolean;
  /** The configuration as the engine reports it, in {@link ConsumerOptions} terms. */
  readonly config: Omit<ConsumerOptions, "signal" | "name">;
}

/** The defaults of {@link ConsumerOptions}. */
export const consumerDefaults: Defaults<ConsumerOptions> = Object.freeze({
  name: undefined,
  subjects: [],
  from: { end: true } as const,
  processingTimeoutMs: 30_000,
  maxDeliveryAttempts: undefined,
  // Computed: 1 hour for ephemeral consumers, none for durable ones.
  inactiveThresholdMs: undefined,
  maxUnsettledEvents: 1_000,
  signal: undefined,
});

const EPHEMERAL_INACTIVE_THRESHOLD_MS = 3_600_000;

/** Validates `options` into the whole configuration of a consumer. */
export function resolveConsumerConfig(stream: string, options: unknown): ConsumerConfig {
  assertName("stream", stream);
  const o = mergeOptions<ConsumerOptions>("options", options, consumerDefaults);
  if (o.name !== undefined) assertName("name", o.name);
  const name = o.name as string | undefined;
  const inactiveThresholdMs = v.durationMs("inactiveThresholdMs", o.inactiveThresholdMs, 1);
  return {
    name,
    subjects: v.subjectList("subjects", o.subjects),
    from: parsePosition("from", o.from, { allowEnd: true }) ?? { kind: "end" },
    processingTimeoutMs: v.durationMs("processingTimeoutMs", o.processingTimeoutMs, 1) as number,
    maxDeliveryAttempts: v.integer("maxDeliveryAttempts", o.maxDeliveryAttempts, 1),
    inactiveThresholdMs: inactiveThresholdMs ?? (name === undefined ? EPHEMERAL_INACTIVE_THRESHOLD_MS : undefined),
    maxUnsettledEvents: v.integer("maxUnsettledEvents", o.maxUnsettledEvents, 1) as number,
  };
}

/** A consumer's configuration in {@link ConsumerOptions} terms. */
export function describeConsumer(c: ConsumerConfig): ConsumerDescription["config"] {
  const out: { -readonly [K in keyof ConsumerDescription["config"]]: ConsumerDescription["config"][K] } = {
    subjects: [...c.subjects],
    from: describePosition(c.from),
    processingTimeoutMs: c.processingTimeoutMs,
    maxUnsettledEvents: c.maxUnsettledEvents,
  };
  if (c.maxDeliveryAttempts !== undefined) out.maxDeliveryAttempts = c.maxDeliveryAttempts;
  if (c.inactiveThresholdMs !== undefined) out.inactiveThresholdMs = c.inactiveThresholdMs;
  return out;
}

/** Creates a consumer on `stream`, or updates a durable one; see `Events.ensureConsumer`. */
export async function ensureConsumer(
  rt: Runtime,
  stream: string,
  options?: ConsumerOptions,
): Promise<ConsumerDescription> {
  const config = resolveConsumerConfig(stream, options);
  const signal = v.signal("signal", options?.signal);
  throwIfAborted(signal);
  const attributes: Attributes = { [Attr.Stream]: stream };
  if (config.name !== undefined) attributes[Attr.Subscription] = config.name;
  return withManagementSpan(rt.telemetry, "ensureConsumer", context.active(), attributes, async () => {
    const ensured = await rt.engine.ensureConsumer(stream, config, signal);
    if (ensured.created && config.name !== undefined && config.from.kind === "end") {
      await noteSkippedEvents(rt, stream, config.name, signal);
    }
    return {
      name: ensured.name,
      stream,
      durable: config.name !== undefined,
      created: ensured.created,
      config: describeConsumer(ensured.config),
    };
  });
}

/**
 * Tells (at `info`) that a durable consumer just created at the end of a
 * stream that holds events will not see them: the default start surprises
 * whoever expected a new consumer to read what is there. Nothing is said
 * when the stream cannot be looked at; the consumer is made either way.
 */
async function noteSkippedEvents(
  rt: Runtime,
  stream: string,
  consumer: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  let events: number;
  try {
    events = (await rt.engine.streamState(stream, signal)).contents.events;
  } catch {
    return;
  }
  if (events === 0) return;
  rt.logger.info(
    `consumer "${consumer}" of stream "${stream}" starts at the end: it will not see the stream's ${events} existing event${events === 1 ? "" : "s"}; to read them, create it with from: { start: true } (delete this one first: an existing consumer keeps its position)`,
    { stream, consumer, events },
  );
}
