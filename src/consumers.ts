import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerUpdateConfig,
  DeliverPolicy,
} from "@nats-io/jetstream";
import type { Attributes } from "@opentelemetry/api";
import { raceAbort, throwIfAborted } from "./abort.js";
import { assertName } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import { type ConsumerStart, parsePosition } from "./position.js";
import { type Runtime, toMs, toNanos } from "./runtime.js";
import { requireServer } from "./server-version.js";
import { Attr, withManagementSpan } from "./telemetry.js";
import * as v from "./validate.js";

/** The declared configuration of a consumer. */
export interface ConsumerOptions {
  /**
   * The durable consumer's name. Leave it out for an ephemeral consumer, which
   * the server names and removes after `inactiveThresholdMs` without use.
   */
  readonly name?: string;
  /**
   * Receive only events on these subjects (wildcards allowed). More than one
   * needs nats-server 2.10.
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
   * How long a handed-out event may stay unsettled before the server
   * redelivers it (JetStream's ack wait). `ping` restarts the clock.
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
   * consumers with a threshold need nats-server 2.9.
   * @default 3_600_000 (1 hour) for ephemeral consumers; never for durable ones
   */
  readonly inactiveThresholdMs?: number;
  /**
   * How many events may be delivered but not yet settled, across all
   * subscribers (JetStream's max ack pending).
   * @default 1_000
   */
  readonly maxPendingEvents?: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** What `ensureConsumer` returns. */
export interface ConsumerDescription {
  /** The consumer's name; the server's generated name for an ephemeral consumer. */
  readonly name: string;
  /** The stream the consumer reads. */
  readonly stream: string;
  /** Whether the consumer is durable. */
  readonly durable: boolean;
  /** Whether the call created the consumer (`false` when it existed). */
  readonly created: boolean;
  /** The configuration as the server reports it, in {@link ConsumerOptions} terms. */
  readonly config: Omit<ConsumerOptions, "signal" | "name">;
}

const DEFAULT_PROCESSING_TIMEOUT_MS = 30_000;
const DEFAULT_EPHEMERAL_INACTIVE_MS = 3_600_000;
const DEFAULT_MAX_PENDING = 1_000;
const KNOWN = new Set([
  "name",
  "subjects",
  "from",
  "processingTimeoutMs",
  "maxDeliveryAttempts",
  "inactiveThresholdMs",
  "maxPendingEvents",
  "signal",
]);

/** Validates options and builds the server config for a consumer on `stream`. */
export function buildConsumerConfig(rt: Runtime, stream: string, input: unknown): Partial<ConsumerConfig> {
  assertName("stream", stream);
  const o = v.optionsObject("options", input);
  v.rejectUnknown(o, KNOWN);
  if (o.name !== undefined) assertName("name", o.name);
  const name = o.name as string | undefined;
  const subjects = v.subjectList("subjects", o.subjects);
  const from = parsePosition("from", o.from, true);
  const processingTimeoutMs = v.durationMs("processingTimeoutMs", o.processingTimeoutMs, 1);
  const maxDeliveryAttempts = v.integer("maxDeliveryAttempts", o.maxDeliveryAttempts, 1);
  const inactiveThresholdMs = v.durationMs("inactiveThresholdMs", o.inactiveThresholdMs, 1);
  const maxPendingEvents = v.integer("maxPendingEvents", o.maxPendingEvents, 1);
  if (subjects.length > 1) requireServer(rt.nc, [2, 10, 0], "a consumer with several subjects");
  if (name !== undefined && inactiveThresholdMs !== undefined) {
    requireServer(rt.nc, [2, 9, 0], "inactiveThresholdMs on a durable consumer");
  }
  const config: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    ack_wait: toNanos(processingTimeoutMs ?? DEFAULT_PROCESSING_TIMEOUT_MS),
    max_deliver: maxDeliveryAttempts ?? -1,
    max_ack_pending: maxPendingEvents ?? DEFAULT_MAX_PENDING,
    deliver_policy: DeliverPolicy.New,
  };
  if (name !== undefined) config.durable_name = name;
  const inactive = inactiveThresholdMs ?? (name === undefined ? DEFAULT_EPHEMERAL_INACTIVE_MS : undefined);
  if (inactive !== undefined) config.inactive_threshold = toNanos(inactive);
  if (subjects.length === 1) config.filter_subject = subjects[0] as string;
  if (subjects.length > 1) config.filter_subjects = subjects;
  if (from?.kind === "start") config.deliver_policy = DeliverPolicy.All;
  if (from?.kind === "id") {
    config.deliver_policy = DeliverPolicy.StartSequence;
    config.opt_start_seq = from.id;
  }
  if (from?.kind === "time") {
    config.deliver_policy = DeliverPolicy.StartTime;
    config.opt_start_time = from.time.toISOString();
  }
  return config;
}

