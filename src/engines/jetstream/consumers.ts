import {
  AckPolicy,
  type ConsumerInfo,
  type ConsumerUpdateConfig,
  DeliverPolicy,
  type JetStreamManager,
  type ConsumerConfig as NatsConsumerConfig,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "../../internal/logger.js";
import type { ConsumerConfig, ConsumerState, Ensured, Position } from "../engine.js";
import { filterOutside, filterRefused } from "../errors.js";
import { isConsumerNotFound, JsErrorCode, jsErrorCode } from "./errors.js";
import { requireServer } from "./server-version.js";
import { toMs, toNanos } from "./streams.js";

/** The server config for `config`. */
export function toNatsConsumerConfig(nc: NatsConnection, config: ConsumerConfig): Partial<NatsConsumerConfig> {
  if (config.subjects.length > 1) requireServer(nc, [2, 10, 0], "a consumer with several subjects");
  if (config.name !== undefined && config.inactiveThresholdMs !== undefined) {
    requireServer(nc, [2, 9, 0], "inactiveThresholdMs on a durable consumer");
  }
  const out: Partial<NatsConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    ack_wait: toNanos(config.processingTimeoutMs),
    max_deliver: config.maxDeliveryAttempts ?? -1,
    max_ack_pending: config.maxUnsettledEvents,
    deliver_policy: DeliverPolicy.New,
  };
  if (config.name !== undefined) out.durable_name = config.name;
  if (config.inactiveThresholdMs !== undefined) out.inactive_threshold = toNanos(config.inactiveThresholdMs);
  if (config.subjects.length === 1) out.filter_subject = config.subjects[0] as string;
  if (config.subjects.length > 1) out.filter_subjects = [...config.subjects];
  applyStart(out, config.from);
  return out;
}

function applyStart(out: Partial<NatsConsumerConfig>, from: Position): void {
  switch (from.kind) {
    case "start":
      out.deliver_policy = DeliverPolicy.All;
      return;
    case "id":
      out.deliver_policy = DeliverPolicy.StartSequence;
      out.opt_start_seq = from.id;
      return;
    case "time":
      out.deliver_policy = DeliverPolicy.StartTime;
      out.opt_start_time = from.time.toISOString();
      return;
    case "end":
      out.deliver_policy = DeliverPolicy.New;
  }
}

/**
 * The fields an existing consumer may change, every one set explicitly:
 * nats.js merges an update over the old config, so a field left out (an
 * inactive threshold to drop, say) would keep its old value. Its start
 * position is not one of them.
 */
function updatable(config: Partial<NatsConsumerConfig>): Partial<ConsumerUpdateConfig> {
  const out: Partial<ConsumerUpdateConfig> = {
    ack_wait: config.ack_wait as number,
    max_deliver: config.max_deliver as number,
    max_ack_pending: config.max_ack_pending as number,
    // 0 means "none" to the server (and is left out of the JSON).
    inactive_threshold: config.inactive_threshold ?? 0,
    // Left undefined (not ""), which clears an old filter: nats.js appends any
    // defined filter to the request subject.
    filter_subject: config.filter_subject as string,
  };
  if (config.filter_subjects) out.filter_subjects = config.filter_subjects;
  return out;
}

/** The server's consumer config in windshift's terms. */
export function fromNatsConsumerConfig(c: NatsConsumerConfig): ConsumerConfig {
  let from: Position;
  switch (c.deliver_policy) {
    case DeliverPolicy.All:
      from = { kind: "start" };
      break;
    case DeliverPolicy.StartSequence:
      from = { kind: "id", id: c.opt_start_seq ?? 1 };
      break;
    case DeliverPolicy.StartTime:
      from = { kind: "time", time: new Date(c.opt_start_time ?? 0) };
      break;
    default:
      from = { kind: "end" };
  }
  return {
    name: c.durable_name,
    subjects: c.filter_subjects?.length ? [...c.filter_subjects] : c.filter_subject ? [c.filter_subject] : [],
    from,
    processingTimeoutMs: toMs(c.ack_wait ?? 0),
    maxDeliveryAttempts: c.max_deliver !== undefined && c.max_deliver > 0 ? c.max_deliver : undefined,
    inactiveThresholdMs: c.inactive_threshold ? toMs(c.inactive_threshold) : undefined,
    maxUnsettledEvents: c.max_ack_pending ?? 1_000,
  };
}

/** A consumer's info as {@link ConsumerState}. */
export function toConsumerState(info: ConsumerInfo): ConsumerState {
  return {
    stream: info.stream_name,
    name: info.name,
    config: fromNatsConsumerConfig(info.config),
    ackFloor: info.ack_floor?.stream_seq ?? 0,
    unsettled: info.num_ack_pending,
    pending: info.num_pending,
    redelivered: info.num_redelivered,
    lastDeliveredId: info.delivered?.stream_seq ?? 0,
  };
}

/** Creates a consumer, or updates the durable one to exactly `config`. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  nc: NatsConnection,
  logger: Logger,
  stream: string,
  config: ConsumerConfig,
): Promise<Ensured<ConsumerConfig> & { name: string }> {
  const wanted = toNatsConsumerConfig(nc, config);
  const name = config.name;
  let existing: ConsumerInfo | undefined;
  if (name !== undefined) {
    try {
      existing = await jsm.consumers.info(stream, name);
    } catch (err) {
      if (!isConsumerNotFound(err)) throw err;
    }
  }
  let info: ConsumerInfo | undefined;
  try {
    if (existing !== undefined && name !== undefined) {
      logger.debug("updating consumer", { stream, consumer: name });
      info = await jsm.consumers.update(stream, name, updatable(wanted)).catch((err: unknown) => {
        // Deleted between the look and the update (its deletion was under way): create it.
        if (!isConsumerNotFound(err)) throw err;
        existing = undefined;
        return undefined;
      });
    }
    if (info === undefined) {
      logger.info("creating consumer", { stream, consumer: name ?? "(ephemeral)" });
      info = await jsm.consumers.add(stream, wanted);
    }
  } catch (err) {
    if (jsErrorCode(err) !== JsErrorCode.ConsumerFilterNotSubset) throw err;
    // The server names neither the filter nor the subjects: look them up.
    const subjects = await jsm.streams.info(stream).then(
      (i) => i.config.subjects ?? [],
      () => undefined,
    );
    const filter = subjects === undefined ? undefined : filterOutside(config.subjects, subjects);
    const only = config.subjects.length === 1 ? config.subjects[0] : undefined;
    throw filterRefused(stream, filter ?? only, subjects, {
      cause: err,
      details: { jsErrorCode: JsErrorCode.ConsumerFilterNotSubset },
    });
  }
  return { name: info.name, config: fromNatsConsumerConfig(info.config), created: existing === undefined };
}