/** Creates a consumer on `stream`, or updates a durable one; see `Events.ensureConsumer`. */
export async function ensureConsumer(
  rt: Runtime,
  stream: string,
  options?: ConsumerOptions,
): Promise<ConsumerDescription> {
  const config = buildConsumerConfig(rt, stream, options);
  const signal = v.signal("signal", options?.signal);
  throwIfAborted(signal);
  const jsm = await rt.jsm();
  const name = config.durable_name;
  const run = async (): Promise<ConsumerDescription> => {
    let existing: ConsumerInfo | undefined;
    if (name !== undefined) {
      try {
        existing = await jsm.consumers.info(stream, name);
      } catch (err) {
        if (!(err instanceof Error && err.name === "ConsumerNotFoundError")) throw err;
      }
    }
    let info: ConsumerInfo;
    if (existing === undefined || name === undefined) {
      rt.logger.info("creating consumer", { stream, consumer: name ?? "(ephemeral)" });
      info = await jsm.consumers.add(stream, config);
    } else {
      rt.logger.debug("updating consumer", { stream, consumer: name });
      info = await jsm.consumers.update(stream, name, updatable(config));
    }
    return {
      name: info.name,
      stream,
      durable: name !== undefined,
      created: existing === undefined,
      config: describeConsumer(info.config),
    };
  };
  const attributes: Attributes = { [Attr.Stream]: stream };
  if (name !== undefined) attributes[Attr.Subscription] = name;
  return withManagementSpan(rt.telemetry, "ensureConsumer", attributes, async () => {
    try {
      return await raceAbort(run(), signal);
    } catch (err) {
      throw toWindshiftError(err, `ensureConsumer("${stream}", "${name ?? "(ephemeral)"}")`);
    }
  });
}

/** The fields an existing consumer may change; its start position is not one. */
function updatable(config: Partial<ConsumerConfig>): Partial<ConsumerUpdateConfig> {
  const out: Partial<ConsumerUpdateConfig> = {
    ack_wait: config.ack_wait as number,
    max_deliver: config.max_deliver as number,
    max_ack_pending: config.max_ack_pending as number,
    // Left undefined (not ""), which clears an old filter: nats.js appends any
    // defined filter to the request subject.
    filter_subject: config.filter_subject as string,
  };
  if (config.filter_subjects) out.filter_subjects = config.filter_subjects;
  if (config.inactive_threshold !== undefined) out.inactive_threshold = config.inactive_threshold;
  return out;
}

/** Maps the server's consumer config back to {@link ConsumerOptions} terms. */
export function describeConsumer(c: ConsumerConfig): ConsumerDescription["config"] {
  const out: { -readonly [K in keyof ConsumerDescription["config"]]: ConsumerDescription["config"][K] } = {
    subjects: c.filter_subjects?.length ? [...c.filter_subjects] : c.filter_subject ? [c.filter_subject] : [],
    processingTimeoutMs: toMs(c.ack_wait ?? 0),
    maxPendingEvents: c.max_ack_pending ?? DEFAULT_MAX_PENDING,
  };
  switch (c.deliver_policy) {
    case DeliverPolicy.All:
      out.from = { start: true };
      break;
    case DeliverPolicy.StartSequence:
      out.from = { id: c.opt_start_seq ?? 1 };
      break;
    case DeliverPolicy.StartTime:
      out.from = { time: new Date(c.opt_start_time ?? 0) };
      break;
    default:
      out.from = { end: true };
  }
  if (c.max_deliver !== undefined && c.max_deliver > 0) out.maxDeliveryAttempts = c.max_deliver;
  if (c.inactive_threshold) out.inactiveThresholdMs = toMs(c.inactive_threshold);
  return out;
}
